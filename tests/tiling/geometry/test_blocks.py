import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiling.errors import ConfigError
from tiling.geometry.blocks import (
    MAX_STRIDES,
    MIN_STRIDES,
    auto_block_strides,
    axis_block_starts,
    block_layout,
    block_weights,
    cell_objects,
    draw_block_codes,
    drop_conflicts,
    plan_block_splits,
    plan_score,
    resolve_block_strides,
    split_rank,
)
from tiling.geometry.grid import axis_offsets

FRACTIONS = (0.7, 0.15, 0.15)


@pytest.mark.parametrize(
    ("n", "k", "starts"),
    [
        (10, 3, [0, 3, 6]),  # a last remainder of 1 tile (< 1.5) joins the block before it
        (11, 3, [0, 3, 6, 9]),  # 2 tiles (>= 1.5) stay a block of their own
        (2, 3, [0]),
        (27, 7, [0, 7, 14, 21]),
        (4, 2, [0, 2]),
    ],
)
def test_axis_block_starts(n, k, starts):
    assert axis_block_starts(n, k).tolist() == starts


def test_axis_block_starts_error():
    with pytest.raises(ConfigError, match="block side of 0 tile strides must be >= 1"):
        axis_block_starts(5, 0)


def test_block_layout_tile_blocks():
    layout = block_layout(5, 8, 3)  # rows [0-2][3-4], cols [0-2][3-5][6-7]
    assert layout.shape == (2, 3)
    blocks = layout.tile_blocks().reshape(5, 8)
    assert blocks[0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert blocks[4].tolist() == [3, 3, 3, 4, 4, 4, 5, 5]
    assert np.bincount(blocks.reshape(-1).numpy()).tolist() == [9, 9, 6, 6, 6, 4]


def test_auto_block_strides_rule():
    # 6000 px at tile 256 / overlap 32: 27 x 27 tiles; 2 / 0.15 = 13.3 blocks are needed:
    # k = 8 gives 3 x 3 (the last 3 tiles join the block before), k = 7 gives 4 x 4 = 16
    assert auto_block_strides(27, 27, FRACTIONS) == 7
    assert auto_block_strides(5, 8, FRACTIONS) == MIN_STRIDES  # 1150 x 1700 px at 256: 6 blocks
    assert auto_block_strides(4, 4, FRACTIONS) == 2  # 4 tiles across: 2 x 2 blocks
    assert auto_block_strides(2, 2, FRACTIONS) == 1
    assert auto_block_strides(200, 300, FRACTIONS) == MAX_STRIDES
    assert auto_block_strides(27, 27, (1.0, 0.0, 0.0)) == MAX_STRIDES
    # with val at 0.3, 2 / 0.3 = 6.7 blocks suffice: blocks from tiles 0, 10, 20 (3 x 3 = 9)
    assert auto_block_strides(27, 27, (0.4, 0.3, 0.3)) == 10


def test_resolve_block_strides():
    assert resolve_block_strides(1024, 224, 27, 27, FRACTIONS) == 5  # 4.57 strides, rounded
    assert resolve_block_strides(100, 224, 27, 27, FRACTIONS) == 1
    assert resolve_block_strides("auto", 224, 27, 27, FRACTIONS) == 7
    assert resolve_block_strides(None, 224, 27, 27, FRACTIONS) == 7


def test_cell_objects_partition_the_raster():
    rows, cols = axis_offsets(1150, 256, 32), axis_offsets(1700, 256, 32)  # 0, 224, ..., 894
    xy = torch.tensor([[0.0, 0.0], [223.9, 224.0], [1699.0, 1149.0], [1400.0, 893.0]])
    cells = cell_objects(rows, cols, xy)
    assert cells.shape == (5, 8) and int(cells.sum()) == 4
    assert int(cells[0, 0]) == 1 and int(cells[1, 0]) == 1
    assert int(cells[4, 7]) == 1 and int(cells[3, 6]) == 1  # 893 < 894: the cell of row 3


def test_block_weights_tiles_and_objects():
    rows, cols = axis_offsets(1150, 256, 32), axis_offsets(1700, 256, 32)
    layout = block_layout(len(rows), len(cols), 3)
    tiles_only = block_weights(layout, cell_objects(rows, cols, torch.zeros(0, 2)))
    assert tiles_only == pytest.approx(np.array([9, 9, 6, 6, 6, 4]) / 40)
    # all objects in the last block (from row 672 and column 1344 to the edges)
    xy = torch.tensor([[1600.0, 1000.0], [1400.0, 700.0]])
    weights = block_weights(layout, cell_objects(rows, cols, xy))
    assert weights.sum() == pytest.approx(1.0)
    assert weights[-1] == pytest.approx((4 / 40 + 1) / 2)
    assert weights[0] == pytest.approx(9 / 40 / 2)


def test_draw_block_codes_honours_weight_fractions():
    rng = np.random.default_rng(0)
    assert np.bincount(draw_block_codes(np.full(4, 0.25), FRACTIONS, rng)).tolist() == [2, 1, 1]
    assert np.bincount(draw_block_codes(np.full(20, 0.05), FRACTIONS, rng)).tolist() == [14, 3, 3]
    codes = draw_block_codes(np.full(10, 0.1), (0.8, 0.2, 0.0), rng)
    assert np.bincount(codes, minlength=3).tolist() == [8, 2, 0]


@pytest.mark.parametrize("seed", range(20))
def test_draw_block_codes_weight_within_two_blocks(seed):
    """Each split's weight ends within two of the heaviest block's weight of its fraction."""
    rng = np.random.default_rng(seed)
    weights = rng.pareto(2.0, 30) + 0.1
    weights /= weights.sum()
    got = np.zeros(3)
    np.add.at(got, draw_block_codes(weights, (0.6, 0.25, 0.15), rng), weights)
    assert np.abs(got - (0.6, 0.25, 0.15)).max() <= 2 * weights.max() + 1e-12


def test_split_rank():
    assert split_rank(FRACTIONS).tolist() == [0, 1, 2]  # test rarest on ties, then val
    assert split_rank((0.2, 0.7, 0.1)).tolist() == [1, 0, 2]


def _intersect(a: tuple[int, int], b: tuple[int, int], tile: int) -> bool:
    return abs(a[0] - b[0]) < tile and abs(a[1] - b[1]) < tile


@settings(max_examples=40, deadline=None)
@given(
    tile=st.integers(4, 16),
    overlap_frac=st.floats(0, 0.7),
    size=st.tuples(st.integers(16, 80), st.integers(16, 80)),
    seed=st.integers(0, 1000),
    fractions=st.sampled_from([FRACTIONS, (0.5, 0.3, 0.2), (0.2, 0.7, 0.1), (0.6, 0.4, 0.0)]),
)
def test_drop_conflicts_brute_force(tile, overlap_frac, size, seed, fractions):
    """A tile is dropped exactly when it shares pixels with a tile of a rarer split."""
    overlap = min(int(tile * overlap_frac), tile - 1)
    rows, cols = axis_offsets(size[0], tile, overlap), axis_offsets(size[1], tile, overlap)
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 3, (len(rows), len(cols)), generator=gen)
    got = drop_conflicts(codes, rows, cols, tile, fractions).reshape(codes.shape)
    rank = split_rank(fractions)
    where = [(int(r), int(c)) for r in rows for c in cols]
    flat = codes.reshape(-1).tolist()
    for i, (pos, code) in enumerate(zip(where, flat, strict=True)):
        rarer = any(
            rank[other] > rank[code] and _intersect(pos, where[j], tile)
            for j, other in enumerate(flat)
        )
        assert int(got.reshape(-1)[i]) == (-1 if rarer else code)
    kept = [(p, c) for p, c in zip(where, got.reshape(-1).tolist(), strict=True) if c >= 0]
    for p, a in kept:  # the leakage invariant
        assert all(a == b or not _intersect(p, q, tile) for q, b in kept)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("height", "width"), [(232, 232), (232, 400), (600, 900)])
def test_every_split_gets_tiles_from_four_tiles_across(height, width, seed):
    """Rasters of 4 tiles across (tile 64, overlap 8) and up: train, val and test all get tiles."""
    rows, cols = axis_offsets(height, 64, 8), axis_offsets(width, 64, 8)
    layout = block_layout(len(rows), len(cols), auto_block_strides(len(rows), len(cols), FRACTIONS))
    cells = cell_objects(rows, cols, torch.zeros(0, 2))
    codes = plan_block_splits(layout, cells, rows, cols, 64, FRACTIONS, np.random.default_rng(seed))
    assert set(codes.tolist()) - {-1} == {0, 1, 2}


def test_plan_score_counts_losses_and_shares():
    cells = torch.tensor([[10, 0], [2, 2]])
    fractions = (0.5, 0.25, 0.25)
    codes = torch.tensor([0, 1, 2, -1])  # kept tiles 1/1/1, their objects 10/0/2
    tiles_error = (abs(1 / 3 - 0.5) / 0.5 + 2 * abs(1 / 3 - 0.25) / 0.25) / 3
    objects_error = (abs(10 / 12 - 0.5) / 0.5 + 1 + abs(2 / 12 - 0.25) / 0.25) / 3
    expected = 0.25 + (tiles_error + objects_error) / 2
    assert plan_score(codes, cells, fractions, -1) == pytest.approx(expected)
    perfect = torch.tensor([0, 0, 1, 2])
    assert plan_score(perfect, torch.tensor([[1, 1], [1, 1]]), fractions, -1) == pytest.approx(0)
