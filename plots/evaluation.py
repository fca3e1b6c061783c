"""Figures of a prediction's evaluation: matches on the raster, P-R curve, size statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from model.evaluate import Evaluation, evaluate_catalog
from plots.catalog import display_stretch
from tiling.errors import CatalogError
from tiling.sources import open_raster

#: Colours of hits, misses and false alarms.
COLOURS = {"hit": "tab:green", "miss": "tab:red", "false alarm": "tab:orange"}


def plot_matches(
    raster_path: str | Path,
    evaluation: Evaluation | None = None,
    *,
    pred: pd.DataFrame | None = None,
    truth: pd.DataFrame | None = None,
    max_size: int = 1024,
    **match_options: object,
) -> Figure:
    """Overview of the raster with hits (green), misses (red) and false alarms (orange).

    Args:
        raster_path: the raster the catalogues refer to (pixel coordinates).
        evaluation: an :class:`Evaluation`; or give ``pred`` and ``truth`` (evaluated here with
            ``match_options`` passed to :func:`evaluate_catalog`).
        max_size: longer side of the overview in pixels.
    """
    if evaluation is None:
        if pred is None or truth is None:
            raise CatalogError("plot_matches: give an evaluation, or both pred and truth")
        evaluation = evaluate_catalog(pred, truth, **match_options)  # type: ignore[arg-type]
    with open_raster(raster_path) as raster:
        image, scale = raster.read_overview(max_size)
        nodata = raster.nodata
    fig = Figure(figsize=(8, 8 * image.shape[1] / image.shape[2]))
    ax = fig.add_subplot()
    ax.set_facecolor("0.5")  # nodata
    ax.imshow(display_stretch(image, nodata, (2, 98)), cmap="gray")
    p, t = evaluation.pred, evaluation.truth
    groups = {
        "hit": t[t["status"] == "tp"],
        "miss": t[t["status"] == "fn"],
        "false alarm": p[p["status"] == "fp"],
    }
    for name, frame in groups.items():
        ax.scatter(
            frame["x"] / scale - 0.5,
            frame["y"] / scale - 0.5,
            s=np.clip((frame["diameter"] / scale) ** 2, 4, 400),
            facecolors="none",
            edgecolors=COLOURS[name],
            linewidths=0.8,
            label=f"{name} ({len(frame)})",
        )
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title(f"{Path(raster_path).name}: overview 1:{scale:.1f}")
    ax.set_axis_off()
    return fig


def plot_pr_curve(evaluation: Evaluation) -> Figure:
    """Precision against recall (greedy by score), with the AP in the title."""
    fig = Figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    curve = evaluation.pr_curve
    if not curve.empty:
        envelope = np.maximum.accumulate(curve["precision"].to_numpy()[::-1])[::-1]
        ax.plot(curve["recall"], curve["precision"], color="0.6", lw=1, label="raw")
        ax.step(curve["recall"], envelope, where="post", color="tab:blue", label="interpolated")
        ax.legend()
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02))
    ax.set_title(f"AP = {evaluation.summary['ap']:.3f}")
    return fig


def plot_recall_by_diameter(evaluation: Evaluation) -> Figure:
    """Recall and precision per diameter bin (log x), with object counts."""
    bins = evaluation.by_diameter
    centre = np.sqrt(bins["d_min"] * bins["d_max"])
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(centre, bins["recall"], "o-", label="recall (by true D)")
    ax.plot(centre, bins["precision"], "s--", label="precision (by predicted D)")
    for x, n in zip(centre, bins["n_truth"], strict=True):
        ax.annotate(str(n), (x, 0.02), ha="center", fontsize="x-small", color="0.4")
    ax.set(xscale="log", xlabel="diameter (px)", ylabel="fraction", ylim=(0, 1.05))
    ax.legend()
    return fig


def plot_size_frequency_comparison(pred: pd.DataFrame, truth: pd.DataFrame) -> Figure:
    """Cumulative size-frequency N(>D) of prediction and truth, log-log."""
    fig = Figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    for name, frame in (("truth", truth), ("prediction", pred)):
        d = np.sort(frame["diameter"].to_numpy(float))[::-1]
        ax.step(d, np.arange(1, len(d) + 1), where="post", label=f"{name} ({len(d)})")
    ax.set(xscale="log", yscale="log", xlabel="diameter D (px)", ylabel="N(>D)")
    ax.legend()
    return fig


def plot_miss_heatmap(
    evaluation: Evaluation, raster_shape: tuple[int, int], cell: int = 256, *, rate: bool = True
) -> Figure:
    """Misses over the raster per ``cell`` x ``cell`` px: miss rate (or count when rate=False)."""
    height, width = raster_shape
    edges = (np.arange(0, height + cell, cell), np.arange(0, width + cell, cell))
    t = evaluation.truth
    miss = t[t["status"] == "fn"]
    n_miss, _, _ = np.histogram2d(miss["y"], miss["x"], bins=edges)
    values = n_miss
    if rate:
        n_all, _, _ = np.histogram2d(t["y"], t["x"], bins=edges)
        values = np.where(n_all > 0, n_miss / np.maximum(n_all, 1), np.nan)
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(edges[1], edges[0], values, cmap="magma", vmin=0)
    ax.set(xlabel="x (px)", ylabel="y (px)", aspect="equal")
    ax.invert_yaxis()
    fig.colorbar(mesh, ax=ax, label="miss rate" if rate else "misses")
    return fig


def evaluation_figures(
    raster_path: str | Path, evaluation: Evaluation, pred: pd.DataFrame, truth: pd.DataFrame
) -> dict[str, Figure]:
    """An evaluation's figures, by file name: matches, P-R curve, recall by diameter, sizes, misses.

    Args:
        raster_path: the raster both catalogues refer to (pixel coordinates).
        evaluation: :func:`~model.evaluate.evaluate_catalog` of ``pred`` against ``truth``.
        pred, truth: the catalogues that were compared (``x``, ``y``, ``diameter`` in px).
    """
    with open_raster(raster_path) as raster:
        shape = (raster.height, raster.width)
    return {
        "matches": plot_matches(raster_path, evaluation),
        "pr_curve": plot_pr_curve(evaluation),
        "recall_by_diameter": plot_recall_by_diameter(evaluation),
        "size_frequency_comparison": plot_size_frequency_comparison(pred, truth),
        "miss_heatmap": plot_miss_heatmap(evaluation, shape),
    }
