"""Stores that could not train anything are refused at the build, with counts and the parameter."""

import numpy as np
import pandas as pd
import pytest

from model.training.datamodule import TileDataset
from tests.conftest import write_geotiff
from tiling.catalog import read_catalog
from tiling.errors import CatalogError, TilingError
from tiling.store import build_tile_store
from tiling.store.tile_filters import max_nodata_fraction, tile_where

pytestmark = pytest.mark.reliability

KW = dict(tile_size=32, overlap=0, workers=0, split="raster", split_fractions=(1, 0, 0))


def raster(tmp_path, name, shape=(96, 96), fill=None, dtype=np.uint16, nodata=0):
    data = np.random.default_rng(0).integers(1, 1000, (1, *shape)).astype(dtype)
    if fill is not None:
        data[:] = fill
    return write_geotiff(tmp_path / f"{name}.tif", data, nodata=nodata)


def catalog(n=5, label="crater"):
    xy = np.linspace(10, 80, n)
    return pd.DataFrame({"x": xy, "y": xy, "diameter": 6.0, "label": label})


def assert_clean(out):
    """No store, no temporary folder, no lock left behind."""
    assert not out.exists() or list(out.iterdir()) == []


def test_raster_smaller_than_a_tile_is_named(tmp_path):
    ok, small = raster(tmp_path, "ok"), raster(tmp_path, "small", shape=(20, 60))
    out = tmp_path / "stores"
    with pytest.raises(
        TilingError, match=r"smaller than tile_size=32: \['small \(20 x 60 px, .*small.tif"
    ):
        build_tile_store([(ok, catalog()), (small, catalog(0))], out, **KW)
    assert_clean(out)


@pytest.mark.parametrize(
    ("fill", "dtype", "nodata"),
    [(0, np.uint16, 0), (np.nan, np.float32, None), (np.inf, np.float32, None)],
    ids=["nodata-value", "nan", "inf"],
)
def test_all_nodata_raster_is_refused(tmp_path, fill, dtype, nodata):
    good, void = (
        raster(tmp_path, "good"),
        raster(tmp_path, "void", fill=fill, dtype=dtype, nodata=nodata),
    )
    if dtype is np.float32:
        good = raster(tmp_path, "good", dtype=np.float32, nodata=None)
    out = tmp_path / "stores"
    with pytest.raises(
        TilingError, match=r"no valid pixel in any tile: \['void \(.*void.tif, 9 tiles\)'\]"
    ):
        build_tile_store([(good, catalog()), (void, catalog())], out, **KW)
    assert_clean(out)


def test_filters_that_leave_nothing_name_the_counts(tmp_path):
    a, out = raster(tmp_path, "a"), tmp_path / "stores"
    none = tile_where(lambda t: t["row"] < 0, "rows_below(0)")
    with pytest.raises(
        TilingError,
        match=r"no tile left before reading the rasters: 9 candidate tiles \(a: 9\).*"
        r"rows_below\(0\) removed 9 of 9.*tile_filters",
    ):
        build_tile_store([(a, catalog())], out, tile_filters=[none], **KW)
    assert_clean(out)
    edge = raster(tmp_path, "edge")
    data = np.full((1, 96, 96), 5, np.uint16)
    data[:, ::16, ::16] = 0  # a few nodata pixels in every tile
    edge = write_geotiff(tmp_path / "edge.tif", data, nodata=0)
    with pytest.raises(
        TilingError,
        match=r"no tile left after the filters that need pixels.*max_nodata_fraction\(0.0\) "
        r"removed 9 of 9",
    ):
        build_tile_store([(edge, catalog())], out, tile_filters=[max_nodata_fraction(0.0)], **KW)
    assert_clean(out)


def test_raster_left_without_tiles_is_warned(tmp_path):
    a, b = raster(tmp_path, "a"), raster(tmp_path, "b")
    only_a = tile_where(lambda t: t["raster"] == "a", "only_a")
    with pytest.warns(UserWarning, match=r"left no tile of raster\(s\) \['b'\]"):
        store = build_tile_store(
            [(a, catalog()), (b, catalog())], tmp_path / "s", tile_filters=[only_a], **KW
        )
    assert set(store.tiles["raster"]) == {"a"}


def test_header_only_catalogues_stop_at_the_store_build(tmp_path):
    a = raster(tmp_path, "a")
    csv = tmp_path / "a.csv"
    csv.write_text("x,y,diameter,label\n")
    with pytest.warns(UserWarning, match="header but no rows"):
        empty = read_catalog(csv, a)
    out = tmp_path / "stores"
    with pytest.raises(TilingError, match=r"no object in any catalogue \(\{'a': 0\} rows\)"):
        build_tile_store([(a, empty)], out, **KW)
    assert_clean(out)


def test_no_box_on_kept_tiles_names_min_visible(tmp_path):
    a, out = raster(tmp_path, "a"), tmp_path / "stores"
    empty_only = tile_where(lambda t: t["n_boxes"] == 0, "empty_only")
    with pytest.raises(
        TilingError, match=r"no box: the catalogues hold 5 objects .*min_visible=0.5"
    ):
        build_tile_store([(a, catalog())], out, tile_filters=[empty_only], **KW)
    assert_clean(out)


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("label", None, r"row 2 \(DataFrame index\), column 'label': value None is not a class"),
        ("label", " ", r"row 2 \(DataFrame index\), column 'label': value ' ' is not a class"),
        ("x", np.nan, r"row 2 \(DataFrame index\), column 'x': value nan is not a finite number"),
        (
            "diameter",
            0.0,
            r"row 2 \(DataFrame index\), column 'diameter': value 0.0 is not a finite number > 0",
        ),
    ],
)
def test_dataframe_catalogues_are_checked(tmp_path, column, value, match):
    a, out = raster(tmp_path, "a"), tmp_path / "stores"
    cat = catalog().astype({"label": object})
    cat.loc[2, column] = value
    with pytest.raises(CatalogError, match=rf"catalogue of raster 'a': {match}"):
        build_tile_store([(a, cat)], out, **KW)
    assert_clean(out)


def test_non_finite_pixels_are_nodata_in_the_store(tmp_path):
    data = np.random.default_rng(1).normal(100, 10, (2, 96, 96)).astype(np.float32)
    data[:, :32, :32] = np.inf  # tile (0, 0): every pixel invalid
    data[0, 40:44, 40:44] = -np.inf  # one band only: the pixel is data, the value is not
    data[1, 70, 70] = np.nan
    path = write_geotiff(tmp_path / "f.tif", data)
    store = build_tile_store([(path, catalog())], tmp_path / "s", **KW)
    stats = store.band_stats
    assert np.isfinite(stats["mean"]).all() and np.isfinite(stats["std"]).all()
    assert abs(stats["mean"][0] - 100) < 2 and 8 < stats["std"][0] < 12
    fraction = store.tiles.set_index(["row", "col"])["nodata_fraction"]
    assert fraction[(0, 0)] == 1.0 and fraction[(32, 32)] == 0.0
    filtered = build_tile_store(
        [(path, catalog())], tmp_path / "s", tile_filters=[max_nodata_fraction(0.5)], **KW
    )
    assert (0, 0) not in set(zip(filtered.tiles["row"], filtered.tiles["col"], strict=True))
    images = TileDataset(store, store.tiles["tile_id"].to_numpy(), fill=[7.0, 8.0])
    for i in range(len(images)):
        assert np.isfinite(images.image(i).numpy()).all()
    first = store.tiles.index[(store.tiles["row"] == 0) & (store.tiles["col"] == 0)][0]
    assert images.image(int(first)).unique().tolist() == [7.0, 8.0]
