import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import CRS

from model.inference.predict import predict_raster
from model.inference.writers import (
    GIS_DRIVERS,
    write_catalog,
    write_csv,
    write_geopackage,
    write_gis,
)
from tests.conftest import write_geotiff
from tests.model.fakes import DiscDetector, square_image
from tiling.errors import CatalogError, OutputError

UTM = CRS.from_epsg(32617).to_wkt()


@pytest.fixture
def prediction(tmp_path):
    path = write_geotiff(
        tmp_path / "r.tif",
        square_image(100, [(10, 20, 6), (60, 60, 10)]),
        transform=(2.0, 0, 500000.0, 0, -2.0, 4000000.0),
    )
    return predict_raster(DiscDetector(), path, tile_size=40, overlap=16, progress=False)


def test_csv_round_trip(tmp_path, prediction):
    out = write_csv(prediction, tmp_path / "sub" / "p.csv")
    back = pd.read_csv(out)
    pd.testing.assert_frame_equal(back, prediction, check_dtype=False)
    assert [p.name for p in out.parent.iterdir()] == ["p.csv"]


def test_geopackage_round_trip(tmp_path, prediction):
    out = write_geopackage(prediction, tmp_path / "p.gpkg", crs_wkt=CRS.from_epsg(32617).to_wkt())
    objects = gpd.read_file(out, layer="objects")
    centres = gpd.read_file(out, layer="centres")
    assert objects.crs.to_epsg() == 32617 and centres.crs.to_epsg() == 32617
    assert len(objects) == len(centres) == 2
    np.testing.assert_allclose(centres.geometry.x, prediction["map_x"])
    np.testing.assert_allclose(centres.geometry.y, prediction["map_y"])
    r = prediction["map_diameter"].to_numpy() / 2  # pixel size 2 m
    np.testing.assert_allclose(objects.geometry.area, np.pi * r**2, rtol=0.01)
    np.testing.assert_allclose(objects.geometry.centroid.x, prediction["map_x"])
    assert list(centres["diameter"]) == list(prediction["diameter"])


def test_geopackage_needs_crs(tmp_path, prediction):
    with pytest.raises(CatalogError, match="a GIS file needs a raster with a map CRS"):
        write_geopackage(prediction, tmp_path / "p.gpkg", crs_wkt=None)
    with pytest.raises(CatalogError, match="map_x"):
        write_geopackage(prediction[["x", "y"]], tmp_path / "p.gpkg", crs_wkt="EPSG:32617")


@pytest.mark.parametrize("suffix", [".geojson", ".json", ".fgb", ".parquet", ".GPKG"])
def test_gis_format_by_suffix(tmp_path, prediction, suffix):
    out = write_gis(prediction, tmp_path / f"p{suffix}", crs_wkt=UTM)
    objects = gpd.read_parquet(out) if suffix == ".parquet" else gpd.read_file(out, layer=0)
    assert objects.crs.to_epsg() == 32617 and len(objects) == 2
    np.testing.assert_allclose(objects.geometry.centroid.x, prediction["map_x"])
    assert list(objects["score"]) == pytest.approx(list(prediction["score"]))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    if suffix == ".fgb":  # the file is what its suffix says
        assert out.read_bytes()[:3] == b"fgb"
    if suffix == ".parquet":
        assert out.read_bytes()[:4] == b"PAR1"


@pytest.mark.parametrize("name", ["p", "p.shp", "p.csv", "p.kml"])
def test_other_gis_suffixes_are_refused_with_the_list(tmp_path, prediction, name):
    with pytest.raises(
        OutputError, match=r"unknown GIS format .*\.gpkg \(GeoPackage\), .*\.parquet \(GeoParquet\)"
    ):
        write_gis(prediction, tmp_path / name, crs_wkt=UTM)
    assert list(tmp_path.iterdir()) == [tmp_path / "r.tif"]
    assert set(GIS_DRIVERS) == {".gpkg", ".geojson", ".json", ".fgb", ".parquet"}


def test_geopackage_name_must_end_in_gpkg(tmp_path, prediction):
    with pytest.raises(OutputError, match=r"a GeoPackage's name ends in .gpkg"):
        write_geopackage(prediction, tmp_path / "p.geojson", crs_wkt=UTM)


def test_writers_refuse_to_replace_a_file_without_overwrite(tmp_path, prediction):
    for path, write in (
        (tmp_path / "p.csv", lambda **kw: write_csv(prediction, tmp_path / "p.csv", **kw)),
        (
            tmp_path / "p.gpkg",
            lambda **kw: write_gis(prediction, tmp_path / "p.gpkg", crs_wkt=UTM, **kw),
        ),
    ):
        path.write_text("earlier")
        with pytest.raises(OutputError, match=r"already exists; pass overwrite=True"):
            write()
        assert path.read_text() == "earlier"
        assert write(overwrite=True) == path and path.stat().st_size > len("earlier")


def test_write_catalog_checks_both_files_before_writing_either(tmp_path, prediction):
    raster = tmp_path / "r.tif"
    out = tmp_path / "run"
    out.mkdir()
    (out / "pred.gpkg").write_text("earlier")
    with pytest.raises(OutputError, match=r"pred.gpkg already exists"):
        write_catalog(prediction, out, "pred", raster)
    assert not (out / "pred.csv").exists()  # nothing half-done
    written = write_catalog(prediction, out, "pred", raster, overwrite=True)
    assert written == [out / "pred.csv", out / "pred.gpkg"]


def test_disk_full_while_writing_names_the_file(tmp_path, prediction, monkeypatch):
    import errno
    from pathlib import Path

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(
        OutputError, match=r"disk full while writing .*p.csv: it needs [\d,]+ bytes"
    ):
        write_csv(prediction, tmp_path / "p.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.tif"]  # no temporary file left
