import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import CRS

from model.inference.predict import predict_raster
from model.inference.writers import write_csv, write_geopackage
from tests.conftest import write_geotiff
from tests.model.fakes import DiscDetector, square_image
from tiling.errors import CatalogError


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
    with pytest.raises(CatalogError, match="needs a raster with a map CRS"):
        write_geopackage(prediction, tmp_path / "p.gpkg", crs_wkt=None)
    with pytest.raises(CatalogError, match="map_x"):
        write_geopackage(prediction[["x", "y"]], tmp_path / "p.gpkg", crs_wkt="EPSG:32617")
