import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import write_geotiff
from tiling.errors import CatalogError, ConfigError
from tiling.geometry.grid import tile_grid
from tiling.geometry.splits import (
    candidate_tiles,
    catalog_sizes,
    check_fractions,
    objects_of_split,
    objects_per_split,
    raster_splits,
    split_counts,
    tile_splits,
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
              "split_fractions": (0.7, 0.15, 0.15), "test_rasters": ["b"], "block_size": 144}  # fmt: skip
    tiles, _ = candidate_tiles([(None, cat)] * 2, rasters, params, ["object"])
    b = tiles[tiles["raster"] == "b"]
    assert set(b["split"]) == {"test"} and len(b) == len(tile_grid(512, 512, 64, 16))
    assert len(tiles[tiles["raster"] == "a"]) < len(b)  # straddlers dropped in a only
    assert torch.is_tensor(tile_grid(512, 512, 64, 16))


PARAMS = {
    "tile_size": 256, "overlap": 32, "min_visible": 0.5, "split": "blocks", "seed": 0,
    "split_fractions": (0.7, 0.15, 0.15), "test_rasters": [], "block_size": "auto",
}  # fmt: skip


def uniform_catalog(height, width, n, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.uniform(0, width, n), "y": rng.uniform(0, height, n),
                         "diameter": rng.uniform(8, 40, n), "label": "crater"})  # fmt: skip


@pytest.mark.parametrize("tile_size", [256, 128])
@pytest.mark.parametrize("seed", range(6))
def test_one_raster_of_1150_by_1700_fills_every_split(tile_size, seed):
    """The issue's raster: every split gets tiles and validation at least 10 % of the objects."""
    info = {"name": "one", "height": 1150, "width": 1700}
    cat = uniform_catalog(1150, 1700, 300, seed)
    params = {**PARAMS, "tile_size": tile_size, "seed": seed}
    tiles, boxes = candidate_tiles([(None, cat)], [info], params, ["crater"])
    assert set(tiles["split"]) == {"train", "val", "test"}
    split_of = tiles.set_index("tile_id")["split"]
    val_objects = boxes[split_of.reindex(boxes["tile_id"]).to_numpy() == "val"]["object_id"]
    assert val_objects.nunique() >= 0.10 * len(cat)
    assert (tiles["split"] == "train").sum() > (tiles["split"] == "val").sum()


def test_tile_splits_raster_and_test_rasters():
    info = {"name": "a", "height": 512, "width": 512}
    none = torch.zeros(0, 2)
    raster = tile_splits(
        info, ["a", "b"], {**PARAMS, "split": "raster", "test_rasters": ["b"]}, none
    )
    assert len(raster) == 9 and len(set(raster.tolist())) == 1
    assert set(tile_splits(info, ["a"], {**PARAMS, "test_rasters": ["a"]}, none).tolist()) == {2}


def test_boxes_follow_width_and_height():
    """A catalogue with width/height keeps its boxes (not squares of the mean side)."""
    cat = pd.DataFrame({"x": [100.0], "y": [80.0], "diameter": [30.0], "width": [40.0],
                        "height": [20.0], "label": ["crown"]})  # fmt: skip
    assert catalog_sizes(cat).tolist() == [[40.0, 20.0]]
    assert catalog_sizes(cat.drop(columns=["width", "height"])).tolist() == [[30.0, 30.0]]
    params = {**PARAMS, "tile_size": 64, "overlap": 0, "split": "raster",
              "split_fractions": (1.0, 0.0, 0.0)}  # fmt: skip
    _, boxes = candidate_tiles([(None, cat)], [{"name": "a", "height": 128, "width": 128}], params,
                               ["crown"])  # fmt: skip
    whole = boxes[boxes["visible"] == 1.0]
    assert len(whole) == 1
    row = whole.iloc[0]
    assert (row.xmax - row.xmin, row.ymax - row.ymin) == (40.0, 20.0)
    assert (row.width, row.height, row.diameter) == (40.0, 20.0, 30.0)


def test_objects_per_split_counts_each_object_once_per_split():
    tiles = pd.DataFrame({
        "tile_id": [0, 1, 2, 3],
        "array": [0, 0, 0, 1],
        "split": ["train", "train", "val", "train"],
    })  # fmt: skip
    boxes = pd.DataFrame({
        "tile_id": [0, 1, 1, 2, 3, 3],
        "object_id": [5, 5, 6, 6, 5, 7],  # 5 on two train tiles; 6 on train and val; 5 again in array 1
    })  # fmt: skip
    counts = objects_per_split(tiles, boxes)
    assert counts.to_dict() == {"train": 4, "val": 1, "test": 0}
    assert counts.dtype == np.int64 and list(counts.index) == ["train", "val", "test"]
    empty = objects_per_split(tiles, boxes.iloc[:0])
    assert empty.to_dict() == {"train": 0, "val": 0, "test": 0}
    train = objects_of_split(
        tiles, boxes.assign(diameter=[9.0, 9.0, 20.0, 20.0, 9.0, 30.0]), "train"
    )
    assert sorted(zip(train["array"], train["object_id"], train["diameter"], strict=True)) == [
        (0, 5, 9.0), (0, 6, 20.0), (1, 5, 9.0), (1, 7, 30.0)
    ]  # fmt: skip
