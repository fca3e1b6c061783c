"""The tile plan: which tiles to cut, in which split, with which boxes; splits without leakage.

:func:`candidate_tiles` lays the grid over each raster, gives every tile a split (below) and
assigns the catalogue's boxes to the tiles (:func:`tiling.geometry.assign.assign_boxes`); tile filters and
pixel reads come after it (:mod:`tiling.store`).

Overlapping tiles share pixels, so a random split of tiles would put the same pixels in training
and validation. Two leak-free schemes:

- ``"raster"``: whole rasters go to one split each (drawn with the seed, in the given fractions).
- ``"blocks"``: each raster is cut into square blocks of ``block_size`` pixels anchored at its
  top-left corner; each block gets a split (drawn with the seed, in the given fractions, per
  raster); a tile whose footprint touches blocks of two different splits is dropped. A kept
  tile's pixels therefore lie in blocks of its own split only, and blocks are disjoint, so no pixel
  is shared between splits.

In both schemes ``test_rasters`` names rasters that go wholly to ``"test"``; the fractions apply
to the other rasters (set the test fraction to 0 to keep them out of test).

Counts per split use the largest-remainder rule, so ``n`` items with fractions ``f`` get
``floor(n f)`` each plus one for the largest remainders (ties to the earlier split); then a split
with a positive fraction but no item takes one from the largest split while that has two or more
(so 4 blocks at 0.7/0.15/0.15 give 2/1/1, not 3/1/0).
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
from tiling.geometry.assign import assign_boxes
from tiling.geometry.grid import boxes_from_catalog, tile_grid
from tiling.store.format import BOX_COLUMNS

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


def block_codes(
    height: int,
    width: int,
    block_size: int,
    fractions: Sequence[float],
    rng: np.random.Generator,
) -> Tensor:
    """Split code of each spatial block of a ``height x width`` raster.

    Returns:
        ``LongTensor[n_block_rows, n_block_cols]`` of codes 0 (train), 1 (val), 2 (test).
    """
    if block_size <= 0:
        raise ConfigError(f"block_size={block_size} must be a positive number of pixels")
    shape = (-(-height // block_size), -(-width // block_size))
    codes = draw_codes(shape[0] * shape[1], check_fractions(fractions), rng)
    return torch.from_numpy(codes).reshape(shape)


def tile_block_splits(offsets: Tensor, tile_size: int, block_size: int, blocks: Tensor) -> Tensor:
    """Split code of each tile from the blocks its footprint touches; straddlers get ``DROPPED``.

    A tile at ``(r, c)`` covers pixel rows ``[r, r + T)``, so block rows ``r // B`` to
    ``(r + T - 1) // B`` (likewise columns). It is kept when all the blocks in that rectangle
    have the same code, tested with one 2-D prefix sum per code (no Python loop over tiles).

    Args:
        offsets: ``LongTensor[M, 2]`` tile ``(row, col)`` offsets.
        tile_size: tile side ``T`` in pixels.
        block_size: block side ``B`` in pixels.
        blocks: ``LongTensor[nbr, nbc]`` block codes from :func:`block_codes`.

    Returns:
        ``LongTensor[M]`` codes in ``{DROPPED, 0, 1, 2}``.
    """
    r0, c0 = offsets[:, 0] // block_size, offsets[:, 1] // block_size
    r1 = (offsets[:, 0] + tile_size - 1) // block_size + 1
    c1 = (offsets[:, 1] + tile_size - 1) // block_size + 1
    first = blocks[r0, c0]
    area = (r1 - r0) * (c1 - c0)
    same = torch.zeros(len(offsets), dtype=torch.long)
    for code in range(3):
        table = torch.nn.functional.pad((blocks == code).long().cumsum(0).cumsum(1), (1, 0, 1, 0))
        count = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
        same = torch.where(first == code, count, same)
    return torch.where(same == area, first, torch.full_like(first, DROPPED))


def tile_splits(
    offsets: Tensor,
    name: str,
    height: int,
    width: int,
    names: Sequence[str],
    params: Mapping[str, Any],
) -> Tensor:
    """Split code of each tile of one raster, by the store parameters.

    Args:
        offsets: ``LongTensor[M, 2]`` the raster's tile offsets.
        name: the raster's name; ``height``, ``width``: its size in pixels.
        names: every raster's name (for ``split="raster"``).
        params: ``split``, ``split_fractions``, ``seed``, ``test_rasters``, ``block_size``,
            ``tile_size`` (as in ``meta["params"]``).

    Returns:
        ``LongTensor[M]`` of codes 0 (train), 1 (val), 2 (test) or ``DROPPED``.
    """
    fractions, seed, tests = params["split_fractions"], params["seed"], params["test_rasters"]
    if name in tests:
        return torch.full((len(offsets),), 2, dtype=torch.long)
    if params["split"] == "raster":
        code = SPLITS.index(raster_splits(names, fractions, seed, tests)[name])
        return torch.full((len(offsets),), code, dtype=torch.long)
    size = params["block_size"]
    blocks = block_codes(height, width, size, fractions, raster_rng(seed, name))
    return tile_block_splits(offsets, params["tile_size"], size, blocks)


def catalog_labels(catalog: pd.DataFrame) -> list[str]:
    """The catalogue's labels as strings (``"object"`` when it has no ``label`` column)."""
    if "label" not in catalog:
        return ["object"] * len(catalog)
    return catalog["label"].astype(str).tolist()


def _catalog_boxes(catalog: pd.DataFrame, name: str) -> torch.Tensor:
    """``FloatTensor[N, 4]`` (float64) xyxy boxes of a catalogue."""
    missing = [c for c in ("x", "y", "diameter") if c not in catalog]
    if missing:
        raise CatalogError(
            f"catalogue of raster {name!r} lacks columns {missing}; it needs x, y, diameter "
            "in pixels (read it with tiling.catalog.read_catalog)"
        )
    xy = torch.tensor(catalog[["x", "y"]].to_numpy(np.float64)).reshape(-1, 2)
    return boxes_from_catalog(xy, torch.tensor(catalog["diameter"].to_numpy(np.float64)))


def candidate_tiles(
    sources: Sequence[tuple[str | Path, pd.DataFrame]],
    rasters: list[dict[str, Any]],
    params: dict[str, Any],
    labels: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tiles of every raster (straddlers dropped) and their boxes, ``tile_id`` = row number."""
    size, tile_frames, box_frames, base = params["tile_size"], [], [], 0
    names = [r["name"] for r in rasters]
    for k, ((_, catalog), info) in enumerate(zip(sources, rasters, strict=True)):
        offsets = tile_grid(info["height"], info["width"], size, params["overlap"])
        codes = tile_splits(offsets, info["name"], info["height"], info["width"], names, params)
        got = assign_boxes(
            _catalog_boxes(catalog, info["name"]), offsets, size, params["min_visible"]
        )
        kept = (codes != DROPPED).numpy()
        ids = np.full(len(offsets), -1)
        ids[kept] = base + np.arange(kept.sum())
        log.info(
            "%s: %d tiles, %d dropped (straddling split blocks)",
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
        on_kept = kept[got.tile.numpy()]
        obj = got.obj.numpy()[on_kept]
        frame = pd.DataFrame(got.boxes.numpy()[on_kept], columns=BOX_COLUMNS)
        frame.insert(0, "tile_id", ids[got.tile.numpy()[on_kept]])
        frame["label"] = np.asarray(catalog_labels(catalog), dtype=object)[obj]
        frame["label_id"] = np.searchsorted(labels, frame["label"].to_numpy(str)).astype(np.int64)
        frame["visible"] = got.visible.numpy()[on_kept]
        frame["object_id"] = obj.astype(np.int64)
        frame["diameter"] = catalog["diameter"].to_numpy(np.float32)[obj]
        box_frames.append(frame)
        base += int(kept.sum())
    return pd.concat(tile_frames, ignore_index=True), pd.concat(box_frames, ignore_index=True)
