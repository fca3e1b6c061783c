"""Figures of a grid search: metric heatmap, training curves, detections on validation tiles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle
from torch import Tensor

from model.training.grid import read_trial_metrics
from plots.catalog import display_stretch
from tiling.errors import ConfigError

TRUTH_COLOUR = "#1b9e77"
PRED_COLOUR = "#d95f02"


CUT_SHORT = {"truncated": "time guard", "stopped": "ASHA"}  # statuses of trials short of budget


def plot_grid_heatmap(
    results: pd.DataFrame, x: str, y: str, metric: str = "val/map_50", *, ax: plt.Axes | None = None
) -> Figure:
    """Heatmap of ``metric`` over two grid parameters, the best value over all other parameters.

    Complete trials are preferred, as :func:`model.training.grid.best_trial` does: a cell shows a
    trial cut short by the time guard (``status="truncated"``) or stopped by ASHA on Ray
    (``"stopped"``) only when it holds no complete one, annotated with ``*`` and counted in the
    title (it trained fewer steps than its budget, so its value is not comparable with the other
    cells').

    Args:
        results: the table of :func:`model.training.grid.run_grid` (failed trials are left out).
        x, y: two of its parameter columns.
        metric: the value shown in each cell (annotated); when the table has its bootstrap
            interval (``<metric>_lo``, ``<metric>_hi``: :mod:`model.training.thresholds`), the
            cell shows it under the value as ``[low, high]``.
        ax: axes to draw into (default: a new figure).

    Raises:
        ConfigError: a column is missing.
    """
    missing = [c for c in (x, y, metric) if c not in results.columns]
    if missing:
        raise ConfigError(
            f"plot_grid_heatmap: column(s) {missing} not in the results; columns are "
            f"{list(results.columns)}."
        )
    status = results["status"] if "status" in results else pd.Series("done", results.index)
    scored = results[status.isin(["done", *CUT_SHORT]) & results[metric].notna()]
    scored = scored.assign(truncated=status[scored.index].isin(CUT_SHORT))
    ranked = scored.sort_values(["truncated", metric], ascending=[True, False])
    best = ranked.drop_duplicates([x, y])
    table = best.pivot(index=y, columns=x, values=metric)
    flags = best.pivot(index=y, columns=x, values="truncated").reindex_like(table)
    labels = table.map(lambda v: "" if pd.isna(v) else f"{v:.3f}") + flags.map(
        lambda f: "*" if f is True else ""
    )
    labels = labels + interval_text(best, x, y, metric).reindex_like(table).fillna("")
    fig, ax = _figure(ax, (1.2 + 1.1 * max(1, table.shape[1]), 1.0 + 0.8 * max(1, table.shape[0])))
    sns.heatmap(
        table.astype(float),
        annot=labels.to_numpy(),
        fmt="",
        cmap="viridis",
        ax=ax,
        cbar_kws={"label": metric},
    )
    n_cut = int(flags.sum().sum()) if len(flags) else 0
    kinds = " or ".join(CUT_SHORT[s] for s in sorted(set(status)) if s in CUT_SHORT)
    note = f"\n* {n_cut} cut short ({kinds}): not comparable" if n_cut else ""
    ax.set_title(f"{metric} (best over other parameters){note}")
    return fig


def interval_text(best: pd.DataFrame, x: str, y: str, metric: str) -> pd.DataFrame:
    """Per heatmap cell a line ``[low, high]`` from ``<metric>_lo``/``_hi`` ("" where absent)."""
    low, high = f"{metric}_lo", f"{metric}_hi"
    if low not in best or high not in best:
        return best.pivot(index=y, columns=x, values=metric).map(lambda _: "")
    text = [
        "" if pd.isna(lo) or pd.isna(hi) else f"\n[{lo:.2f}, {hi:.2f}]"
        for lo, hi in zip(best[low], best[high], strict=True)
    ]
    return best.assign(_interval=text).pivot(index=y, columns=x, values="_interval")


def plot_training_curves(
    trials: pd.DataFrame | Sequence[str | Path],
    *,
    loss: str = "train/epoch_loss",
    metric: str = "val/map_50",
) -> Figure:
    """Training loss and validation mAP@50 per epoch of every trial (from their CSV logs).

    Args:
        trials: the results table of ``run_grid`` (columns ``trial_dir`` and ``trial``) or a list
            of trial folders.
        loss: the per-epoch loss column (falls back to the epoch mean of ``train/loss``).
        metric: the validation column.
    """
    dirs = _trial_dirs(trials)
    fig = Figure(figsize=(11, 4))
    ax_loss, ax_metric = fig.subplots(1, 2)
    for name, folder in dirs:
        metrics = read_trial_metrics(folder)
        if metrics.empty or "epoch" not in metrics:
            continue
        curve = _epoch_curve(metrics, loss, "train/loss")
        ax_loss.plot(curve.index, curve.to_numpy(), marker="o", ms=3, label=name)
        if metric in metrics:
            val = metrics.dropna(subset=[metric]).groupby("epoch")[metric].last()
            ax_metric.plot(val.index, val.to_numpy(), marker="o", ms=3, label=name)
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="Training loss", yscale="log")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"Validation {metric}", ylim=(0, 1))
    if dirs:
        ax_metric.legend(fontsize="small", loc="best")
    fig.tight_layout()
    return fig


def _trial_dirs(trials: pd.DataFrame | Sequence[str | Path]) -> list[tuple[str, Path]]:
    """(label, folder) of each trial."""
    if isinstance(trials, pd.DataFrame):
        if "trial_dir" not in trials:
            raise ConfigError("plot_training_curves: the results table has no 'trial_dir' column.")
        names = (
            trials["trial"]
            if "trial" in trials
            else trials["trial_dir"].map(lambda p: Path(p).name)
        )
        return [(str(n), Path(d)) for n, d in zip(names, trials["trial_dir"], strict=True)]
    return [(Path(d).name, Path(d)) for d in trials]


def _epoch_curve(metrics: pd.DataFrame, column: str, fallback: str) -> pd.Series:
    """Per-epoch values of ``column``, or the epoch means of ``fallback``."""
    for name in (column, fallback):
        if name in metrics and metrics[name].notna().any():
            return metrics.dropna(subset=[name]).groupby("epoch")[name].mean()
    return pd.Series(dtype=float)


def plot_detections(
    images: Tensor,
    predictions: Sequence[dict[str, Tensor]],
    targets: Sequence[dict[str, Tensor]],
    labels: Sequence[str],
    score_thresh: float = 0.5,
    *,
    circles: bool = True,
    ncols: int = 4,
) -> Figure:
    """Detections against the truth on tiles: truth in green, predictions in orange with scores.

    Args:
        images: FloatTensor[N, C, T, T] in raw units (shown per tile with a 2-98 % stretch; the
            first band, or the first three as RGB).
        predictions: per tile ``boxes`` [D, 4] (xyxy px), ``scores`` [D], ``labels`` [D].
        targets: per tile ``boxes`` [K, 4], ``labels`` [K].
        labels: class names (index = label id).
        score_thresh: predictions below it are not drawn.
        circles: draw objects as circles inscribed in their boxes (round objects), else boxes.
        ncols: tiles per row.
    """
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig = Figure(figsize=(3.2 * ncols, 3.4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(display_stretch(images[i].detach().cpu().numpy(), None, (2, 98)), cmap="gray")
        for box in targets[i]["boxes"].tolist():
            ax.add_patch(_shape(box, TRUTH_COLOUR, circles, "-"))
        pred = predictions[i]
        keep = pred["scores"] >= score_thresh
        for box, lab, score in zip(
            pred["boxes"][keep].tolist(),
            pred["labels"][keep].tolist(),
            pred["scores"][keep].tolist(),
            strict=True,
        ):
            ax.add_patch(_shape(box, PRED_COLOUR, circles, "--"))
            name = labels[lab] if 0 <= lab < len(labels) else str(lab)
            ax.text(
                box[0], box[1], f"{name} {score:.2f}", color=PRED_COLOUR, fontsize=6, va="bottom"
            )
        ax.set_title(f"{len(targets[i]['boxes'])} true, {int(keep.sum())} found", fontsize=8)
    fig.legend(
        handles=[
            Rectangle((0, 0), 1, 1, fill=False, ec=TRUTH_COLOUR, label="truth"),
            Rectangle(
                (0, 0),
                1,
                1,
                fill=False,
                ec=PRED_COLOUR,
                ls="--",
                label=f"prediction ≥ {score_thresh}",
            ),
        ],
        loc="lower center",
        ncol=2,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def _shape(box: Sequence[float], colour: str, circle: bool, style: str) -> plt.Artist:
    """A circle inscribed in the xyxy ``box`` (or the box itself), unfilled."""
    x0, y0, x1, y1 = box
    if circle:
        return Circle(
            ((x0 + x1) / 2, (y0 + y1) / 2),
            (x1 - x0 + y1 - y0) / 4,
            fill=False,
            ec=colour,
            ls=style,
            lw=1.2,
        )
    return Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=colour, ls=style, lw=1.2)


def _figure(ax: plt.Axes | None, size: tuple[float, float]) -> tuple[Figure, plt.Axes]:
    """The axes' figure, or a new figure and axes of ``size`` inches."""
    if ax is not None:
        return cast(Figure, ax.figure), ax
    fig = Figure(figsize=size)
    ax = fig.subplots()
    return fig, ax


def grid_figures(
    results: pd.DataFrame, grid: Mapping[str, Sequence[object]], *, backbone: str
) -> dict[str, Figure]:
    """The grid search's figures, by file name: the metric heatmap and the training curves.

    Args:
        results: the table of :func:`model.training.grid.run_grid`.
        grid: the grid it ran; the heatmap's axes are its first two parameters, or its one
            parameter against ``backbone`` (a column added with that value).
        backbone: the base config's backbone.
    """
    axes = [*list(grid)[:2], "backbone"][:2]
    table = results if "backbone" in results else results.assign(backbone=backbone)
    figures = {}
    if len(axes) == 2:
        figures["grid_heatmap"] = plot_grid_heatmap(table, *axes)
    figures["training_curves"] = plot_training_curves(results)
    return figures
