"""Figures of the augmentation step: one tile under random augmentations; a sampler's epoch.

Display: one band is shown in grey, three or more as RGB from the first three bands. Every
panel uses the same per-band 2-98 % percentile stretch, taken from the original tile, so
radiometric changes (brightness, contrast, ...) stay visible instead of being re-stretched away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullFormatter, ScalarFormatter

from augment.base import Transform
from tiling.radiometry.stretch import Stretch, fit_stretch


def _shown_bands(image: np.ndarray) -> np.ndarray:
    """The bands displayed: the first 3 of ``image[C, H, W]``, or the first one."""
    return image[:3] if image.shape[0] >= 3 else image[:1]


def _display_stretch(image: np.ndarray) -> Stretch:
    """Linear stretch between the per-band 2 and 98 percentiles of the shown bands."""
    bands = _shown_bands(image)
    return fit_stretch("linear", bands.reshape(len(bands), -1), p_low=2, p_high=98)


def _display(image: np.ndarray, stretch: Stretch) -> np.ndarray:
    """``[H, W]`` grey or ``[H, W, 3]`` RGB in [0, 1] for ``imshow``."""
    shown = stretch.apply(_shown_bands(image), fill=None, dtype=np.float64)
    return shown[0] if shown.shape[0] == 1 else shown.transpose(1, 2, 0)


def _draw_boxes(
    ax: Any, boxes: np.ndarray, labels: np.ndarray, names: Sequence[str] | None
) -> None:
    """Rectangles coloured by label id (``tab10``), a legend when names are given."""
    colours = [f"C{i % 10}" for i in range(10)]
    seen: set[int] = set()
    for (x1, y1, x2, y2), lab in zip(boxes, labels, strict=True):
        name = names[lab] if names is not None and lab < len(names) else None
        ax.add_patch(
            Rectangle(
                (x1, y1),
                x2 - x1,
                y2 - y1,
                fill=False,
                lw=1,
                ec=colours[int(lab) % 10],
                label=name if name is not None and int(lab) not in seen else None,
            )
        )
        seen.add(int(lab))


def plot_augmentations(
    image: np.ndarray | torch.Tensor,
    target: dict[str, Any],
    transform: Transform,
    n: int = 8,
    seed: int = 0,
    labels: Sequence[str] | None = None,
) -> Figure:
    """The tile, then ``n`` random augmentations of it, boxes drawn.

    Args:
        image: ``[C, H, W]`` in any dtype (converted to float32), any band count.
        target: ``{"boxes": [K, 4] xyxy pixels, "labels": [K]}``.
        transform: e.g. ``augment.build_transform("default")``.
        n: number of augmented panels.
        seed: seeds the ``torch.Generator`` of the draws.
        labels: class names indexed by label id, for the legend.
    """
    original = torch.as_tensor(np.asarray(image, dtype=np.float32))
    boxes = torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4)
    tgt = {"boxes": boxes, "labels": torch.as_tensor(target["labels"], dtype=torch.long)}
    stretch = _display_stretch(original.numpy())
    gen = torch.Generator().manual_seed(seed)
    panels = [(original, tgt, "original")]
    panels += [(*transform(original, tgt, gen), f"augmented {i + 1}") for i in range(n)]
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(3.2 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (img, t, title) in zip(axes, panels, strict=False):
        ax.imshow(_display(img.numpy(), stretch), cmap="gray", interpolation="nearest")
        _draw_boxes(ax, t["boxes"].numpy(), t["labels"].numpy(), labels)
        ax.set_title(f"{title} ({len(t['boxes'])} boxes)", fontsize=9)
        ax.set_axis_off()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if labels is not None:
        handles, names = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, names, loc="outside lower center", ncols=len(names))
    return fig


def plot_sampler_effect(tiles_df: pd.DataFrame, boxes_df: pd.DataFrame, sampler: Any) -> Figure:
    """Labels, diameters and empty tiles seen in one epoch drawn by ``sampler`` vs uniform.

    Args:
        tiles_df: the rows the sampler indexes (``tile_id``), in the same order.
        boxes_df: ``tile_id``, ``label``, ``diameter``.
        sampler: yields positions into ``tiles_df`` (e.g. ``ContentWeightedSampler``).
    """
    drawn = tiles_df["tile_id"].to_numpy()[np.fromiter(iter(sampler), dtype=np.int64)]
    uniform = tiles_df["tile_id"].to_numpy()
    per_tile = boxes_df.groupby("tile_id")
    seen = {
        "uniform (each tile once)": uniform,
        "sampler (one epoch)": drawn,
    }
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    ax_lab, ax_diam, ax_empty = fig.subplots(1, 3)
    label_names = sorted(boxes_df["label"].unique())
    width = 0.4
    bins = np.geomspace(
        max(boxes_df["diameter"].min(), 1e-3), boxes_df["diameter"].max() + 1e-3, 30
    )
    for i, (name, ids) in enumerate(seen.items()):
        counts = pd.Series(ids).value_counts()
        boxes = boxes_df[boxes_df["tile_id"].isin(counts.index)]
        repeat = counts.reindex(boxes["tile_id"]).to_numpy()
        freq = pd.Series(repeat, index=boxes["label"].to_numpy()).groupby(level=0).sum()
        share = freq.reindex(label_names, fill_value=0) / max(freq.sum(), 1)
        ax_lab.bar(np.arange(len(label_names)) + (i - 0.5) * width, share, width, label=name)
        ax_diam.hist(
            boxes["diameter"],
            bins=bins,
            weights=repeat,
            density=True,
            histtype="step",
            lw=1.5,
            label=name,
        )
        empty = 1 - np.isin(ids, list(per_tile.groups)).mean()
        ax_empty.bar(i, empty, color=f"C{i}", label=name)
    ax_lab.set_xticks(np.arange(len(label_names)), label_names)
    ax_lab.set(ylabel="share of boxes seen", title="labels")
    ax_diam.set(xscale="log", xlabel="diameter (px)", ylabel="density", title="object diameters")
    ax_diam.xaxis.set_major_formatter(ScalarFormatter())
    ax_diam.xaxis.set_minor_formatter(NullFormatter())
    ax_empty.set_xticks([0, 1], ["uniform", "sampler"])
    ax_empty.set(ylabel="share of tiles drawn", title="empty tiles")
    ax_lab.legend(fontsize=8)
    return fig
