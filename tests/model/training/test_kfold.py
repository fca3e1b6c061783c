"""select="kfold": spatial folds of the training blocks, fold stores, trials ranked on the mean."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from model.config import ModelConfig
from model.training.grid import run_grid
from model.training.kfold import LEFT_OUT, FoldStore, fold_splits, write_folds
from tests.model.store_factory import open_store, write_disc_store
from tiling.errors import ConfigError

torch.set_num_threads(2)
FAST = {"max_epochs": 1, "limit_batches": 2, "enable_progress_bar": False}
SIZE, STRIDE = 64, 48  # tiles of 64 px overlapping by 16


def grid_tiles(n_rows=6, n_cols=6, seed=0):
    """A 6 x 6 tile grid of one raster (blocks of 2 x 2 tiles); its last row is test."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    tiles = pd.DataFrame(
        {
            "tile_id": np.arange(rows.size),
            "raster": "a",
            "row": rows.ravel() * STRIDE,
            "col": cols.ravel() * STRIDE,
            "split": np.where(rows.ravel() == n_rows - 1, "test", "train"),
            "n_boxes": rng.integers(0, 6, rows.size),
        }
    )
    tiles.loc[tiles["tile_id"].isin([7, 8]), "split"] = "val"
    size = STRIDE * (n_rows - 1) + SIZE
    meta = {
        "tile_size": SIZE,
        "overlap": SIZE - STRIDE,
        "rasters": [{"name": "a", "height": size, "width": size, "block_strides": 2}],
    }
    return tiles, meta


def overlapping(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether any tile of ``a`` shares a pixel with a tile of ``b`` (one raster)."""
    d_row = np.abs(a["row"].to_numpy()[:, None] - b["row"].to_numpy()[None, :])
    d_col = np.abs(a["col"].to_numpy()[:, None] - b["col"].to_numpy()[None, :])
    return bool(((d_row < SIZE) & (d_col < SIZE)).any())


def test_folds_are_whole_blocks_and_no_training_tile_touches_validation():
    tiles, meta = grid_tiles()
    k = 3
    splits = [fold_splits(tiles, meta, i, k, seed=0) for i in range(k)]
    pool = tiles["split"].isin(["train", "val"])
    val_count = sum((s == "val").astype(int) for s in splits)
    assert (val_count[pool] == 1).all()  # every train/val tile validates in exactly one fold
    block = (tiles["row"] // STRIDE // 2) * 3 + tiles["col"] // STRIDE // 2
    for split in splits:
        assert (split[~pool] == "test").all()  # test tiles stay test tiles
        val, train = tiles[split == "val"], tiles[split == "train"]
        assert set(block[split == "val"]).isdisjoint(block[split != "val"][pool])  # whole blocks
        assert not overlapping(train, val)
        left = tiles[split == LEFT_OUT]
        assert len(left) > 0 and all(overlapping(left.iloc[[i]], val) for i in range(len(left)))
        assert len(train) > 0 and len(val) >= 4  # 15 blocks of 2 x 2 tiles (edges) in 3 folds


def test_folds_share_tiles_and_objects_evenly():
    tiles, meta = grid_tiles(n_rows=9, n_cols=9, seed=3)
    splits = [fold_splits(tiles, meta, i, 4, seed=1) for i in range(4)]
    val_tiles = [int((s == "val").sum()) for s in splits]
    val_objects = [int(tiles.loc[s == "val", "n_boxes"].sum()) for s in splits]
    assert max(val_tiles) - min(val_tiles) <= 4  # within one block of 2 x 2
    assert max(val_objects) <= 1.5 * min(val_objects)


def test_a_fold_store_reopens_by_path_with_the_stores_pixels(tmp_path):
    store = open_store(write_disc_store(tmp_path / "s", n_tiles=12, tile_size=64))
    folds = write_folds(store, tmp_path / "kfold", 3, seed=0)
    assert [f.path.name for f in folds] == [f"storehash-k3-s0-f{i}" for i in range(3)]
    val = [set(f.split_ids("val")) for f in folds]
    assert set().union(*val) == set(store.split_ids("train")) | set(store.split_ids("val"))
    assert sum(len(v) for v in val) == 9  # the 9 train/val tiles, each validated once
    again = pickle.loads(pickle.dumps(folds[1]))  # how data loader workers and Ray reopen it
    assert isinstance(again, FoldStore)
    pd.testing.assert_frame_equal(again.tiles, folds[1].tiles)
    assert list(again.split_ids("test")) == list(store.split_ids("test"))
    tile = int(folds[1].split_ids("val")[0])
    assert np.array_equal(folds[1].image(tile), store.image(tile))
    assert json.loads((folds[0].path / "fold.json").read_text())["folds"] == 3


def test_more_folds_than_blocks_or_a_bad_count_is_refused(tmp_path):
    store = open_store(write_disc_store(tmp_path / "s", n_tiles=12, tile_size=64))
    with pytest.raises(ConfigError, match="folds=4 but the store's train and val tiles lie in 3"):
        write_folds(store, tmp_path / "kfold", 4, seed=0)
    with pytest.raises(ConfigError, match="folds=1 must be a whole number >= 2"):
        write_folds(store, tmp_path / "kfold", 1, seed=0)
    with pytest.raises(ConfigError, match="select='folds' must be 'val' or 'kfold'"):
        run_grid(ModelConfig(), {}, store, tmp_path / "g", select="folds")
    with pytest.raises(ConfigError, match="fold.json is missing"):
        FoldStore(tmp_path)


@pytest.mark.slow
def test_kfold_ranks_trials_by_their_mean_and_trains_the_best_on_the_store(tmp_path):
    store = open_store(write_disc_store(tmp_path / "s", n_tiles=12, tile_size=64))
    base = ModelConfig(batch_size=2, augment="none", fpn_channels=32)
    grid = {"lr": [1e-3, 1e-4]}
    out = tmp_path / "grid"
    results = run_grid(base, grid, store, out, select="kfold", folds=2, **FAST)
    assert len(results) == 2 and (results["status"] == "done").all()
    for _, row in results.iterrows():
        folds = json.loads(row["fold_map_50"])
        assert len(folds) == 2 and row["folds_done"] == 2
        assert row["val/map_50"] == pytest.approx(np.mean(folds))
        assert row["val/map_50_lo"] == pytest.approx(min(folds))
    best = results.loc[results["val/map_50"].astype(float).idxmax()]
    assert str(best["checkpoint"]).endswith("best.ckpt") and (out / "best.ckpt").is_file()
    final = out / "trials" / best["trial"]
    assert (final / "summary.json").is_file()  # trained once more, on the store's own split
    assert ModelConfig.from_yaml(final / "config.yaml").lr == best["lr"]
    assert len(list(out.glob("kfold/*/run/trials/*/summary.json"))) == 4  # 2 trials x 2 folds
    assert len(list((out / "trials").iterdir())) == 1
    saved = pd.read_csv(out / "kfold_results.csv")
    assert list(saved["lr"]) == [1e-3, 1e-4]
    again = run_grid(base, grid, store, out, select="kfold", folds=2, **FAST)
    assert again["val/map_50"].tolist() == pytest.approx(results["val/map_50"].tolist())  # resumed
