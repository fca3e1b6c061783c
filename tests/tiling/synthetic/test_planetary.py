"""The planetary crater field: IAU geographic raster, lon/lat/km catalogue, true footprints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio

from tiling.catalog import read_catalog
from tiling.errors import ConfigError
from tiling.synthetic import planetary
from tiling.synthetic.craters import render_craters

COLUMNS = {"x": "lon", "y": "lat", "diameter": "diameter_km"}


@pytest.fixture(scope="module")
def moon(tmp_path_factory):
    out = tmp_path_factory.mktemp("moon")
    planetary.main(["--out", str(out), "--small"])
    return out / "images" / "moon_field.tif", out / "datasets" / "moon_field.csv"


def test_raster_is_simple_cylindrical_moon_in_degrees(moon):
    tif, csv = moon
    with rasterio.open(tif) as ds:
        assert ds.crs.to_wkt().startswith('GEOGCS["Moon (2015) - Sphere / Ocentric"')
        assert ds.transform[:6] == (0.03, 0.0, -20.0, 0.0, -0.03, 52.0)
        assert (ds.height, ds.width, ds.dtypes[0], ds.nodata) == (768, 768, "uint16", 0)
    catalogue = pd.read_csv(csv)
    assert list(catalogue.columns) == ["lon", "lat", "diameter_km", "label"]
    assert len(catalogue) > 100 and catalogue["lon"].between(0, 360).all()
    assert (catalogue["lon"] > 180).any() and (catalogue["lon"] < 180).any()  # across 0 E


def test_catalogue_reads_back_as_the_drawn_footprints(moon, tmp_path):
    """read_catalog (lonlat, km) gives the boxes the generator drew: wider than tall by 1/cos."""
    tif, csv = moon
    df = read_catalog(csv, tif, columns=COLUMNS, coords="lonlat", diameter_unit="km")
    assert len(df) == len(pd.read_csv(csv))
    lat = 52.0 - df["y"] * 0.03
    np.testing.assert_allclose(df["width"] / df["height"], 1 / np.cos(np.radians(lat)), rtol=2e-3)
    # diameters were drawn in north-south pixels of 0.03 degrees on the Moon's sphere
    km_per_px = np.radians(0.03) * 1737.4
    catalogue = pd.read_csv(csv)
    np.testing.assert_allclose(df["height"], catalogue["diameter_km"] / km_per_px, rtol=1e-4)


def test_mars_and_determinism(tmp_path):
    kwargs = dict(body="mars", height=200, width=300, region=(350.0, 30.0, 0.05), density=1e-3)
    a = planetary.generate_planetary_field(tmp_path / "a.tif", tmp_path / "a.csv", **kwargs)
    b = planetary.generate_planetary_field(tmp_path / "b.tif", tmp_path / "b.csv", **kwargs)
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()
    pd.testing.assert_frame_equal(a, b)
    with rasterio.open(tmp_path / "a.tif") as ds:
        assert "Mars (2015)" in ds.crs.to_wkt()
    df = read_catalog(tmp_path / "a.csv", tmp_path / "a.tif", columns=COLUMNS, coords="lonlat",
                      diameter_unit="km")  # fmt: skip
    assert len(df) == len(a) > 20


def test_render_craters_draws_ellipses():
    crater = pd.DataFrame({"x": [100.0], "y": [50.0], "diameter": [20.0], "label": ["fresh"],
                           "relief": [1.0], "width": [40.0], "height": [20.0]})  # fmt: skip
    canvas = np.zeros((100, 200), np.float32)
    render_craters(canvas, 0, 0, crater)
    rows, cols = np.nonzero(canvas)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert width == pytest.approx(2.2 * 40, abs=2) and height == pytest.approx(2.2 * 20, abs=2)
    round_canvas = np.zeros((100, 200), np.float32)
    render_craters(round_canvas, 0, 0, crater.drop(columns=["width", "height"]))
    rows, cols = np.nonzero(round_canvas)
    assert np.ptp(rows) == pytest.approx(np.ptp(cols), abs=1)


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="body='venus' is not one of"):
        planetary.generate_planetary_field(tmp_path / "v.tif", tmp_path / "v.csv", body="venus")
    with pytest.raises(ConfigError, match="leaves latitudes -90..90"):
        planetary.generate_planetary_field(
            tmp_path / "v.tif", tmp_path / "v.csv", height=5000, region=(0.0, 60.0, 0.05)
        )
