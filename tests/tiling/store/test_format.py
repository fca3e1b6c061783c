import json

import numpy as np
import pandas as pd
import pytest

from tests.model.store_factory import write_disc_store
from tiling.errors import TilingError
from tiling.store import TileStore
from tiling.store.format import (
    BOX_TABLE_COLUMNS,
    META_KEYS,
    TILE_COLUMNS,
    create_tile_array,
    map_tile_array,
    tile_array_path,
    write_tables,
)
from tiling.store.interface import TileStoreLike


def tables():
    tiles = pd.DataFrame([[0, "r", 0, 0, 0, 0, "train", 1, 0.0]], columns=TILE_COLUMNS)
    boxes = pd.DataFrame(
        [[0, 1.0, 2.0, 5.0, 6.0, "a", 0, 1.0, 0, 4.0, 4.0, 4.0]], columns=BOX_TABLE_COLUMNS
    )
    meta = {key: None for key in META_KEYS} | {
        "labels": ["a"],
        "tile_size": 8,
        "in_channels": 1,
        "rasters": [{"nodata": None}],
        "band_stats": {"mean": [0.0], "std": [1.0]},
    }
    return tiles, boxes, meta


def test_writer_output_opens_as_a_store(tmp_path):
    tiles, boxes, meta = tables()
    path = create_tile_array(tmp_path, 0, "uint16", (1, 1, 8, 8))
    assert path == tile_array_path(tmp_path, 0) == tmp_path / "tiles_0.npy"
    map_tile_array(tmp_path, 0, writable=True)[0, 0] = np.arange(64).reshape(8, 8)
    write_tables(tmp_path, tiles.assign(extra=7), boxes, meta)
    store = TileStore(tmp_path)
    assert isinstance(store, TileStoreLike)
    assert store.image(0)[0].ravel().tolist() == list(range(64))
    assert store.target(0)["boxes"].tolist() == [[1.0, 2.0, 5.0, 6.0]]
    assert store.tiles["extra"].tolist() == [7]  # extra columns are kept
    assert json.loads((tmp_path / "meta.json").read_text())["labels"] == ["a"]


@pytest.mark.parametrize(
    ("table", "drop", "name"),
    [(0, "split", "tiles.parquet"), (1, "xmax", "boxes.parquet"), (2, "band_stats", "meta.json")],
)
def test_writer_names_what_is_missing(tmp_path, table, drop, name):
    parts = list(tables())
    parts[table] = (
        {k: v for k, v in parts[table].items() if k != drop}
        if isinstance(parts[table], dict)
        else parts[table].drop(columns=drop)
    )
    with pytest.raises(
        TilingError, match=rf"{name}: cannot write a tile store without \['{drop}'\]"
    ):
        write_tables(tmp_path, *parts)
    assert not (tmp_path / "meta.json").exists()


def test_test_factory_writes_through_the_writer(tmp_path):
    store = TileStore(write_disc_store(tmp_path, n_tiles=4, tile_size=32))
    assert list(store.boxes.columns) == BOX_TABLE_COLUMNS
    assert list(store.tiles.columns) == TILE_COLUMNS
    assert store.array(0).shape == (4, 1, 32, 32)
