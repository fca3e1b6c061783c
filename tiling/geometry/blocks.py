"""Spatial blocks on a raster's tile grid: layout, automatic size, weighted draw, conflicts.

Blocks follow the tile grid. A block is ``k x k`` tiles (``k`` tile strides, ``stride = tile_size
- overlap``), counted in tile indices from the top-left tile; along an axis of ``n`` tiles the
blocks start at tiles ``0, k, 2k, ...`` and a last remainder of fewer than ``k / 2`` tiles joins
the block before it, so every block holds at least ``ceil(k / 2)`` whole tiles along each axis and
no edge block is an empty sliver (the tile snapped to the raster edge is the last tile of the last
block).

Every block is drawn to one split (:func:`draw_block_codes`): in a shuffled order, each block goes
to the split whose share of the total *weight* is furthest below its fraction (relative to the
fraction). A block's weight is the mean of its share of the raster's tiles and its share of the
catalogue's objects (centres inside it), so the fractions are honoured in tiles and objects, not
in blocks, and a split of positive fraction gets a block as long as there are blocks left.

Tiles take their block's split; then a tile that shares pixels with a tile of a *rarer* split is
dropped (:func:`drop_conflicts`): rarity is the ascending order of the fractions, ties broken as
test, val, train. So no pixel is shared between kept tiles of two splits, validation and test keep
every tile of their blocks, and the straddlers (one ring of tiles around each val/test region)
come out of the training split.

The seed draws :data:`DRAWS` such assignments and keeps the one with the lowest score: the
fraction of tiles dropped plus the mean relative error of the splits' shares of the kept tiles and
of their objects (:func:`plan_score`). Losses and fractions both count, so the choice neither
starves a split nor spends tiles for nothing; it tends to put val and test blocks where fewer
tiles straddle (next to each other, along the raster's edge).

Automatic block size (:func:`auto_block_strides`): the largest ``k`` between :data:`MIN_STRIDES`
and :data:`MAX_STRIDES` with which every split of positive fraction ``f`` expects at least
:data:`BLOCKS_PER_SPLIT` blocks (``f x n_blocks >= 2``); when even ``MIN_STRIDES`` gives fewer
(a small raster), the largest ``k <= MIN_STRIDES`` that still gives one block per split (down to
one stride: a raster of four tiles across gets 2 x 2 blocks of 2 x 2 tiles).
Larger blocks lose fewer tiles to straddling (about ``0.93 / k`` of the tiles for fractions
0.7/0.15/0.15) and are spatially more independent; more blocks spread val and test over the
raster. Pure functions: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from tiling.errors import ConfigError

#: Smallest automatic block side, in tile strides (3 strides: a block keeps a tile surrounded).
MIN_STRIDES = 3
#: Largest automatic block side, in tile strides (straddlers are then under ~6 % of the tiles).
MAX_STRIDES = 16
#: Blocks that every split of positive fraction expects under the automatic block size.
BLOCKS_PER_SPLIT = 2.0
#: Candidate assignments drawn per raster; the best by score is kept.
DRAWS = 16
#: Tie order of split rarity (codes 0 train, 1 val, 2 test): test is the rarest on ties.
TIE_ORDER = (2, 1, 0)


@dataclass(frozen=True)
class BlockLayout:
    """Blocks of ``strides x strides`` tiles over a grid of ``n_rows x n_cols`` tiles.

    Attributes:
        strides: block side ``k`` in tile strides.
        row_starts: ``LongTensor[n_block_rows]``, first tile row of each block row.
        col_starts: ``LongTensor[n_block_cols]``, first tile column of each block column.
        n_rows, n_cols: tiles along each axis.
    """

    strides: int
    row_starts: Tensor
    col_starts: Tensor
    n_rows: int
    n_cols: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(block rows, block columns)``."""
        return len(self.row_starts), len(self.col_starts)

    def tile_blocks(self) -> Tensor:
        """Block index (row-major) of every tile of the grid, ``LongTensor[n_rows * n_cols]``."""
        rows = torch.searchsorted(self.row_starts, torch.arange(self.n_rows), right=True) - 1
        cols = torch.searchsorted(self.col_starts, torch.arange(self.n_cols), right=True) - 1
        return (rows[:, None] * self.shape[1] + cols[None, :]).reshape(-1)


def axis_block_starts(n_tiles: int, strides: int) -> Tensor:
    """First tile index of each block along an axis of ``n_tiles`` tiles.

    Returns:
        ``LongTensor[n_blocks]``: ``0, k, 2k, ...``; a last remainder shorter than ``k / 2`` tiles
        is merged into the block before it.
    """
    if strides < 1:
        raise ConfigError(f"block side of {strides} tile strides must be >= 1")
    starts = torch.arange(0, n_tiles, strides, dtype=torch.long)
    if len(starts) > 1 and 2 * (n_tiles - int(starts[-1])) < strides:
        starts = starts[:-1]
    return starts


def block_layout(n_rows: int, n_cols: int, strides: int) -> BlockLayout:
    """The :class:`BlockLayout` of ``n_rows x n_cols`` tiles cut in blocks of ``strides``."""
    rows, cols = axis_block_starts(n_rows, strides), axis_block_starts(n_cols, strides)
    return BlockLayout(strides, rows, cols, n_rows, n_cols)


def auto_block_strides(n_rows: int, n_cols: int, fractions: Sequence[float]) -> int:
    """Block side in tile strides by the automatic rule (module docstring).

    Args:
        n_rows, n_cols: tiles along each axis of the raster's grid.
        fractions: ``(train, val, test)`` fractions.

    Returns:
        The largest ``k`` in ``[MIN_STRIDES, MAX_STRIDES]`` with ``min(positive fractions) x
        n_blocks >= BLOCKS_PER_SPLIT``; failing that, the largest ``k <= MIN_STRIDES`` that gives
        at least one block per split of positive fraction (rasters of a few tiles across); else 1.
    """
    positive = [f for f in fractions if f > 0]
    if len(positive) < 2:  # one split only: blocks do not matter, keep them large
        return MAX_STRIDES

    def n_blocks(k: int) -> int:
        return math.prod(block_layout(n_rows, n_cols, k).shape)

    need = BLOCKS_PER_SPLIT / min(positive)
    for k in range(MAX_STRIDES, MIN_STRIDES - 1, -1):
        if n_blocks(k) >= need - 1e-9:
            return k
    return next((k for k in range(MIN_STRIDES, 0, -1) if n_blocks(k) >= len(positive)), 1)


def resolve_block_strides(
    block_size: int | str | None,
    stride: int,
    n_rows: int,
    n_cols: int,
    fractions: Sequence[float],
) -> int:
    """Block side in tile strides from the ``block_size`` parameter.

    Args:
        block_size: ``"auto"``/None (:func:`auto_block_strides`) or pixels, rounded to the
            nearest whole number of strides (at least one).
        stride: ``tile_size - overlap`` in pixels.
        n_rows, n_cols: tiles along each axis.
        fractions: ``(train, val, test)`` fractions.
    """
    if block_size is None or block_size == "auto":
        return auto_block_strides(n_rows, n_cols, fractions)
    return max(1, round(int(block_size) / stride))


def cell_objects(row_offsets: Tensor, col_offsets: Tensor, xy: Tensor) -> Tensor:
    """Objects whose centre lies in each tile's cell, ``LongTensor[n_rows, n_cols]``.

    Tile ``i``'s cell along an axis spans from its offset to the next tile's offset (the last
    one to the raster's edge), so the cells partition the raster and every object counts once.

    Args:
        row_offsets, col_offsets: ``LongTensor[n_rows]``, ``[n_cols]`` sorted tile offsets.
        xy: ``FloatTensor[N, 2]`` object centres ``(x, y)`` in pixels.
    """
    x, y = xy.double().reshape(-1, 2).T.contiguous()
    rows = torch.searchsorted(row_offsets.double(), y, right=True).clamp_min(1) - 1
    cols = torch.searchsorted(col_offsets.double(), x, right=True).clamp_min(1) - 1
    index = rows * len(col_offsets) + cols
    counts = torch.bincount(index, minlength=len(row_offsets) * len(col_offsets))
    return counts.reshape(len(row_offsets), len(col_offsets))


def block_weights(layout: BlockLayout, cells: Tensor) -> np.ndarray:
    """Weight of each block: the mean of its share of the tiles and of the objects.

    Args:
        layout: the blocks.
        cells: ``LongTensor[n_rows, n_cols]`` objects per tile cell (:func:`cell_objects`).

    Returns:
        ``float64[n_blocks]`` (row-major), summing to 1; the tile share alone without objects.
    """
    blocks, n = layout.tile_blocks().numpy(), math.prod(layout.shape)
    tiles = np.bincount(blocks, minlength=n) / len(blocks)
    objects = np.bincount(blocks, weights=cells.reshape(-1).double().numpy(), minlength=n)
    return tiles if objects.sum() == 0 else (tiles + objects / objects.sum()) / 2


def draw_block_codes(
    weights: np.ndarray, fractions: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) of blocks, drawn to honour ``fractions`` in weight.

    In a random order, each block goes to the split of positive fraction whose weight so far is
    furthest below its fraction, relative to the fraction (ties to the earlier split).

    Args:
        weights: ``float64[n]`` block weights (:func:`block_weights`).
        fractions: ``(train, val, test)``, summing to 1.
        rng: draws the order.

    Returns:
        ``int64[n]`` codes.
    """
    target = np.asarray(fractions, dtype=np.float64)
    active = target > 0
    got = np.zeros(3)
    codes = np.zeros(len(weights), dtype=np.int64)
    for b in rng.permutation(len(weights)):
        deficit = np.where(active, (target - got) / np.where(active, target, 1.0), -np.inf)
        codes[b] = int(np.argmax(deficit))
        got[codes[b]] += weights[b]
    return codes


def split_rank(fractions: Sequence[float]) -> Tensor:
    """Rarity rank of each split code (higher = rarer): ascending fractions, ties by TIE_ORDER.

    Returns:
        ``LongTensor[3]``: ``rank[code]``.
    """
    order = sorted(range(3), key=lambda c: (-fractions[c], -TIE_ORDER.index(c)))
    rank = torch.empty(3, dtype=torch.long)
    rank[torch.tensor(order)] = torch.arange(3)
    return rank


def _touching(offsets: Tensor, tile_size: int) -> tuple[Tensor, Tensor]:
    """Per tile along an axis, the index range ``[lo, hi)`` of the tiles sharing pixels with it."""
    lo = torch.searchsorted(offsets, offsets - tile_size, right=True)
    hi = torch.searchsorted(offsets, offsets + tile_size, right=False)
    return lo, hi


def drop_conflicts(
    codes: Tensor,
    row_offsets: Tensor,
    col_offsets: Tensor,
    tile_size: int,
    fractions: Sequence[float],
    dropped: int = -1,
) -> Tensor:
    """Drop every tile that shares pixels with a tile of a rarer split (:func:`split_rank`).

    Tiles ``i`` and ``j`` share pixels when their footprints ``[r, r + T) x [c, c + T)``
    intersect; along an axis the tiles touching tile ``i`` form one index range (two binary
    searches), and one 2-D prefix sum per split code counts the codes in each tile's rectangle of
    touching tiles (no loop over tiles).

    Args:
        codes: ``LongTensor[n_rows, n_cols]`` provisional split code of every tile.
        row_offsets, col_offsets: ``LongTensor[n_rows]``, ``[n_cols]`` sorted tile offsets.
        tile_size: ``T`` in pixels.
        fractions: ``(train, val, test)`` (they set the rarity).
        dropped: the code given to dropped tiles.

    Returns:
        ``LongTensor[n_rows * n_cols]`` (row-major) codes, ``dropped`` where a tile was dropped.
    """
    r_lo, r_hi = _touching(row_offsets, tile_size)
    c_lo, c_hi = _touching(col_offsets, tile_size)
    r0, r1 = r_lo[:, None].expand(codes.shape), r_hi[:, None].expand(codes.shape)
    c0, c1 = c_lo[None, :].expand(codes.shape), c_hi[None, :].expand(codes.shape)
    rank = split_rank(fractions)
    conflict = torch.zeros(codes.shape, dtype=torch.bool)
    for code in range(3):
        table = torch.nn.functional.pad((codes == code).long().cumsum(0).cumsum(1), (1, 0, 1, 0))
        count = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
        conflict |= (count > 0) & (rank[codes] < rank[code])
    return torch.where(conflict, torch.full_like(codes, dropped), codes).reshape(-1)


def plan_block_splits(
    layout: BlockLayout,
    cells: Tensor,
    row_offsets: Tensor,
    col_offsets: Tensor,
    tile_size: int,
    fractions: Sequence[float],
    rng: np.random.Generator,
    dropped: int = -1,
) -> Tensor:
    """Split code of every tile: the best of :data:`DRAWS` block draws (module docstring).

    Args:
        layout: the blocks.
        cells: ``LongTensor[n_rows, n_cols]`` objects per tile cell (:func:`cell_objects`).
        row_offsets, col_offsets: ``LongTensor[n_rows]``, ``[n_cols]`` tile offsets in pixels.
        tile_size: ``T`` in pixels; ``fractions``: ``(train, val, test)``.
        rng: draws the candidates (seeded per raster).
        dropped: the code of dropped tiles.

    Returns:
        ``LongTensor[n_rows * n_cols]`` (row-major) codes 0, 1, 2 or ``dropped``.
    """
    weights = block_weights(layout, cells)
    tile_blocks = layout.tile_blocks()
    best, best_score = None, np.inf
    for _ in range(DRAWS):
        blocks = torch.from_numpy(draw_block_codes(weights, fractions, rng))
        grid = blocks[tile_blocks].reshape(layout.n_rows, layout.n_cols)
        codes = drop_conflicts(grid, row_offsets, col_offsets, tile_size, fractions, dropped)
        score = plan_score(codes, cells, fractions, dropped)
        if score < best_score:
            best, best_score = codes, score
    assert best is not None
    return best


def plan_score(codes: Tensor, cells: Tensor, fractions: Sequence[float], dropped: int) -> float:
    """Fraction of tiles dropped + the mean relative error of the kept tiles' and objects' shares.

    Args:
        codes: ``LongTensor[M]`` tile codes (``dropped`` for dropped tiles).
        cells: ``LongTensor[n_rows, n_cols]`` objects per tile cell, ``M = n_rows * n_cols``.
        fractions: ``(train, val, test)``.
        dropped: the code of dropped tiles.

    Returns:
        The score (lower is better): ``dropped / M + (e_tiles + e_objects) / 2`` with ``e`` the
        mean over splits of positive fraction ``f`` of ``|share - f| / f`` (relative, so that a
        small split short of its fraction weighs as much as a large one).
    """
    target = np.asarray(fractions, dtype=np.float64)
    active = target > 0
    kept = codes != dropped
    tiles: np.ndarray = np.bincount(codes[kept].numpy(), minlength=3).astype(np.float64)
    objects: np.ndarray = np.bincount(
        codes[kept].numpy(), weights=cells.reshape(-1)[kept].double().numpy(), minlength=3
    )
    if objects.sum() == 0:
        objects = tiles

    def error(counts: np.ndarray) -> float:
        share = counts / max(counts.sum(), 1.0)
        return float((np.abs(share - target)[active] / target[active]).mean())

    return 1 - tiles.sum() / len(codes) + (error(tiles) + error(objects)) / 2
