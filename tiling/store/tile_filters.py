"""Tile filters: small named callables over the tiles table (and boxes), applied in order.

A :class:`TileFilter` returns a boolean keep-mask over the rows of the tiles table (columns of
``tiles.parquet``: ``raster``, ``row``, ``col``, ``n_boxes``, ``nodata_fraction``, ...). Its
``repr`` is its name with its parameters, e.g. ``max_nodata_fraction(0.5)``, and goes into the tile
store's hash, so changing a filter builds a new store.

Every filter decides each tile from that tile's own row (and seed) alone, so the masks commute:
the order in which filters are given changes only the report of how many each removed, never the
tiles kept. :func:`keep_empty` draws its tiles with a hash of ``(seed, raster, row, col)`` rather
than a shuffled sequence, for the same reason. This lets the store builder apply the filters that
need no pixels before reading the raster (so dropped tiles are never read or written) and the
pixel ones (``needs_pixels``, e.g. the nodata fraction) afterwards.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tiling.errors import ConfigError

log = logging.getLogger(__name__)

#: ``mask(tiles, boxes, seed) -> bool[len(tiles)]`` (an array, a Series or a list of booleans).
MaskFn = Callable[[pd.DataFrame, pd.DataFrame, int], object]


@dataclass(frozen=True)
class TileFilter:
    """A named keep-mask over the tiles table.

    Attributes:
        name: readable repr with the parameters (used in the store hash).
        mask: ``(tiles, boxes, seed) -> bool ndarray[len(tiles)]``; True keeps the tile.
        needs_pixels: the mask reads ``nodata_fraction`` (known only after the pixels are read).
    """

    name: str
    mask: MaskFn
    needs_pixels: bool = False

    def __call__(self, tiles: pd.DataFrame, boxes: pd.DataFrame, seed: int = 0) -> np.ndarray:
        """Keep-mask ``bool[len(tiles)]`` of this filter."""
        keep = np.asarray(self.mask(tiles, boxes, seed), dtype=bool)
        if keep.shape != (len(tiles),):
            raise ConfigError(
                f"tile filter {self.name} returned a mask of shape {keep.shape}; "
                f"it must be a boolean array of shape ({len(tiles)},), one value per tile"
            )
        return keep

    def __repr__(self) -> str:
        return self.name


def max_nodata_fraction(fraction: float) -> TileFilter:
    """Keep tiles whose fraction of nodata pixels is at most ``fraction`` (in ``[0, 1]``)."""
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"max_nodata_fraction({fraction}): the fraction must be in [0, 1]")
    return TileFilter(
        f"max_nodata_fraction({fraction})",
        lambda tiles, boxes, seed: tiles["nodata_fraction"].to_numpy() <= fraction,
        needs_pixels=True,
    )


def min_objects(n: int) -> TileFilter:
    """Keep tiles with at least ``n`` assigned boxes."""
    if n < 0:
        raise ConfigError(f"min_objects({n}): the number of objects must be >= 0")
    return TileFilter(f"min_objects({n})", lambda tiles, boxes, seed: tiles["n_boxes"] >= n)


def keep_empty(fraction: float) -> TileFilter:
    """Keep every tile with boxes and about ``fraction`` of the empty (negative) ones.

    Each empty tile is kept when ``u < fraction``, where ``u`` in ``[0, 1)`` is a hash of the
    build seed, the raster name and the tile's offsets: reproducible, and independent of the
    other tiles and filters.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"keep_empty({fraction}): the fraction must be in [0, 1]")

    def mask(tiles: pd.DataFrame, boxes: pd.DataFrame, seed: int) -> np.ndarray:
        return (tiles["n_boxes"].to_numpy() > 0) | (tile_uniform(tiles, seed) < fraction)

    return TileFilter(f"keep_empty({fraction})", mask)


def tile_where(
    func: Callable[[pd.DataFrame], object], name: str, *, needs_pixels: bool = False
) -> TileFilter:
    """Wrap a per-tile function of the tiles table returning a boolean mask.

    Args:
        func: ``tiles -> bool[len(tiles)]``; it must decide each tile from its own row.
        name: repr used in the store hash; give the parameters, e.g. ``"rows_below(512)"``.
        needs_pixels: True if it reads ``nodata_fraction``.
    """
    return TileFilter(name, lambda tiles, boxes, seed: func(tiles), needs_pixels=needs_pixels)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on ``uint64`` arrays (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def tile_uniform(tiles: pd.DataFrame, seed: int) -> np.ndarray:
    """A uniform number in ``[0, 1)`` per tile from ``(seed, raster, row, col)``.

    Returns:
        ``float64[len(tiles)]``.
    """
    names = tiles["raster"].astype(str)
    crc = names.map(lambda s: zlib.crc32(s.encode())).to_numpy(np.uint64)
    with np.errstate(over="ignore"):
        z = _splitmix64(np.full(len(tiles), seed % 2**63, dtype=np.uint64) ^ crc)
        z = _splitmix64(z ^ tiles["row"].to_numpy(np.uint64))
        z = _splitmix64(z ^ (tiles["col"].to_numpy(np.uint64) << np.uint64(32)))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def apply_tile_filters(
    tiles: pd.DataFrame,
    boxes: pd.DataFrame,
    filters: Sequence[TileFilter],
    seed: int = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Apply ``filters`` in order and report how many tiles each removed (logged at INFO).

    Args:
        tiles: the tiles table (one row per candidate tile).
        boxes: the boxes table (``tile_id`` refers to ``tiles``).
        filters: applied in order; each sees only the tiles kept so far.
        seed: passed to every filter.

    Returns:
        ``(keep bool[len(tiles)], report)`` with report columns ``filter``, ``before``, ``removed``.
    """
    keep = np.ones(len(tiles), dtype=bool)
    rows = []
    for f in filters:
        if not isinstance(f, TileFilter):
            raise ConfigError(
                f"tile filter {f!r} is not a TileFilter; build it with tiling.store.tile_filters "
                "(max_nodata_fraction, min_objects, keep_empty, tile_where)"
            )
        idx = np.flatnonzero(keep)
        sub = tiles.iloc[idx]
        removed = idx[~f(sub, boxes[boxes["tile_id"].isin(sub["tile_id"])], seed)]
        keep[removed] = False
        rows.append({"filter": repr(f), "before": len(idx), "removed": len(removed)})
        log.info("tile filter %s removed %d of %d tiles", f, len(removed), len(idx))
    return keep, pd.DataFrame(rows, columns=["filter", "before", "removed"])
