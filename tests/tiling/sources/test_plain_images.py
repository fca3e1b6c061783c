import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning

from tiling.catalog import read_catalog
from tiling.errors import RasterError
from tiling.sources import Window, open_raster
from tiling.store import build_tile_store


@pytest.fixture
def png(tmp_path):
    """A plain RGB PNG from a camera: no CRS, no geotransform."""
    rng = np.random.default_rng(0)
    path = tmp_path / "camera.png"
    Image.fromarray(rng.integers(0, 255, (300, 340, 3), dtype=np.uint8)).save(path)
    return path


def test_plain_png_opens_without_warning_storm(png, tmp_path):
    """Opening, reading, a catalogue and a tile store build raise no NotGeoreferencedWarning."""
    csv = tmp_path / "camera.csv"
    pd.DataFrame({"x": [50.0, 200.0], "y": [60.0, 150.0], "diameter": [12.0, 20.0]}).to_csv(
        csv, index=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotGeoreferencedWarning)
        with open_raster(png) as raster:
            assert raster.world is None and raster.crs_wkt is None
            assert raster.read(Window(0, 0, 8, 8)).shape == (3, 8, 8)
        catalog = read_catalog(csv, png)
        store = build_tile_store([(png, catalog)], tmp_path / "tiles", tile_size=64, overlap=8,
                                 workers=0)  # fmt: skip
    assert len(store) > 0 and store.meta["rasters"][0]["crs_wkt"] is None
    with open_raster(png) as raster, pytest.raises(RasterError, match="only pixel coordinates"):
        raster.pixel_to_world(np.zeros(1), np.zeros(1))
