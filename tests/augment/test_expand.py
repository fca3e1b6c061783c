import json

import numpy as np
import pandas as pd
import pytest
import torch

from augment.expand import cast_to_dtype, expand_store
from tiling.errors import ConfigError
from tiling.store.format import (
    BOX_COLUMNS,
    BOX_TABLE_COLUMNS,
    OBJECT_SIZE_COLUMNS,
    TILE_COLUMNS,
)


class FakeStore:
    """The parts of tiling.store.TileStore that expand_store uses, in memory."""

    def __init__(self, path, n_per_array=(5, 3), size=16, bands=2, seed=0):
        rng = np.random.default_rng(seed)
        self.path = path
        self.labels = ["degraded", "fresh"]
        self.arrays = [
            rng.integers(60000, 65535, (n, bands, size, size), dtype=np.uint16) for n in n_per_array
        ]
        rows, boxes = [], []
        tid = 0
        for k, n in enumerate(n_per_array):
            for i in range(n):
                split = "val" if (k == 1 and i == 2) else "train"
                rows.append((tid, f"r{k}", k, i, 8 * i, 0, split, i % 3, 0.0))
                for j in range(i % 3):
                    x = 2.0 + 5 * j
                    boxes.append(
                        (
                            tid,
                            x,
                            3.0,
                            x + 4,
                            7.0,
                            self.labels[j % 2],
                            j % 2,
                            1.0,
                            100 * tid + j,
                            4.0,
                            4.0,
                            4.0,
                        )
                    )
                tid += 1
        self.tiles = pd.DataFrame(rows, columns=TILE_COLUMNS)
        self.boxes = pd.DataFrame(boxes, columns=BOX_TABLE_COLUMNS).astype(
            {c: np.float32 for c in [*BOX_COLUMNS, "visible", *OBJECT_SIZE_COLUMNS]}
        )
        self.meta = {
            "labels": self.labels,
            "tile_size": size,
            "overlap": 0,
            "in_channels": bands,
            "dtype": "uint16",
            "rasters": [{"name": f"r{k}", "nodata": None} for k in range(len(n_per_array))],
            "band_stats": {"mean": [0.0] * bands, "std": [1.0] * bands},
        }

    def image(self, tile_id):
        row = self.tiles.set_index("tile_id").loc[tile_id]
        return self.arrays[int(row["array"])][int(row["index"])]

    def __len__(self):
        return len(self.tiles)


def test_expand_store_writes_a_readable_store(tmp_path):
    store = FakeStore(tmp_path / "src")
    out = expand_store(store, tmp_path / "out", "default", copies=2, seed=0)
    assert out.parent == tmp_path / "out" and not list(out.parent.glob(".tmp-*"))
    tiles = pd.read_parquet(out / "tiles.parquet")
    boxes = pd.read_parquet(out / "boxes.parquet")
    meta = json.loads((out / "meta.json").read_text())
    n_train = int((store.tiles.split == "train").sum())
    assert len(tiles) == len(store) + 2 * n_train
    assert tiles["tile_id"].tolist() == list(range(len(tiles)))
    assert meta["labels"] == store.labels and meta["expansion"]["copies"] == 2
    assert list(boxes.columns) == list(store.boxes.columns)
    assert (tiles.loc[tiles.split == "val", "augment_copy"] == 0).all()
    for k, arr in enumerate(store.arrays):
        saved = np.load(out / f"tiles_{k}.npy", mmap_mode="r")
        part = tiles[tiles.array == k]
        assert saved.dtype == np.uint16 and len(saved) == len(part)
        originals = part[part.augment_copy == 0].sort_values("index")
        assert np.array_equal(saved[originals["index"].to_numpy()], arr)
        copies = part[part.augment_copy > 0]
        assert not np.array_equal(saved[copies["index"].to_numpy()], arr[: len(copies)])
    counts = boxes.groupby("tile_id").size().reindex(tiles.tile_id, fill_value=0)
    assert counts.tolist() == tiles["n_boxes"].tolist()
    assert ((boxes.xmin >= 0) & (boxes.xmax <= 16) & (boxes.xmin < boxes.xmax)).all()
    assert ((boxes.visible > 0) & (boxes.visible <= 1)).all()
    assert (
        boxes.merge(store.boxes, on="object_id", suffixes=("", "_src"))
        .eval("label == label_src")
        .all()
    )
    # the same arguments reuse the store
    assert expand_store(store, tmp_path / "out", "default", copies=2, seed=0) == out


def test_expand_store_opens_with_tile_store(tmp_path):
    store_mod = pytest.importorskip("tiling.store")
    store = FakeStore(tmp_path / "src")
    out = expand_store(store, tmp_path / "out", "flips", copies=1, splits=("train", "val"))
    opened = store_mod.TileStore(out)
    assert len(opened) == 2 * len(store)


def test_cast_to_dtype_clips_to_range():
    values = np.array([-5.0, 1.4, 70000.0])
    assert cast_to_dtype(values, np.dtype(np.uint16)).tolist() == [0, 1, 65535]
    assert cast_to_dtype(values, np.dtype(np.int8)).tolist() == [-5, 1, 127]
    assert cast_to_dtype(np.array([1e40]), np.dtype(np.float32))[0] == np.finfo(np.float32).max


def test_expand_store_errors(tmp_path):
    store = FakeStore(tmp_path / "src")
    with pytest.raises(ConfigError, match="copies=0 must be >= 1"):
        expand_store(store, tmp_path / "out", "default", copies=0)
    with pytest.raises(ConfigError, match="unknown augmentation recipe 'wild'"):
        expand_store(store, tmp_path / "out", "wild", copies=1)
    assert torch.is_tensor(torch.zeros(1))


def test_expand_store_keeps_width_and_height(tmp_path):
    """Stores with the object's width and height: copies carry them, visible uses their area."""
    store = FakeStore(tmp_path / "src")
    store.boxes = store.boxes.assign(width=np.float32(8.0), height=np.float32(2.0))
    out = expand_store(store, tmp_path / "out", "flips", copies=1)
    boxes = pd.read_parquet(out / "boxes.parquet")
    assert list(boxes.columns) == list(store.boxes.columns)
    area = (boxes.xmax - boxes.xmin) * (boxes.ymax - boxes.ymin)  # 4 x 4 boxes in 8 x 2 objects
    np.testing.assert_allclose(boxes.visible, np.minimum(1.0, area / 16.0))
    tiles = pd.read_parquet(out / "tiles.parquet")
    copies = boxes[boxes.tile_id.isin(tiles.loc[tiles.augment_copy > 0, "tile_id"])]
    assert len(copies) and set(copies.width) | set(copies.height) <= {8.0, 2.0}
