"""The window grid and position+diameter boxes: pure tensor geometry, no I/O.

Boxes are ``xyxy`` floats in continuous pixel coordinates (see :mod:`tiling.sources`): an object of
diameter ``d`` centred at ``(x, y)`` is the box ``(x - d/2, y - d/2, x + d/2, y + d/2)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tiling.errors import TilingError


def axis_offsets(length: int, tile_size: int, overlap: int) -> Tensor:
    """Tile offsets along one axis of ``length`` pixels.

    Offsets step by ``stride = tile_size - overlap``; the last one is snapped to
    ``length - tile_size`` so every tile is full size. The count is
    ``ceil((length - tile_size) / stride) + 1``.

    Returns:
        ``LongTensor[n]``, increasing, starting at 0 and ending at ``length - tile_size``.
    """
    check_tiling(tile_size, overlap)
    if length < tile_size:
        raise TilingError(
            f"raster side of {length} px is smaller than tile_size={tile_size}; "
            "use a smaller tile_size or a larger raster"
        )
    stride = tile_size - overlap
    n = -(-(length - tile_size) // stride) + 1
    offsets = torch.arange(n, dtype=torch.long) * stride
    offsets[-1] = length - tile_size
    return offsets


def tile_grid(height: int, width: int, tile_size: int, overlap: int) -> Tensor:
    """Row/column offsets of the tiles covering a ``height x width`` raster.

    With ``stride = tile_size - overlap`` there are ``n_rows = ceil((height - tile_size) / stride)
    + 1`` rows of tiles and likewise ``n_cols`` columns; ``M = n_rows * n_cols``, in row-major
    order (tile ``i`` is at grid row ``i // n_cols`` and column ``i % n_cols``). The last row and
    column are snapped to the raster edge, so they overlap their neighbour by more than
    ``overlap``.

    Returns:
        ``LongTensor[M, 2]`` of ``(row, col)`` pixel offsets of each tile's top-left corner.

    Raises:
        TilingError: the raster is smaller than one tile, or the overlap is not in
            ``[0, tile_size)``.
    """
    rows = axis_offsets(height, tile_size, overlap)
    cols = axis_offsets(width, tile_size, overlap)
    grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
    return torch.stack([grid_r.reshape(-1), grid_c.reshape(-1)], dim=1)


def check_tiling(tile_size: int, overlap: int) -> None:
    """Raise :class:`TilingError` unless ``tile_size > 0`` and ``0 <= overlap < tile_size``."""
    if tile_size <= 0:
        raise TilingError(f"tile_size={tile_size} must be a positive number of pixels")
    if not 0 <= overlap < tile_size:
        raise TilingError(f"overlap={overlap} must be >= 0 and smaller than tile_size={tile_size}")


def check_fits(height: int, width: int, tile_size: int, name: str) -> None:
    """Raise :class:`TilingError` naming raster ``name`` unless a tile fits in it."""
    if min(height, width) < tile_size:
        raise TilingError(
            f"{name}: the raster ({height} x {width} px) is smaller than tile_size={tile_size}; "
            f"use a tile_size of at most {min(height, width)}, or a larger raster"
        )


def boxes_from_catalog(xy: Tensor, diameter: Tensor) -> Tensor:
    """Square ``xyxy`` boxes from centres and diameters, by broadcasting.

    Args:
        xy: ``FloatTensor[N, 2]`` of ``(x, y)`` centres in pixels.
        diameter: ``FloatTensor[N]`` of diameters in pixels.

    Returns:
        ``FloatTensor[N, 4]``: ``(x - d/2, y - d/2, x + d/2, y + d/2)``.
    """
    half = (diameter / 2).unsqueeze(1)
    return torch.cat([xy - half, xy + half], dim=1)


def boxes_from_sizes(xy: Tensor, sizes: Tensor) -> Tensor:
    """``xyxy`` boxes centred on ``xy`` with per-object widths and heights, by broadcasting.

    Args:
        xy: ``FloatTensor[N, 2]`` of ``(x, y)`` centres in pixels.
        sizes: ``FloatTensor[N, 2]`` of ``(width, height)`` in pixels.

    Returns:
        ``FloatTensor[N, 4]``: ``(x - w/2, y - h/2, x + w/2, y + h/2)``.
    """
    half = sizes / 2
    return torch.cat([xy - half, xy + half], dim=1)


def catalog_from_boxes(boxes: Tensor) -> tuple[Tensor, Tensor]:
    """Centres and diameters back from ``xyxy`` boxes (the mean of width and height).

    Args:
        boxes: ``FloatTensor[N, 4]``.

    Returns:
        ``(FloatTensor[N, 2] centres, FloatTensor[N] diameters)``.
    """
    x1, y1, x2, y2 = boxes.unbind(1)
    xy = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2], dim=1)
    return xy, ((x2 - x1) + (y2 - y1)) / 2
