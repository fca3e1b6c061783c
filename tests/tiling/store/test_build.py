import json
import logging
import os
import pickle
import signal

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from rasterio.windows import Window as RioWindow

import tiling.store.build
import tiling.store.reader
from tests.conftest import write_geotiff
from tiling.errors import CatalogError, ConfigError, RasterDetectError, TilingError
from tiling.geometry.assign import assign_boxes
from tiling.geometry.grid import boxes_from_catalog, tile_grid
from tiling.store import TileStore, build_tile_store, split_summary
from tiling.store.format import BOX_COLUMNS
from tiling.store.tile_filters import TileFilter, keep_empty, max_nodata_fraction, tile_where

TILE, OVERLAP = 64, 16


def make_raster(path, height=300, width=420, seed=0, nodata=0):
    """3-band uint16 over the full 16-bit range, with a nodata band on the left."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 65535, size=(3, height, width), dtype=np.uint16)
    data[:, :, :50] = nodata
    return write_geotiff(path, data, nodata=nodata)


def make_catalog(height=300, width=420, n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.uniform(0, width, n),
            "y": rng.uniform(0, height, n),
            "diameter": rng.uniform(4, 30, n),
            "label": rng.choice(["big", "small"], n),
        }
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    a = make_raster(root / "alpha.tif", seed=1)
    b = make_raster(root / "beta.tif", height=200, width=260, seed=2)
    return root, [(a, make_catalog(seed=1)), (b, make_catalog(200, 260, 25, seed=2))]


@pytest.fixture(scope="module")
def store(data):
    root, sources = data
    return build_tile_store(
        sources, root / "stores", tile_size=TILE, overlap=OVERLAP, workers=0, block_size=128
    )


def raster_window(path, row, col):
    with rasterio.open(path) as ds:
        return ds.read(window=RioWindow(col, row, TILE, TILE))


def test_store_files_and_meta(store, data):
    _, _sources = data
    names = {p.name for p in store.path.iterdir()}
    assert {"tiles_0.npy", "tiles_1.npy", "tiles.parquet", "boxes.parquet", "meta.json"} <= names
    meta = store.meta
    assert meta["labels"] == ["big", "small"] and store.labels == ["big", "small"]
    assert meta["in_channels"] == 3 and meta["dtype"] == "uint16" and meta["tile_size"] == TILE
    assert [r["name"] for r in meta["rasters"]] == ["alpha", "beta"]
    assert meta["rasters"][0]["nodata"] == 0 and "UTM" in meta["rasters"][0]["crs_wkt"]
    assert set(meta["band_stats"]["percentiles"]) == {"0.5", "2", "50", "98", "99.5"}
    # nodata (0) is excluded: the lowest percentile is well above 0 for uniform 1..65534 data
    assert min(meta["band_stats"]["percentiles"]["0.5"]) > 100
    assert abs(meta["band_stats"]["mean"][0] - 32768) < 1500
    assert np.load(store.path / "tiles_0.npy", mmap_mode="r").dtype == np.uint16
    assert len(store) == len(store.tiles) == store.tiles["tile_id"].max() + 1
    assert list(store.tiles["tile_id"]) == list(range(len(store)))


def test_tiles_round_trip_bit_exact(store):
    for row in store.tiles.itertuples():
        path = store.meta["rasters"][row.array]["path"]
        img = store.image(row.tile_id)
        assert img.dtype == np.uint16 and img.shape == (3, TILE, TILE)
        window = raster_window(path, row.row, row.col)
        assert np.array_equal(img, window)
        mask = store.nodata_mask(row.tile_id)
        assert np.array_equal(mask, (window == 0).all(axis=0))
        assert row.nodata_fraction == pytest.approx(mask.mean())


def test_boxes_match_assign_boxes(data, tmp_path):
    _, sources = data
    store = build_tile_store(
        sources, tmp_path, tile_size=TILE, overlap=OVERLAP, workers=0, split="raster",
        split_fractions=(0.5, 0.5, 0.0),
    )  # fmt: skip
    for k, (path, cat) in enumerate(sources):
        with rasterio.open(path) as ds:
            offsets = tile_grid(ds.height, ds.width, TILE, OVERLAP)
        xy = torch.tensor(cat[["x", "y"]].to_numpy())
        got = assign_boxes(
            boxes_from_catalog(xy, torch.tensor(cat["diameter"].to_numpy())), offsets, TILE, 0.5
        )
        tiles = store.tiles[store.tiles["array"] == k]
        assert len(tiles) == len(offsets)  # raster split: no tile dropped
        grid_of = {(r, c): i for i, (r, c) in enumerate(offsets.tolist())}
        to_grid = {t.tile_id: grid_of[(t.row, t.col)] for t in tiles.itertuples()}
        boxes = store.boxes[store.boxes["tile_id"].isin(to_grid)]
        assert list(boxes["tile_id"].map(to_grid)) == got.tile.tolist()
        assert list(boxes["object_id"]) == got.obj.tolist()
        assert np.allclose(boxes[BOX_COLUMNS].to_numpy(), got.boxes.numpy())
        assert np.allclose(boxes["visible"], got.visible.numpy())
        assert list(boxes["label"]) == list(cat["label"].to_numpy()[got.obj.numpy()])
        assert np.allclose(boxes["diameter"], cat["diameter"].to_numpy()[got.obj.numpy()])
        counts = np.bincount(got.tile.numpy(), minlength=len(offsets))
        assert list(tiles["n_boxes"]) == [counts[to_grid[t]] for t in tiles["tile_id"]]
    assert (store.boxes["label"].map({"big": 0, "small": 1}) == store.boxes["label_id"]).all()
    assert set(store.tiles.groupby("raster")["split"].nunique()) == {1}


def test_target_and_split_ids(store):
    for split in ("train", "val", "test"):
        ids = store.split_ids(split)
        assert ids.dtype == np.int64
        assert set(store.tiles.loc[store.tiles["split"] == split, "tile_id"]) == set(ids)
    tile = int(store.boxes["tile_id"].iloc[0])
    target = store.target(tile)
    rows = store.boxes[store.boxes["tile_id"] == tile]
    assert target["boxes"].dtype == torch.float32 and target["boxes"].shape == (len(rows), 4)
    assert target["labels"].tolist() == rows["label_id"].tolist()
    empty = int(store.tiles.loc[store.tiles["n_boxes"] == 0, "tile_id"].iloc[0])
    assert store.target(empty)["boxes"].shape == (0, 4)
    with pytest.raises(TilingError, match="tile_id=99999 is not in the tile store"):
        store.image(99999)
    with pytest.raises(ConfigError, match="split='training' must be one of"):
        store.split_ids("training")


def test_split_summary_and_pickle(store):
    summary = split_summary(store)
    assert list(summary.index) == ["train", "val", "test"]
    assert summary["tiles"].sum() == len(store) and summary["boxes"].sum() == len(store.boxes)
    assert (summary["boxes_big"] + summary["boxes_small"] == summary["boxes"]).all()
    assert summary["empty_tiles"].sum() == (store.tiles["n_boxes"] == 0).sum()
    clone = pickle.loads(pickle.dumps(store))
    assert np.array_equal(clone.image(3), store.image(3)) and len(clone) == len(store)


def test_workers_0_and_2_identical(data, tmp_path):
    _, sources = data
    kwargs = {"tile_size": TILE, "overlap": OVERLAP, "tile_filters": [max_nodata_fraction(0.5)]}
    s0 = build_tile_store(sources, tmp_path / "w0", workers=0, **kwargs)
    s2 = build_tile_store(sources, tmp_path / "w2", workers=2, **kwargs)
    assert s0.path.name == s2.path.name  # workers are not part of the hash
    for k in range(2):
        assert (s0.path / f"tiles_{k}.npy").read_bytes() == (
            s2.path / f"tiles_{k}.npy"
        ).read_bytes()
    pd.testing.assert_frame_equal(s0.tiles, s2.tiles)
    pd.testing.assert_frame_equal(s0.boxes, s2.boxes)
    assert s0.meta == s2.meta


def test_nodata_filter_compacts_arrays(data, tmp_path, caplog):
    _, sources = data
    caplog.set_level(logging.INFO)
    filters = [keep_empty(0.5), max_nodata_fraction(0.2)]
    store = build_tile_store(sources, tmp_path, tile_size=TILE, overlap=OVERLAP, workers=0,
                             tile_filters=filters)  # fmt: skip
    assert (store.tiles["nodata_fraction"] <= 0.2).all()
    assert (
        store.tiles.groupby("array")["index"].apply(lambda s: list(s) == list(range(len(s)))).all()
    )
    for row in store.tiles.itertuples():
        path = store.meta["rasters"][row.array]["path"]
        assert np.array_equal(store.image(row.tile_id), raster_window(path, row.row, row.col))
    report = store.meta["filter_report"]
    assert [r["filter"] for r in report] == ["keep_empty(0.5)", "max_nodata_fraction(0.2)"]
    assert report[1]["removed"] > 0
    assert "tile filter max_nodata_fraction(0.2) removed" in caplog.text
    assert set(store.boxes["tile_id"]) <= set(store.tiles["tile_id"])
    counts = store.boxes.groupby("tile_id").size()
    assert (store.tiles.set_index("tile_id")["n_boxes"].reindex(counts.index) == counts).all()


def test_reuse_does_not_read_raster(data, tmp_path, monkeypatch, caplog):
    _, sources = data
    first = build_tile_store(sources, tmp_path, tile_size=TILE, overlap=OVERLAP, workers=0)

    def boom(*args, **kwargs):
        raise AssertionError("the raster was opened again")

    monkeypatch.setattr(tiling.store.build, "open_raster", boom)
    monkeypatch.setattr(tiling.store.reader, "open_raster", boom)
    caplog.set_level(logging.INFO)
    again = build_tile_store(sources, tmp_path, tile_size=TILE, overlap=OVERLAP, workers=0)
    assert again.path == first.path and "reusing tile store" in caplog.text
    # any change of parameters or inputs needs a new store (which would read the raster)
    changed_cat = [(sources[0][0], sources[0][1].assign(diameter=5.0)), sources[1]]
    for args, kwargs in [
        (sources, {"overlap": 8}),
        (sources, {"tile_filters": [keep_empty(0.5)]}),
        (sources, {"seed": 1}),
        (changed_cat, {}),
    ]:
        with pytest.raises(AssertionError, match="opened again"):
            build_tile_store(
                args, tmp_path, **{"tile_size": TILE, "overlap": OVERLAP, "workers": 0, **kwargs}
            )
    monkeypatch.undo()
    os.utime(sources[1][0], ns=(1_000_000_000, 1_000_000_000))  # same bytes, new mtime
    moved = build_tile_store(sources, tmp_path, tile_size=TILE, overlap=OVERLAP, workers=0)
    assert moved.path != first.path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.path.name, moved.path.name])


def test_interrupted_build_leaves_nothing_and_is_rebuilt(data, tmp_path):
    _, sources = data
    calls = []

    def crash(tiles):
        calls.append(1)
        raise KeyboardInterrupt  # like Ctrl-C, after the pixels were read

    bad = TileFilter("crash", lambda tiles, boxes, seed: crash(tiles), needs_pixels=True)
    with pytest.raises(KeyboardInterrupt):
        build_tile_store(sources, tmp_path, tile_size=TILE, workers=0, tile_filters=[bad])
    assert calls and list(tmp_path.iterdir()) == []
    good = TileFilter(
        "crash", lambda tiles, boxes, seed: np.ones(len(tiles), bool), needs_pixels=True
    )
    store = build_tile_store(sources, tmp_path, tile_size=TILE, workers=0, tile_filters=[good])
    assert len(store) > 0 and [p.name for p in tmp_path.iterdir()] == [store.path.name]


def test_crash_mid_read_then_clean_build(data, tmp_path, monkeypatch):
    _, sources = data
    real = tiling.store.reader.cut_strip
    count = []

    def flaky(*args, **kwargs):
        count.append(1)
        if len(count) == 3:
            raise OSError("disk went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(tiling.store.reader, "cut_strip", flaky)
    with pytest.raises(OSError, match="disk went away"):
        build_tile_store(sources, tmp_path, tile_size=TILE, workers=0)
    assert list(tmp_path.iterdir()) == []
    # a build whose process died (no cleanup ran) leaves its temporary folder behind
    stale = tmp_path / f".tmp-{'0' * 16}-{2**22 + 12345}"
    (stale / "tiles_0.npy").parent.mkdir()
    (stale / "tiles_0.npy").write_bytes(b"partial")
    other = tmp_path / ".tmp-expand-abc"  # not ours: left alone
    other.mkdir()
    with pytest.raises(TilingError, match="unfinished tile store build"):
        TileStore(stale)
    store = build_tile_store(sources, tmp_path, tile_size=TILE, workers=0)
    assert not stale.exists() and other.exists()
    assert np.array_equal(store.image(0), raster_window(sources[0][0], 0, 0))


def test_killed_worker_raises_and_leaves_no_store(data, tmp_path, monkeypatch):
    _, sources = data

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(tiling.store.reader, "MP_CONTEXT", "fork")  # children inherit the patch
    monkeypatch.setattr(tiling.store.reader, "cut_strip", killed)
    with pytest.raises(TilingError, match="worker process died"):
        build_tile_store(sources, tmp_path, tile_size=TILE, workers=2)
    assert list(tmp_path.iterdir()) == []


def test_open_errors(tmp_path, store):
    with pytest.raises(TilingError, match="does not exist; build it"):
        TileStore(tmp_path / "nope")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text(json.dumps({"rasters": [{}]}))
    with pytest.raises(TilingError, match=r"incomplete \(missing tiles.parquet, boxes.parquet\)"):
        TileStore(broken)
    for name in ("tiles.parquet", "boxes.parquet"):
        (broken / name).write_bytes((store.path / name).read_bytes())
    with pytest.raises(TilingError, match=r"missing tiles_0.npy"):
        TileStore(broken)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"split": "random"}, ConfigError, "split='random' must be one of"),
        ({"split_fractions": (0.5, 0.5, 0.5)}, ConfigError, "must be three numbers"),
        ({"block_size": 32}, ConfigError, "block_size=32 is smaller than tile_size=64"),
        ({"block_size": "big"}, ConfigError, "block_size='big' must be 'auto' or a number"),
        ({"test_rasters": ["gamma"]}, ConfigError, r"test_rasters \['gamma'\] are not among"),
        ({"overlap": 64}, TilingError, "overlap=64 must be"),
        ({"min_visible": 2.0}, TilingError, r"min_visible=2.0 must be in \[0, 1\]"),
        ({"workers": -1}, TilingError, "workers=-1 must be >= 0"),
        ({"tile_size": 1000}, TilingError, "smaller than tile_size=1000"),
    ],
)
def test_parameter_errors(data, tmp_path, kwargs, error, match):
    _, sources = data
    with pytest.raises(error, match=match):
        build_tile_store(sources, tmp_path, **{"tile_size": TILE, "workers": 0, **kwargs})
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_source_errors(data, tmp_path, make_geotiff):
    _, sources = data
    (path_a, cat_a), (_path_b, cat_b) = sources
    with pytest.raises(
        CatalogError, match=r"catalogue of raster 'alpha' lacks columns \['diameter'\]"
    ):
        build_tile_store([(path_a, cat_a.drop(columns="diameter"))], tmp_path, workers=0)
    with pytest.raises(TilingError, match="raster file does not exist"):
        build_tile_store([(tmp_path / "missing.tif", cat_a)], tmp_path, workers=0)
    with pytest.raises(ConfigError, match="unique file stems"):
        build_tile_store([(path_a, cat_a), (path_a, cat_b)], tmp_path, workers=0)
    grey = make_geotiff("grey.tif", np.zeros((300, 300), np.uint8))
    with pytest.raises(TilingError, match="different band counts"):
        build_tile_store([(path_a, cat_a), (grey, cat_b)], tmp_path, workers=0)
    assert issubclass(TilingError, RasterDetectError)


def test_float_raster_nan_nodata_and_no_labels(tmp_path):
    data = np.random.default_rng(0).normal(size=(1, 128, 128)).astype(np.float32)
    data[:, :40] = np.nan
    path = write_geotiff(tmp_path / "sky.tif", data)
    cat = pd.DataFrame({"x": [80.0], "y": [90.0], "diameter": [6.0]})
    store = build_tile_store(
        [(path, cat)], tmp_path / "s", tile_size=64, overlap=0, workers=0, split="raster",
        split_fractions=(1, 0, 0), tile_filters=[tile_where(lambda t: t["row"] >= 0, "all")],
    )  # fmt: skip
    assert store.labels == ["object"] and store.meta["dtype"] == "float32"
    assert store.nodata_mask(0)[:40].all() and not store.nodata_mask(0)[40:].any()
    assert np.isfinite(store.band_stats["mean"][0])
    assert np.array_equal(store.image(3), data[:, 64:, 64:])


def _no_reads(*args, **kwargs):
    raise AssertionError("pixels were read")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        # one raster split whole: only train can get it
        (
            {"split": "raster"},
            r"give no tile to \['val', 'test'\] \(train 54 tiles/\d+ objects, val 0 tiles/0 "
            r"obj.*use split='blocks'",
        ),
        # fractions that give test blocks, but blocks of the whole raster leave it nothing
        ({"block_size": 4000}, r"use a smaller block_size \(now 4000\)"),
    ],
)
def test_split_without_tiles_stops_before_reading(data, tmp_path, monkeypatch, kwargs, match):
    """A requested split that gets no tile is an error before any pixel is read."""
    _, sources = data
    monkeypatch.setattr(tiling.store.build, "read_into_arrays", _no_reads)
    with pytest.raises(ConfigError, match=match):
        build_tile_store(sources[:1], tmp_path, tile_size=TILE, overlap=OVERLAP, workers=0,
                         **kwargs)  # fmt: skip
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_block_size_recorded_per_raster(data, tmp_path):
    """'auto' adapts the blocks to each raster; meta records them in whole tile strides."""
    _, sources = data
    store = build_tile_store(sources, tmp_path, tile_size=TILE, overlap=OVERLAP, workers=0,
                             test_rasters=["beta"])  # fmt: skip
    alpha, beta = store.meta["rasters"]
    assert store.meta["params"]["block_size"] == "auto"
    assert alpha["block_strides"] >= 1 and alpha["block_px"] == alpha["block_strides"] * 48
    assert beta["block_strides"] is None  # a test raster is not cut into blocks
    assert set(store.tiles.loc[store.tiles["raster"] == "alpha", "split"]) == {
        "train",
        "val",
        "test",
    }
    fixed = build_tile_store(sources, tmp_path, tile_size=TILE, overlap=OVERLAP, workers=0,
                             block_size=200)  # fmt: skip
    assert fixed.meta["rasters"][0]["block_strides"] == 4  # 200 / 48 = 4.2 strides


def test_auto_tile_size_builds_the_store_of_its_number(data, tmp_path, caplog):
    """65 objects of 4-30 px: "auto" is 128 px, the same store (key, tiles) as asking for 128."""
    _, sources = data
    kwargs = {"overlap": OVERLAP, "workers": 0, "split": "raster", "test_rasters": ["beta"],
              "split_fractions": [1.0, 0.0, 0.0]}  # fmt: skip
    with caplog.at_level(logging.INFO, logger="tiling.store.build"):
        auto = build_tile_store(sources, tmp_path, tile_size="auto", **kwargs)
    assert "tile_size auto: 128 px" in caplog.text
    assert auto.tile_size == 128 and auto.meta["params"]["tile_size"] == 128
    assert auto.image(0).shape == (3, 128, 128)
    fixed = build_tile_store(sources, tmp_path, tile_size=128, **kwargs)
    assert fixed.path == auto.path
    many = [(path, pd.concat([catalog] * 40, ignore_index=True)) for path, catalog in sources]
    # 2,600 objects: 256 px, but beta (200 x 260 px) cannot hold a 256-px tile
    assert build_tile_store(many, tmp_path, tile_size="auto", **kwargs).tile_size == 128
    alpha, catalog = sources[0]  # 300 x 420 px, 2,000 objects
    alone = [(alpha, pd.concat([catalog] * 50, ignore_index=True))]
    kwargs.update(test_rasters=[])
    assert build_tile_store(alone, tmp_path, tile_size="auto", **kwargs).tile_size == 256
