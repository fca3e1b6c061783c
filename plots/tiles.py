"""Figures of the tile store: a grid of tiles with their boxes, counts per split, visibility.

Display: one band is shown in grey, three or more as RGB from the first three bands, stretched
linearly between the store's 2 % and 98 % band percentiles (``meta["band_stats"]``), the same for
every tile, so tiles can be compared. Nodata pixels are shown in magenta. Boxes are coloured by
label (``tab10`` by ``label_id``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from tiling.geometry.splits import SPLITS
from tiling.radiometry.stretch import LinearStretch
from tiling.store import split_summary
from tiling.store.interface import TileStoreLike

NODATA_RGB = (1.0, 0.0, 1.0)


def _display(image: np.ndarray, mask: np.ndarray, band_stats: dict[str, Any]) -> np.ndarray:
    """``image[C, T, T]`` as ``[T, T, 3]`` RGB in ``[0, 1]``, nodata pixels in magenta."""
    bands = 3 if image.shape[0] >= 3 else 1
    percentiles = band_stats["percentiles"]
    stretch = LinearStretch(tuple(percentiles["2"][:bands]), tuple(percentiles["98"][:bands]))
    shown = stretch.apply(image[:bands], fill=None, dtype=np.float64)
    rgb = np.repeat(shown, 3 // bands, axis=0).transpose(1, 2, 0)
    rgb[mask] = NODATA_RGB
    return rgb


def _pick_tiles(store: TileStoreLike, n: int, seed: int, split: str | None) -> np.ndarray:
    """Up to ``n`` tile ids drawn with ``seed`` (from ``split`` if given), sorted."""
    ids = store.tiles["tile_id"].to_numpy() if split is None else store.split_ids(split)
    chosen = np.random.default_rng(seed).choice(ids, size=min(n, len(ids)), replace=False)
    return np.sort(chosen)


def _draw_tile(ax: Any, store: TileStoreLike, tile_id: int) -> None:
    """One tile, its boxes and a title ``id raster split``."""
    ax.imshow(_display(store.image(tile_id), store.nodata_mask(tile_id), store.band_stats))
    target = store.target(tile_id)
    for (x1, y1, x2, y2), lab in zip(
        target["boxes"].tolist(), target["labels"].tolist(), strict=True
    ):
        ax.add_patch(
            Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1, ec=f"C{lab % 10}")
        )  # fmt: skip
    row = store.tiles.loc[store.tiles["tile_id"] == tile_id].iloc[0]
    ax.set_title(f"#{tile_id} {row['raster']} {row['split']}", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_tiles(
    store: TileStoreLike,
    tile_ids: Sequence[int] | None = None,
    n: int = 16,
    seed: int = 0,
    split: str | None = None,
) -> Figure:
    """A grid of tiles with their boxes drawn, coloured by label.

    Args:
        store: a :class:`tiling.store.TileStore`.
        tile_ids: tiles to show; by default ``n`` drawn with ``seed`` (from ``split`` if given).
        n: number of tiles drawn when ``tile_ids`` is None.
        seed: seeds the draw.
        split: ``"train"``, ``"val"`` or ``"test"`` to draw from one split only.

    Returns:
        The figure, one panel per tile and a legend of the labels.
    """
    ids = np.asarray(tile_ids if tile_ids is not None else _pick_tiles(store, n, seed, split))
    cols = max(1, math.ceil(math.sqrt(len(ids))))
    rows = max(1, math.ceil(len(ids) / cols))
    fig = Figure(figsize=(2.2 * cols, 2.3 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, tile_id in zip(axes, ids, strict=False):
        _draw_tile(ax, store, int(tile_id))
    for ax in axes[len(ids) :]:
        ax.set_visible(False)
    handles = [
        Patch(fill=False, ec=f"C{i % 10}", label=name) for i, name in enumerate(store.labels)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=max(1, len(handles)), fontsize=8)
    fig.suptitle(f"{len(ids)} tiles ({split or 'all splits'})", fontsize=9)
    return fig


def plot_split_counts(store: TileStoreLike) -> Figure:
    """Bars of tiles, empty tiles and boxes per split (from :func:`tiling.store.split_summary`)."""
    summary = split_summary(store)
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax_tiles, ax_boxes = fig.subplots(1, 2)
    x = np.arange(len(SPLITS))
    ax_tiles.bar(x - 0.2, summary["tiles"], 0.4, label="tiles")
    ax_tiles.bar(x + 0.2, summary["empty_tiles"], 0.4, label="empty tiles")
    ax_tiles.set_title("tiles per split")
    bottom = np.zeros(len(SPLITS))
    for i, label in enumerate(store.labels):
        values = summary[f"boxes_{label}"].to_numpy(dtype=float)
        ax_boxes.bar(x, values, 0.6, bottom=bottom, label=label, color=f"C{i % 10}")
        bottom += values
    ax_boxes.set_title("boxes per split")
    for ax in (ax_tiles, ax_boxes):
        ax.set_xticks(x, SPLITS)
        ax.legend(fontsize=8)
    return fig


def plot_visible_fraction(store: TileStoreLike, bins: int = 20) -> Figure:
    """Histogram of the boxes' visible fraction (visible area / full area), stacked by split."""
    split_of = store.tiles.set_index("tile_id")["split"]
    splits = split_of.reindex(store.boxes["tile_id"]).to_numpy()
    visible = store.boxes["visible"].to_numpy(dtype=float)
    fig = Figure(figsize=(5, 3), layout="constrained")
    ax = fig.subplots()
    data = [visible[splits == s] for s in SPLITS]
    ax.hist(data, bins=np.linspace(0, 1, bins + 1).tolist(), stacked=True, label=list(SPLITS))
    min_visible = store.meta.get("params", {}).get("min_visible")
    if min_visible is not None:
        ax.axvline(min_visible, color="k", ls="--", lw=1, label=f"min_visible={min_visible}")
    ax.set_xlabel("visible fraction of the object's box")
    ax.set_ylabel("boxes")
    ax.legend(fontsize=8)
    return fig


def store_figures(store: Any, *, seed: int = 0, n: int = 12) -> dict[str, Figure]:
    """The tile store's figures, by file name: training tiles, split counts, visible fraction.

    Args:
        store: a :class:`tiling.store.TileStore`.
        seed: picks the ``n`` training tiles shown.
    """
    return {
        "tiles_train": plot_tiles(store, n=n, seed=seed, split="train"),
        "split_counts": plot_split_counts(store),
        "visible_fraction": plot_visible_fraction(store),
    }
