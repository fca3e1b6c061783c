"""GDAL rasters: degenerate geotransforms and damaged blocks give one RasterError naming the file."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_geotiff
from tests.faults import corrupt_block, noisy_geotiff
from tiling.catalog import read_catalog
from tiling.errors import RasterError
from tiling.sources import Window, open_raster
from tiling.sources.gdal import GdalRaster

pytestmark = pytest.mark.reliability

DEGENERATE = {
    "zero-scale": (0.0, 0.0, 500000.0, 0.0, 0.0, 4000000.0),
    "zero-row": (1.0, 0.0, 500000.0, 2.0, 0.0, 4000000.0),  # rank 1: not invertible
    "nan": (float("nan"), 0.0, 0.0, 0.0, -1.0, 0.0),
}


@pytest.fixture(params=sorted(DEGENERATE))
def degenerate(request, tmp_path):
    data = np.zeros((40, 50), np.uint8)
    return write_geotiff(tmp_path / "bad.tif", data, transform=DEGENERATE[request.param])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coords": "map"}, "degenerate|non-finite"),
        ({"coords": "lonlat"}, "degenerate|non-finite"),
        ({"diameter_unit": "m"}, "degenerate|non-finite"),
        ({"diameter_unit": "map"}, "degenerate|non-finite"),
    ],
)
def test_degenerate_transform_refused_for_map_work(degenerate, tmp_path, kwargs, match):
    csv = tmp_path / "c.csv"
    pd.DataFrame({"x": [10.0], "y": [10.0], "diameter": [2.0]}).to_csv(csv, index=False)
    with pytest.raises(
        RasterError, match=rf"bad.tif: its geotransform .*({match}).*refused for map"
    ):
        read_catalog(csv, degenerate, **kwargs)
    df = read_catalog(csv, degenerate)  # pixel work still fine
    assert df[["x", "y", "diameter"]].to_numpy().tolist() == [[10.0, 10.0, 2.0]]


def test_degenerate_raster_has_no_map_coordinates(degenerate):
    with open_raster(degenerate) as src:
        assert src.world is None and src.crs_wkt is not None
        with pytest.raises(RasterError, match=r"bad.tif: a GeoPackage needs map coordinates .*"):
            src.require_map("a GeoPackage")
        with pytest.raises(RasterError, match="refused for map work"):
            src.pixel_size()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_crs_without_geotransform_is_not_a_map(tmp_path):
    path = write_geotiff(tmp_path / "id.tif", np.zeros((8, 8), np.uint8), transform=(0,) * 6)
    with open_raster(path) as src:
        assert src.world is None
        assert src.world_problem == "it has a CRS but no geotransform (GDAL reports the identity)"


def test_valid_rasters_keep_their_map(tmp_path):
    path = write_geotiff(tmp_path / "ok.tif", np.zeros((8, 8), np.uint8))
    with open_raster(path) as src:
        assert src.world == "map" and src.world_problem is None
        src.require_map("a GeoPackage")


def test_corrupt_block_names_raster_and_window(tmp_path):
    path = noisy_geotiff(tmp_path / "cor.tif")
    corrupt_block(path, 1, 2)  # rows 64-128, columns 128-192
    with open_raster(path) as src:
        assert src.read(Window(0, 0, 64, 64)).shape == (1, 64, 64)  # intact blocks read
        with pytest.raises(
            RasterError, match=r"cor.tif: cannot read window rows 32-160, columns 100-200 .*damaged"
        ):
            src.read(Window(32, 100, 128, 100))
        out = np.empty((1, 64, 256), np.uint8)
        with pytest.raises(RasterError, match=r"window rows 64-128, columns 0-256"):
            src.read_into(Window(64, 0, 64, 256), out)
        with pytest.raises(RasterError, match=r"cor.tif: cannot read an overview"):
            src.read_overview(256)


@pytest.mark.parametrize("bands", [1, 3])
def test_overview_decoded_by_threads_equals_one_read(tmp_path, bands):
    rng = np.random.default_rng(3)
    array = rng.integers(0, 60000, (bands, 400, 300), dtype=np.uint16)
    path = write_geotiff(tmp_path / "r.tif", array)
    with GdalRaster(path) as src:
        one, scale = src.read_overview(100, threads=1)
        for threads in (2, 3, 4):
            banded, same = src.read_overview(100, threads=threads)
            assert same == scale == 4.0 and banded.dtype == np.uint16
            np.testing.assert_array_equal(banded, one)  # the same pixels, whatever the bands
    np.testing.assert_array_equal(one, array[:, 2::4, 2::4])  # nearest: the centre of 4 x 4
