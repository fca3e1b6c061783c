import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tiling.errors import TilingError
from tiling.geometry.grid import boxes_from_catalog, catalog_from_boxes, tile_grid


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 64).flatmap(
        lambda t: st.tuples(
            st.just(t), st.integers(0, t - 1), st.integers(t, 6 * t), st.integers(t, 6 * t)
        )
    )
)
def test_grid_covers_raster_with_full_tiles(args):
    tile, overlap, height, width = args
    offsets = tile_grid(height, width, tile, overlap)
    stride = tile - overlap
    n_rows = math.ceil((height - tile) / stride) + 1
    n_cols = math.ceil((width - tile) / stride) + 1
    assert offsets.shape == (n_rows * n_cols, 2)
    assert int(offsets[:, 0].max()) == height - tile and int(offsets[:, 1].max()) == width - tile
    assert int(offsets.min()) == 0
    covered = torch.zeros(height, width, dtype=torch.bool)
    for r, c in offsets.tolist():
        covered[r : r + tile, c : c + tile] = True
    assert bool(covered.all())


def test_grid_row_major():
    offsets = tile_grid(300, 200, 100, 0)
    assert offsets.tolist() == [[0, 0], [0, 100], [100, 0], [100, 100], [200, 0], [200, 100]]


def test_grid_errors():
    with pytest.raises(TilingError, match="smaller than tile_size=256"):
        tile_grid(100, 1000, 256, 0)
    with pytest.raises(TilingError, match="overlap=256"):
        tile_grid(1000, 1000, 256, 256)
    with pytest.raises(TilingError, match="tile_size=0"):
        tile_grid(1000, 1000, 0, 0)


def test_boxes_round_trip():
    xy = torch.tensor([[10.0, 20.0], [0.5, 3.25]])
    d = torch.tensor([4.0, 1.5])
    boxes = boxes_from_catalog(xy, d)
    assert boxes.tolist() == [[8.0, 18.0, 12.0, 22.0], [-0.25, 2.5, 1.25, 4.0]]
    back_xy, back_d = catalog_from_boxes(boxes)
    assert torch.equal(back_xy, xy) and torch.equal(back_d, d)
