import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiling.errors import TilingError
from tiling.geometry.assign import assign_boxes, grid_axes
from tiling.geometry.grid import boxes_from_catalog, tile_grid


def brute_force(boxes, offsets, tile_size, min_visible):
    """Every (tile, object) pair, the objects x tiles way."""
    pairs = {}
    for t, (r, c) in enumerate(offsets.tolist()):
        for o, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
            cx1, cy1 = min(max(x1 - c, 0), tile_size), min(max(y1 - r, 0), tile_size)
            cx2, cy2 = min(max(x2 - c, 0), tile_size), min(max(y2 - r, 0), tile_size)
            area = (cx2 - cx1) * (cy2 - cy1)
            full = (x2 - x1) * (y2 - y1)
            if area > 0 and area / full >= min_visible:
                pairs[(t, o)] = (cx1, cy1, cx2, cy2)
    return pairs


@st.composite
def scenes(draw):
    tile = draw(st.integers(8, 40))
    overlap = draw(st.integers(0, tile - 1))
    height = draw(st.integers(tile, 4 * tile))
    width = draw(st.integers(tile, 4 * tile))
    n = draw(st.integers(0, 25))
    # positions on a half-pixel lattice so that borders, overlaps and edges are hit exactly
    xs = draw(st.lists(st.integers(-8, 2 * width + 8), min_size=n, max_size=n))
    ys = draw(st.lists(st.integers(-8, 2 * height + 8), min_size=n, max_size=n))
    ds = draw(st.lists(st.integers(1, 2 * tile), min_size=n, max_size=n))
    vis = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]))
    xy = torch.tensor([xs, ys], dtype=torch.float32).T.reshape(n, 2) / 2
    d = torch.tensor(ds, dtype=torch.float32) / 2
    return tile, overlap, height, width, boxes_from_catalog(xy, d), vis


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_matches_brute_force(scene):
    tile, overlap, height, width, boxes, vis = scene
    offsets = tile_grid(height, width, tile, overlap)
    got = assign_boxes(boxes, offsets, tile, vis)
    want = brute_force(boxes, offsets, tile, vis)
    assert set(zip(got.tile.tolist(), got.obj.tolist(), strict=True)) == set(want)
    for t, o, b in zip(got.tile.tolist(), got.obj.tolist(), got.boxes.tolist(), strict=True):
        assert b == pytest.approx(want[(t, o)], abs=1e-4)
    assert bool((got.boxes[:, 2:] <= tile).all()) and bool((got.boxes[:, :2] >= 0).all())
    assert bool((got.visible <= 1).all()) and bool((got.visible >= vis).all())


def test_object_in_overlap_goes_to_both_tiles():
    offsets = tile_grid(100, 180, 100, 20)  # columns at 0 and 80
    boxes = boxes_from_catalog(torch.tensor([[90.0, 50.0]]), torch.tensor([10.0]))
    got = assign_boxes(boxes, offsets, 100)
    assert got.tile.tolist() == [0, 1]
    assert got.boxes.tolist() == [[85.0, 45.0, 95.0, 55.0], [5.0, 45.0, 15.0, 55.0]]
    assert got.visible.tolist() == [1.0, 1.0]


def test_visible_fraction_on_a_border():
    offsets = tile_grid(100, 200, 100, 0)
    boxes = torch.tensor([[90.0, 0.0, 130.0, 10.0]])  # 10 px in tile 0, 30 px in tile 1
    got = assign_boxes(boxes, offsets, 100, min_visible=0.5)
    assert got.tile.tolist() == [1]
    assert got.visible.tolist() == [pytest.approx(0.75)]
    assert assign_boxes(boxes, offsets, 100, min_visible=0.0).tile.tolist() == [0, 1]


def test_empty_catalogue():
    got = assign_boxes(torch.zeros(0, 4), tile_grid(64, 64, 32, 0), 32)
    assert got.tile.numel() == 0 and got.boxes.shape == (0, 4)


def test_grid_axes_round_trip():
    offsets = tile_grid(300, 500, 128, 16)
    rows, cols = grid_axes(offsets)
    assert len(rows) * len(cols) == len(offsets)


def test_errors():
    offsets = tile_grid(64, 64, 32, 0)
    with pytest.raises(TilingError, match="min_visible=1.5"):
        assign_boxes(torch.zeros(1, 4), offsets, 32, 1.5)
    with pytest.raises(TilingError, match=r"shape \[N, 4\]"):
        assign_boxes(torch.zeros(3), offsets, 32)
    with pytest.raises(TilingError, match="row-major rectangular grid"):
        assign_boxes(torch.zeros(1, 4), offsets.flip(0), 32)
