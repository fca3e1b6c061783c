import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import write_geotiff
from tiling.errors import CatalogError, ConfigError
from tiling.geometry.grid import tile_grid
from tiling.geometry.splits import (
    DROPPED,
    block_codes,
    candidate_tiles,
    check_fractions,
    raster_splits,
    split_counts,
    tile_block_splits,
)
from tiling.store import build_tile_store


def test_split_counts_largest_remainder():
    assert split_counts(10, (0.7, 0.15, 0.15)).tolist() == [7, 2, 1]
    assert split_counts(2, (0.7, 0.15, 0.15)).tolist() == [1, 1, 0]
    assert split_counts(4, (0.7, 0.15, 0.15)).tolist() == [2, 1, 1]
    assert split_counts(1, (0.7, 0.15, 0.15)).tolist() == [1, 0, 0]
    assert split_counts(5, (1.0, 0.0, 0.0)).tolist() == [5, 0, 0]
    assert split_counts(0, (0.7, 0.15, 0.15)).tolist() == [0, 0, 0]
    assert split_counts(101, (1 / 3, 1 / 3, 1 / 3)).sum() == 101


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.8, 0.3, -0.1), (0.5, 0.2, 0.2)])
def test_check_fractions_errors(fractions):
    with pytest.raises(ConfigError, match="must be three numbers >= 0"):
        check_fractions(fractions)


def test_raster_splits():
    names = [f"r{i}" for i in range(10)]
    got = raster_splits(names, (0.6, 0.2, 0.2), seed=3, test_rasters=["r9"])
    assert list(got) == names and got["r9"] == "test"
    assert sorted(got.values()).count("train") == 5  # 9 free rasters: 5.4, 1.8, 1.8 -> 5, 2, 2
    assert got == raster_splits(names, (0.6, 0.2, 0.2), seed=3, test_rasters=["r9"])
    with pytest.raises(ConfigError, match=r"test_rasters \['x'\] are not among"):
        raster_splits(names, (0.6, 0.2, 0.2), seed=0, test_rasters=["x"])


def test_block_codes_errors_and_counts():
    codes = block_codes(1000, 700, 100, (0.5, 0.25, 0.25), np.random.default_rng(0))
    assert codes.shape == (10, 7)
    assert np.bincount(codes.flatten().numpy()).tolist() == [35, 18, 17]
    with pytest.raises(ConfigError, match="block_size=0 must be a positive"):
        block_codes(10, 10, 0, (1, 0, 0), np.random.default_rng(0))


@settings(max_examples=50, deadline=None)
@given(
    tile=st.integers(4, 16),
    overlap=st.integers(0, 3),
    factor=st.integers(1, 4),
    size=st.tuples(st.integers(16, 90), st.integers(16, 90)),
    seed=st.integers(0, 5),
)
def test_tile_block_splits_brute_force(tile, overlap, factor, size, seed):
    block = tile * factor - seed % 3  # also block sizes that are not multiples of the tile
    block = max(block, tile)
    offsets = tile_grid(*size, tile, overlap)
    blocks = block_codes(*size, block, (0.4, 0.3, 0.3), np.random.default_rng(seed))
    got = tile_block_splits(offsets, tile, block, blocks)
    for (r, c), code in zip(offsets.tolist(), got.tolist(), strict=True):
        touched = blocks[
            r // block : (r + tile - 1) // block + 1, c // block : (c + tile - 1) // block + 1
        ]
        expected = int(touched[0, 0]) if bool((touched == touched[0, 0]).all()) else DROPPED
        assert code == expected


def test_no_pixel_shared_between_splits(tmp_path):
    """Leakage: the pixel footprints of tiles in different splits never intersect."""
    data = np.random.default_rng(0).integers(0, 255, (1, 700, 560), dtype=np.uint8)
    path = write_geotiff(tmp_path / "leak.tif", data)
    cat = pd.DataFrame({"x": [10.0], "y": [10.0], "diameter": [5.0], "label": ["a"]})
    store = build_tile_store([(path, cat)], tmp_path / "s", tile_size=64, overlap=24,
                             block_size=150, split_fractions=(0.5, 0.3, 0.2), workers=0)  # fmt: skip
    tiles = store.tiles
    assert set(tiles["split"]) == {"train", "val", "test"}
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        ta, tb = tiles[tiles["split"] == a], tiles[tiles["split"] == b]
        ra, ca = ta["row"].to_numpy()[:, None], ta["col"].to_numpy()[:, None]
        rb, cb = tb["row"].to_numpy()[None], tb["col"].to_numpy()[None]
        overlap_rows = (ra < rb + 64) & (rb < ra + 64)
        overlap_cols = (ca < cb + 64) & (cb < ca + 64)
        assert not (overlap_rows & overlap_cols).any(), f"{a} and {b} tiles share pixels"
    # and the pixels themselves: no validation pixel position is covered by a training tile
    covered = np.zeros((700, 560), dtype=np.int8)
    for t in tiles.itertuples():
        code = {"train": 1, "val": 2, "test": 4}[t.split]
        covered[t.row : t.row + 64, t.col : t.col + 64] |= code
    assert not np.isin(covered, [3, 5, 6, 7]).any()


def test_candidate_tiles_raster_split_and_test_rasters():
    rasters = [{"name": n, "height": 256, "width": 256} for n in ("a", "b", "c")]
    cat = pd.DataFrame({"x": [30.0], "y": [40.0], "diameter": [10.0], "label": ["k"]})
    params = {"tile_size": 64, "overlap": 0, "min_visible": 0.5, "split": "raster", "seed": 0,
              "split_fractions": (1.0, 0.0, 0.0), "test_rasters": ["c"], "block_size": None}  # fmt: skip
    tiles, boxes = candidate_tiles([(None, cat)] * 3, rasters, params, ["k"])
    assert tiles.groupby("raster")["split"].unique().map(list).to_dict() == {
        "a": ["train"],
        "b": ["train"],
        "c": ["test"],
    }
    assert len(boxes) == 3 and list(tiles["tile_id"]) == list(range(48))
    with pytest.raises(CatalogError, match=r"raster 'a' lacks columns \['x', 'y'\]"):
        candidate_tiles(
            [(None, cat.drop(columns=["x", "y"]))],
            rasters[:1],
            {**params, "test_rasters": []},
            ["k"],
        )


def test_blocks_test_rasters_go_wholly_to_test():
    rasters = [{"name": n, "height": 512, "width": 512} for n in ("a", "b")]
    cat = pd.DataFrame({"x": [30.0], "y": [40.0], "diameter": [10.0]})
    params = {"tile_size": 64, "overlap": 16, "min_visible": 0.5, "split": "blocks", "seed": 0,
              "split_fractions": (0.7, 0.15, 0.15), "test_rasters": ["b"], "block_size": 128}  # fmt: skip
    tiles, _ = candidate_tiles([(None, cat)] * 2, rasters, params, ["object"])
    b = tiles[tiles["raster"] == "b"]
    assert set(b["split"]) == {"test"} and len(b) == len(tile_grid(512, 512, 64, 16))
    assert len(tiles[tiles["raster"] == "a"]) < len(b)  # straddlers dropped in a only
    assert torch.is_tensor(tile_grid(512, 512, 64, 16))
