"""The tile plan: which tiles to cut, in which split, with which boxes; splits without leakage.

:func:`candidate_tiles` lays the grid over each raster, gives every tile a split (below) and
assigns the catalogue's boxes to the tiles (:func:`tiling.geometry.assign.assign_boxes`); tile filters and
pixel reads come after it (:mod:`tiling.store`).

Overlapping tiles share pixels, so a random split of tiles would put the same pixels in training
and validation. Two leak-free schemes:

- ``"raster"``: whole rasters go to one split each (drawn with the seed, in the given fractions).
- ``"blocks"``: each raster is cut into square blocks of whole tile strides, drawn to splits with
  the seed so that the fractions hold in tiles and objects, and a tile that shares pixels with a
  tile of a rarer split is dropped (:mod:`tiling.geometry.blocks`, which also states the rule of
  the automatic block size). Kept tiles of two different splits never share a pixel.

In both schemes ``test_rasters`` names rasters that go wholly to ``"test"``; the fractions apply
to the other rasters (set the test fraction to 0 to keep them out of test).

Whole rasters are counted with the largest-remainder rule, so ``n`` rasters with fractions ``f``
get ``floor(n f)`` each plus one for the largest remainders (ties to the earlier split); then a
split with a positive fraction but no raster takes one from the largest split while that has two
or more (so 4 rasters at 0.7/0.15/0.15 give 2/1/1, not 3/1/0).
Pure functions: no I/O.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from tiling.errors import CatalogError, ConfigError
from tiling.geometry.assign import Assignment, assign_boxes
from tiling.geometry.blocks import (
    BlockLayout,
    block_layout,
    cell_objects,
    plan_block_splits,
    resolve_block_strides,
)
from tiling.geometry.box_columns import BOX_COLUMNS
from tiling.geometry.grid import axis_offsets, boxes_from_sizes, tile_grid

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_MODES = ("raster", "blocks")
#: Split code of a tile dropped because it straddles blocks of two splits.
DROPPED = -1


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validate ``(train, val, test)`` fractions: three numbers >= 0 that sum to 1.

    Raises:
        ConfigError: naming the fractions and the fix.
    """
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or min(values) < 0 or abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(
            f"split_fractions={tuple(fractions)} must be three numbers >= 0 (train, val, test) "
            "that sum to 1, e.g. (0.7, 0.15, 0.15)"
        )
    return values


def split_counts(n: int, fractions: Sequence[float]) -> np.ndarray:
    """Split ``n`` items by ``fractions`` with the largest-remainder rule.

    Returns:
        ``int64[3]`` counts that sum to ``n``.
    """
    exact = np.asarray(fractions, dtype=np.float64) * n
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - int(counts.sum())]] += 1
    for i in range(3):  # few items: a split with a positive fraction takes one from the largest
        if exact[i] > 0 and counts[i] == 0 and counts.max() > 1:
            counts[np.argmax(counts)] -= 1
            counts[i] += 1
    return counts


def draw_codes(n: int, fractions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) of ``n`` items: exact counts, shuffled order.

    Returns:
        ``int64[n]``.
    """
    codes = np.repeat(np.arange(3), split_counts(n, fractions))
    return rng.permutation(codes)


def raster_rng(seed: int, name: str) -> np.random.Generator:
    """A generator for one raster, from the seed and the raster's name (not its position)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def raster_splits(
    names: Sequence[str],
    fractions: Sequence[float],
    seed: int,
    test_rasters: Sequence[str] = (),
) -> dict[str, str]:
    """Assign whole rasters to splits.

    Args:
        names: raster names (file stems), unique.
        fractions: ``(train, val, test)`` fractions of the rasters not in ``test_rasters``.
        seed: seeds the shuffle.
        test_rasters: names that go to ``"test"``.

    Returns:
        ``{name: split}``.
    """
    fractions = check_fractions(fractions)
    check_test_rasters(names, test_rasters)
    free = sorted(set(names) - set(test_rasters))
    codes = draw_codes(len(free), fractions, np.random.default_rng(seed))
    out = {name: SPLITS[c] for name, c in zip(free, codes, strict=True)}
    out.update({name: "test" for name in test_rasters})
    return {name: out[name] for name in names}


def check_test_rasters(names: Sequence[str], test_rasters: Sequence[str]) -> None:
    """Raise :class:`ConfigError` if ``test_rasters`` names a raster that is not among ``names``."""
    unknown = sorted(set(test_rasters) - set(names))
    if unknown:
        raise ConfigError(
            f"test_rasters {unknown} are not among the rasters {sorted(names)}; "
            "give raster names as file stems (e.g. 'crater_field_b')"
        )


def block_plan(info: Mapping[str, Any], params: Mapping[str, Any]) -> BlockLayout:
    """The blocks of one raster under ``split="blocks"`` (:mod:`tiling.geometry.blocks`).

    Args:
        info: ``height``, ``width`` of the raster in pixels.
        params: ``tile_size``, ``overlap``, ``block_size`` (``"auto"``, None or pixels) and
            ``split_fractions``.
    """
    size, overlap = params["tile_size"], params["overlap"]
    n_rows = len(axis_offsets(info["height"], size, overlap))
    n_cols = len(axis_offsets(info["width"], size, overlap))
    strides = resolve_block_strides(
        params["block_size"], size - overlap, n_rows, n_cols, params["split_fractions"]
    )
    return block_layout(n_rows, n_cols, strides)


def tile_splits(
    info: Mapping[str, Any],
    names: Sequence[str],
    params: Mapping[str, Any],
    xy: Tensor,
) -> Tensor:
    """Split code of each tile of one raster, by the store parameters.

    Args:
        info: the raster's ``name``, ``height`` and ``width`` (pixels).
        names: every raster's name (for ``split="raster"``).
        params: ``split``, ``split_fractions``, ``seed``, ``test_rasters``, ``block_size``,
            ``tile_size``, ``overlap`` (as in ``meta["params"]``).
        xy: ``FloatTensor[N, 2]`` object centres in pixels (they weigh the blocks).

    Returns:
        ``LongTensor[M]`` (the grid of :func:`tiling.geometry.grid.tile_grid`, row-major) of codes
        0 (train), 1 (val), 2 (test) or ``DROPPED``.
    """
    fractions, seed, tests = params["split_fractions"], params["seed"], params["test_rasters"]
    size, overlap, name = params["tile_size"], params["overlap"], info["name"]
    rows = axis_offsets(info["height"], size, overlap)
    cols = axis_offsets(info["width"], size, overlap)
    if name in tests:
        return torch.full((len(rows) * len(cols),), 2, dtype=torch.long)
    if params["split"] == "raster":
        code = SPLITS.index(raster_splits(names, fractions, seed, tests)[name])
        return torch.full((len(rows) * len(cols),), code, dtype=torch.long)
    layout, cells = block_plan(info, params), cell_objects(rows, cols, xy)
    rng = raster_rng(seed, name)
    return plan_block_splits(layout, cells, rows, cols, size, fractions, rng, DROPPED)


def catalog_labels(catalog: pd.DataFrame) -> list[str]:
    """The catalogue's labels as strings (``"object"`` when it has no ``label`` column)."""
    if "label" not in catalog:
        return ["object"] * len(catalog)
    return catalog["label"].astype(str).tolist()


def catalog_sizes(catalog: pd.DataFrame) -> np.ndarray:
    """``float64[N, 2]`` box ``(width, height)`` of each object in pixels.

    The ``width`` and ``height`` columns when the catalogue has them (footprints on the body's
    ellipsoid, or boxes; see :func:`tiling.catalog.read.read_catalog`), else ``diameter`` twice.
    """
    if {"width", "height"} <= set(catalog.columns):
        return catalog[["width", "height"]].to_numpy(np.float64).reshape(-1, 2)
    return np.repeat(catalog["diameter"].to_numpy(np.float64).reshape(-1, 1), 2, axis=1)


def _catalog_boxes(catalog: pd.DataFrame, name: str) -> torch.Tensor:
    """``FloatTensor[N, 4]`` (float64) xyxy boxes of a catalogue, centred on ``x, y``."""
    missing = [c for c in ("x", "y", "diameter") if c not in catalog]
    if missing:
        raise CatalogError(
            f"catalogue of raster {name!r} lacks columns {missing}; it needs x, y, diameter "
            "in pixels (read it with tiling.catalog.read_catalog)"
        )
    return boxes_from_sizes(_centres(catalog), torch.tensor(catalog_sizes(catalog)))


def _centres(catalog: pd.DataFrame) -> Tensor:
    """``FloatTensor[N, 2]`` (float64) object centres ``(x, y)`` in pixels."""
    return torch.tensor(catalog[["x", "y"]].to_numpy(np.float64)).reshape(-1, 2)


def candidate_tiles(
    sources: Sequence[tuple[str | Path | None, pd.DataFrame]],
    rasters: list[dict[str, Any]],
    params: dict[str, Any],
    labels: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tiles of every raster (straddlers dropped) and their boxes, ``tile_id`` = row number.

    Returns:
        ``(tiles, boxes)``: tiles with ``tile_id, raster, array, row, col, split, n_boxes``;
        boxes with ``tile_id``, the clipped box ``xmin, ymin, xmax, ymax`` in tile pixels,
        ``label, label_id, visible, object_id`` and the object's whole ``diameter, width,
        height`` in pixels.
    """
    size, tile_frames, box_frames, base = params["tile_size"], [], [], 0
    names = [r["name"] for r in rasters]
    for k, ((_, catalog), info) in enumerate(zip(sources, rasters, strict=True)):
        boxes = _catalog_boxes(catalog, info["name"])
        offsets = tile_grid(info["height"], info["width"], size, params["overlap"])
        codes = tile_splits(info, names, params, _centres(catalog))
        got = assign_boxes(boxes, offsets, size, params["min_visible"])
        kept = (codes != DROPPED).numpy()
        ids = np.full(len(offsets), -1)
        ids[kept] = base + np.arange(kept.sum())
        log.info(
            "%s: %d tiles, %d dropped (sharing pixels with a rarer split)",
            info["name"],
            len(offsets),
            (~kept).sum(),
        )
        tile_frames.append(pd.DataFrame({
            "tile_id": ids[kept], "raster": info["name"], "array": k,
            "row": offsets[kept, 0].numpy(), "col": offsets[kept, 1].numpy(),
            "split": np.asarray(SPLITS)[codes[kept].numpy()],
            "n_boxes": torch.bincount(got.tile, minlength=len(offsets)).numpy()[kept],
        }))  # fmt: skip
        box_frames.append(_box_frame(got, kept, ids, catalog, labels))
        base += int(kept.sum())
    return pd.concat(tile_frames, ignore_index=True), pd.concat(box_frames, ignore_index=True)


def _box_frame(
    got: Assignment, kept: np.ndarray, ids: np.ndarray, catalog: pd.DataFrame, labels: list[str]
) -> pd.DataFrame:
    """The box rows of one raster's kept tiles (columns in :func:`candidate_tiles`)."""
    on_kept = kept[got.tile.numpy()]
    obj = got.obj.numpy()[on_kept]
    frame = pd.DataFrame(got.boxes.numpy()[on_kept], columns=BOX_COLUMNS)
    frame.insert(0, "tile_id", ids[got.tile.numpy()[on_kept]])
    frame["label"] = np.asarray(catalog_labels(catalog), dtype=object)[obj]
    frame["label_id"] = np.searchsorted(labels, frame["label"].to_numpy(str)).astype(np.int64)
    frame["visible"] = got.visible.numpy()[on_kept]
    frame["object_id"] = obj.astype(np.int64)
    frame["diameter"] = catalog["diameter"].to_numpy(np.float32)[obj]
    sizes = catalog_sizes(catalog).astype(np.float32)[obj]
    frame["width"], frame["height"] = sizes[:, 0], sizes[:, 1]
    return frame


def objects_per_split(tiles: pd.DataFrame, boxes: pd.DataFrame) -> pd.Series:
    """Distinct objects with a box on the tiles of each split, indexed by :data:`SPLITS`.

    An object is ``(array, object_id)`` (``object_id`` numbers a catalogue's rows); one seen on
    several tiles of a split counts once there, one cut by tiles of two splits counts in both.

    Args:
        tiles: ``tile_id, array, split`` (a store's or :func:`candidate_tiles`' tiles table).
        boxes: ``tile_id, object_id``.

    Returns:
        ``int64`` counts per split, 0 for a split without objects.
    """
    counts = _distinct_objects(tiles, boxes).groupby("split").size()
    return counts.reindex(pd.Index(SPLITS, name="split")).fillna(0).astype(np.int64)


def objects_of_split(tiles: pd.DataFrame, boxes: pd.DataFrame, split: str) -> pd.DataFrame:
    """One box row per distinct object on the tiles of ``split`` (first tile's row).

    Args:
        tiles: ``tile_id, array, split``.
        boxes: ``tile_id, object_id`` and any other columns (e.g. ``diameter`` in tile px).

    Returns:
        ``boxes``' columns plus ``split`` and ``array``; as many rows as
        ``objects_per_split(tiles, boxes)[split]``.
    """
    on = _distinct_objects(tiles, boxes)
    return on[on["split"] == split].reset_index(drop=True)


def _distinct_objects(tiles: pd.DataFrame, boxes: pd.DataFrame) -> pd.DataFrame:
    """``boxes`` with their tile's ``split`` and ``array``, one row per (split, array, object)."""
    by_id = tiles.set_index("tile_id")
    on = boxes.assign(
        split=by_id["split"].reindex(boxes["tile_id"]).to_numpy(),
        array=by_id["array"].reindex(boxes["tile_id"]).to_numpy(),
    )
    return on.drop_duplicates(["split", "array", "object_id"])
