"""Assignment of catalogue objects to the tiles of a grid, with tensor operations only.

An object's box ``[x1, x2) x [y1, y2)`` overlaps tile row ``i`` (offset ``r_i``) exactly when
``r_i < y2`` and ``r_i + T > y1``. Offsets along an axis are sorted, so the overlapping rows form
one contiguous index range ``[lo, hi)`` found by two binary searches per object
(``torch.searchsorted``), which also handles the last row snapped to the raster edge; likewise for
columns. The (object, tile) pairs are then expanded from those ranges with ``repeat_interleave``,
so the work and memory are O(objects x tiles-per-object): no objects x tiles matrix is ever built.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from tiling.errors import TilingError


class Assignment(NamedTuple):
    """Pairs of (tile, object) that passed the visibility threshold, ``K`` of them.

    Attributes:
        tile: ``LongTensor[K]`` index into the grid's offsets.
        obj: ``LongTensor[K]`` index into the boxes.
        boxes: ``FloatTensor[K, 4]`` the object's box clipped to the tile, in tile pixel
            coordinates (``0 <= x1 < x2 <= T``).
        visible: ``FloatTensor[K]`` clipped area / full box area, in ``(0, 1]``.
    """

    tile: Tensor
    obj: Tensor
    boxes: Tensor
    visible: Tensor


def grid_axes(offsets: Tensor) -> tuple[Tensor, Tensor]:
    """Recover the sorted row and column offsets of a row-major grid from ``tile_grid``.

    Args:
        offsets: ``LongTensor[M, 2]`` of ``(row, col)`` offsets, row-major.

    Returns:
        ``(rows[n_rows], cols[n_cols])``.

    Raises:
        TilingError: ``offsets`` is not the product of its rows and columns in row-major order.
    """
    rows = torch.unique(offsets[:, 0])
    cols = torch.unique(offsets[:, 1])
    expected = torch.cartesian_prod(rows, cols)
    if expected.shape != offsets.shape or not torch.equal(expected, offsets.to(expected.dtype)):
        raise TilingError(
            "offsets are not a row-major rectangular grid; build them with tiling.geometry.grid.tile_grid"
        )
    return rows, cols


def _index_range(lo_edge: Tensor, hi_edge: Tensor, starts: Tensor, tile_size: int) -> Tensor:
    """Per object, the range ``[lo, hi)`` of tiles along one axis that its extent overlaps.

    Args:
        lo_edge, hi_edge: ``FloatTensor[N]`` extent of each object along the axis.
        starts: ``Tensor[n]`` sorted tile offsets along the axis.
        tile_size: tile side in pixels.

    Returns:
        ``LongTensor[N, 2]`` of ``(lo, hi)``; ``hi <= lo`` means no tile.
    """
    starts = starts.to(lo_edge.dtype)
    lo = torch.searchsorted(starts + tile_size, lo_edge.contiguous(), right=True)
    hi = torch.searchsorted(starts, hi_edge.contiguous(), right=False)
    return torch.stack([lo, hi], dim=1)


def _expand_pairs(row_range: Tensor, col_range: Tensor, n_cols: int) -> tuple[Tensor, Tensor]:
    """Expand each object's row and column index ranges into (tile, object) pairs.

    Returns:
        ``(tile LongTensor[P], obj LongTensor[P])`` with ``P`` the total number of pairs.
    """
    n_r = (row_range[:, 1] - row_range[:, 0]).clamp(min=0)
    n_c = (col_range[:, 1] - col_range[:, 0]).clamp(min=0)
    counts = n_r * n_c
    obj = torch.repeat_interleave(torch.arange(len(counts)), counts)
    first = torch.cumsum(counts, 0) - counts
    k = torch.arange(len(obj)) - first[obj]
    r = row_range[obj, 0] + torch.div(k, n_c[obj], rounding_mode="floor")
    c = col_range[obj, 0] + k % n_c[obj]
    return r * n_cols + c, obj


def assign_boxes(
    boxes: Tensor, offsets: Tensor, tile_size: int, min_visible: float = 0.5
) -> Assignment:
    """Assign object boxes to the tiles they are visible in.

    Args:
        boxes: ``FloatTensor[N, 4]`` xyxy in raster pixels.
        offsets: ``LongTensor[M, 2]`` ``(row, col)`` tile offsets from ``tile_grid``.
        tile_size: tile side ``T`` in pixels.
        min_visible: keep a pair when the visible fraction of the object's area inside the tile
            is at least this (``0`` keeps every pair with a positive overlap).

    Returns:
        :class:`Assignment`, sorted by tile then object.

    Raises:
        TilingError: ``min_visible`` outside ``[0, 1]`` or ``boxes`` not ``[N, 4]``.
    """
    if not 0.0 <= min_visible <= 1.0:
        raise TilingError(f"min_visible={min_visible} must be in [0, 1]")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise TilingError(f"boxes must have shape [N, 4], got {tuple(boxes.shape)}")
    boxes = boxes.to(torch.float64)
    rows, cols = grid_axes(offsets)
    x1, y1, x2, y2 = boxes.unbind(1)
    tile, obj = _expand_pairs(
        _index_range(y1, y2, rows, tile_size), _index_range(x1, x2, cols, tile_size), len(cols)
    )
    origin = offsets[tile].to(torch.float64).flip(1).repeat(1, 2)  # (col, row, col, row)
    clipped = (boxes[obj] - origin).clamp(0, tile_size)
    area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    full = ((x2 - x1) * (y2 - y1))[obj].clamp(min=torch.finfo(torch.float64).tiny)
    visible = area / full
    keep = (area > 0) & (visible >= min_visible)
    tile, obj = tile[keep], obj[keep]
    order = torch.argsort(tile * max(len(boxes), 1) + obj)
    return Assignment(
        tile=tile[order],
        obj=obj[order],
        boxes=clipped[keep][order].to(torch.float32),
        visible=visible[keep][order].clamp(max=1.0).to(torch.float32),
    )
