import logging

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tiling.sources.gdal
from model.preflight import NO_CRS, preflight
from tests.conftest import write_geotiff
from tiling.errors import ConfigError


def catalog(n, rows, cols, diameters=(8.0, 20.0), seed=0, **sizes):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.uniform(0, cols, n), "y": rng.uniform(0, rows, n),
                          "diameter": rng.uniform(*diameters, n), "label": "crater"})  # fmt: skip
    return frame.assign(**sizes)


@pytest.fixture
def no_reads(monkeypatch):
    """Fail if any pixel is read."""

    def refuse(*args, **kwargs):
        raise AssertionError("preflight read pixels")

    monkeypatch.setattr(tiling.sources.gdal.GdalRaster, "read", refuse)
    monkeypatch.setattr(tiling.sources.gdal.GdalRaster, "read_into", refuse)


@pytest.fixture
def rasters(tmp_path):
    geo = write_geotiff(tmp_path / "geo.tif", np.zeros((1150, 1700), np.uint16), nodata=0)
    png = tmp_path / "camera.png"
    Image.fromarray(np.zeros((600, 700, 3), np.uint8)).save(png)
    return {"geo": geo, "camera": png}


def levels(report):
    return dict(zip(report.checks["check"], report.checks["level"], strict=False))


def test_table_and_ok_checks(rasters, no_reads, caplog):
    cats = {"geo": catalog(400, 1150, 1700)}
    with caplog.at_level(logging.INFO):
        report = preflight({"geo": rasters["geo"]}, cats, tile_size=256, overlap=32)
    row = report.table.iloc[0]
    assert (row["raster"], row["size"], row["bands"], row["dtype"]) == ("geo", "1150 x 1700", 1,
                                                                        "uint16")  # fmt: skip
    assert row["nodata"] == 0 and "UTM zone 17N" in row["crs"] and row["pixel_size"] == "1 metre"
    assert row["objects"] == 400 and row["blocks"] == "3 strides (672 px), 2 x 3"
    assert set(report.checks["level"]) == {"ok"}, report.checks
    assert report.splits["tiles"].sum() > 0 and (report.splits["objects"] > 0).all()
    assert report.splits.loc["val", "objects"] >= 40  # 10 % of 400
    report.raise_errors()  # nothing to raise


def test_raster_without_crs_says_so_once(rasters, no_reads, caplog):
    cats = {"camera": catalog(100, 600, 700)}
    with caplog.at_level(logging.INFO):
        report = preflight({"camera": rasters["camera"]}, cats, tile_size=128, overlap=16)
    row = report.table.iloc[0]
    assert row["crs"] == NO_CRS and row["pixel_size"] == "-" and row["bands"] == 3
    assert [r.getMessage() for r in caplog.records if "no CRS" in r.getMessage()] == [
        f"camera has no CRS: {NO_CRS}"
    ]


def test_size_and_anchor_problems(rasters, no_reads):
    big = catalog(50, 1150, 1700, diameters=(40.0, 300.0), seed=1)
    report = preflight({"geo": rasters["geo"]}, {"geo": big}, tile_size=256, overlap=32)
    messages = dict(zip(report.checks["check"], report.checks["message"], strict=False))
    assert levels(report)["objects vs tile"] == "warning"
    assert "use tile_size=512 or max_diameter=256" in messages["objects vs tile"]
    assert levels(report)["objects vs overlap"] == "warning"
    assert "never whole in a prediction window" in messages["objects vs overlap"]
    assert "use overlap=" in messages["objects vs overlap"]
    tiny = catalog(50, 1150, 1700, diameters=(1.0, 2.0))
    report = preflight({"geo": rasters["geo"]}, {"geo": tiny}, tile_size=256)
    assert "error" in report.checks.loc[report.checks["check"] == "anchors", "level"].tolist()
    with pytest.raises(ConfigError, match=r"(?s)found 1 problem.*smaller than the auto.*"
                       r"min_diameter=2.83"):  # fmt: skip
        report.raise_errors()


def test_elongated_boxes_suggest_aspect_ratios(rasters, no_reads):
    wide = catalog(80, 1150, 1700, width=60.0, height=12.0, diameter=36.0)
    report = preflight({"geo": rasters["geo"]}, {"geo": wide}, tile_size=256, overlap=64)
    warning = report.checks[
        (report.checks["check"] == "anchors") & (report.checks["level"] == "warning")
    ]
    assert (
        "aspect_ratios" in warning["message"].iloc[0]
        and "aspect up to 5.00" in warning["message"].iloc[0]
    )
    assert report.table.iloc[0]["max_aspect"] == 5.0


def test_tile_larger_than_a_raster_and_unknown_test_raster(rasters, no_reads):
    cats = {"camera": catalog(40, 600, 700), "geo": catalog(40, 1150, 1700)}
    report = preflight(rasters, cats, tile_size=1024, test_rasters=["nope"])
    errors = "\n".join(report.errors)
    assert "camera (600 x 700 px): smaller than tile_size=1024; use tile_size=512" in errors
    assert "test_rasters ['nope'] are not among the rasters ['camera', 'geo']" in errors
    with pytest.raises(ConfigError, match="preflight found 2 problem"):
        report.raise_errors()


def test_too_few_objects_for_the_splits(rasters, no_reads):
    sparse = {"geo": catalog(12, 1150, 1700)}
    report = preflight({"geo": rasters["geo"]}, sparse, tile_size=256)
    split_levels = report.checks.loc[report.checks["check"] == "splits", "level"].tolist()
    assert "warning" in split_levels
    assert "a score on so few objects is noise" in " ".join(report.checks["message"])
    whole = preflight({"geo": rasters["geo"]}, sparse, tile_size=256, split="raster")
    assert any("val: 0 tiles" in m and "use split='blocks'" in m for m in whole.errors)


def test_auto_tile_size_plans_the_tiles_of_its_number(rasters, no_reads):
    """The issue's image: 273 craters of 8-20 px plan as 128-px tiles; 2,000 as 256-px ones."""
    few = {"geo": catalog(273, 1150, 1700)}
    auto = preflight({"geo": rasters["geo"]}, few, tile_size="auto")
    fixed = preflight({"geo": rasters["geo"]}, few, tile_size=128)
    assert auto.splits.equals(fixed.splits) and auto.splits.loc["train", "tiles"] > 60
    assert auto.tile_size == fixed.tile_size == 128
    many = {"geo": catalog(2000, 1150, 1700)}
    large = preflight({"geo": rasters["geo"]}, many, tile_size="auto")
    assert large.splits.equals(preflight({"geo": rasters["geo"]}, many, tile_size=256).splits)
    assert not large.splits.equals(preflight({"geo": rasters["geo"]}, many, tile_size=128).splits)
    assert large.tile_size == 256
    both = {"geo": many["geo"], "camera": catalog(10, 600, 700)}  # 600 x 700 px holds 256
    assert preflight(rasters, both, tile_size="auto").tile_size == 256
