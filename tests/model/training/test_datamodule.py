import pickle

import numpy as np
import pytest
import torch

from model.config import ModelConfig
from model.run_config import RunConfig
from model.training.datamodule import (
    StoreRef,
    TileDataModule,
    TileDataset,
    collate_tiles,
    fill_values,
)
from tests.model.store_factory import open_store, write_disc_store
from tiling.errors import ConfigError


@pytest.fixture
def store(tmp_path):
    return open_store(write_disc_store(tmp_path, n_tiles=12, tile_size=64, nodata=0))


def test_dataset_items_are_float_tiles_with_nodata_at_the_band_mean(store):
    ids = store.split_ids("train")
    mean = store.band_stats["mean"]
    ds = TileDataset(store, ids, mean)
    assert len(ds) == len(ids)
    image, target = ds[0]
    assert image.dtype == torch.float32 and image.shape == (1, 64, 64)
    raw = store.image(ids[0])
    nodata = store.nodata_mask(ids[0])
    assert nodata[:8].all() and not nodata[8:].any()
    assert torch.allclose(image[0, :8], torch.tensor(mean[0], dtype=torch.float32))
    assert torch.equal(image[0, 8:], torch.from_numpy(raw[0, 8:].astype(np.float32)))
    expected = store.target(ids[0])
    assert torch.equal(target["boxes"], expected["boxes"])
    assert torch.equal(target["labels"], expected["labels"])


def test_dataset_targets_of_every_tile_match_the_store(store):
    ids = np.arange(len(store))
    ds = TileDataset(store, ids, [0.0])
    for i in ids:
        t = ds.target(int(i))
        assert torch.equal(t["boxes"], store.target(int(i))["boxes"])
        assert t["labels"].dtype == torch.long
    assert len(ds.target(len(ids) - 1)["boxes"]) == 0  # the empty tile


def test_dataset_pickles_by_path_and_reopens(store):
    ds = TileDataset(store, store.split_ids("val"), [1.0])
    blob = pickle.dumps(ds)
    assert len(blob) < 20_000  # the pixels are not in it
    copy = pickle.loads(blob)
    assert type(copy.store) is type(store) and copy.store.path == store.path
    assert torch.equal(copy[1][0], ds[1][0])
    assert StoreRef.of(store).open().path == store.path


def test_collate_stacks_images_and_keeps_targets(store):
    ds = TileDataset(store, store.split_ids("train"), [0.0])
    images, targets = collate_tiles([ds[0], ds[1], ds[2]])
    assert images.shape == (3, 1, 64, 64)
    assert isinstance(targets, list) and len(targets) == 3


@pytest.mark.parametrize("workers", [0, 2])
def test_loaders_give_batches_of_the_configured_size(store, workers):
    config = ModelConfig(classes=store.labels, tile_size=64, batch_size=4)
    dm = TileDataModule(store, config, run=RunConfig(num_workers=workers), samples_per_epoch=8)
    train = dm.train_dataloader()
    assert train.persistent_workers == (workers > 0)
    assert train.num_workers == workers
    batches = list(train)
    assert len(batches) == 2
    images, targets = batches[0]
    assert images.shape == (4, 1, 64, 64) and len(targets) == 4
    val = list(dm.val_dataloader())
    assert sum(len(t) for _, t in val) == len(store.split_ids("val"))


def test_train_sampler_draws_fewer_empty_tiles(tmp_path):
    splits = ["train"] * 12
    store = open_store(write_disc_store(tmp_path, n_tiles=12, splits=splits))
    config = ModelConfig(classes=store.labels, tile_size=64, batch_size=4)
    dm = TileDataModule(store, config, samples_per_epoch=2000, empty_weight=0.0)
    draws = np.array(list(dm.train_sampler()))
    assert 11 not in draws  # the last tile is empty
    assert len(np.unique(draws)) == 11


def test_fill_values_prefer_the_config_mean(store):
    config = ModelConfig(tile_size=64, image_mean=[5.0], image_std=[2.0], in_channels=1)
    assert fill_values(config, store) == [5.0]
    assert fill_values(config.replace(image_mean=None), store) == store.band_stats["mean"]


def test_empty_split_and_unknown_split_raise(tmp_path):
    store = open_store(write_disc_store(tmp_path, n_tiles=4, splits=["train"] * 4))
    dm = TileDataModule(store, ModelConfig(classes=store.labels, tile_size=64))
    assert dm.has_split("train") and not dm.has_split("val")
    with pytest.raises(ConfigError, match="has no 'val' tiles"):
        dm.val_dataloader()
    with pytest.raises(ConfigError, match="split='valid' is unknown"):
        dm.split_rows("valid")


def test_datamodule_pickles_without_pixels(store):
    dm = TileDataModule(store, ModelConfig(classes=store.labels, tile_size=64))
    dm.dataset("train")
    copy = pickle.loads(pickle.dumps(dm))
    assert copy.store.path == store.path
    assert len(copy.dataset("train")) == len(store.split_ids("train"))
