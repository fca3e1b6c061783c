"""Prediction over damaged or unusual rasters: one clear error, or correct pixel-only results."""

import numpy as np
import pytest

from model.inference.predict import predict_raster
from model.inference.writers import write_catalog
from tests.conftest import write_geotiff
from tests.faults import corrupt_block
from tests.model.fakes import DiscDetector, square_image
from tiling.errors import RasterError, TilingError

pytestmark = pytest.mark.reliability

KW = dict(tile_size=40, overlap=16, batch_size=3, progress=False)


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_block_names_raster_and_window(tmp_path, workers):
    path = write_geotiff(tmp_path / "cor.tif", square_image(256, [(10, 10, 6)], dtype=np.uint8))
    corrupt_block(path, 2, 1)  # rows 128-192, columns 64-128
    with pytest.raises(RasterError) as info:
        predict_raster(DiscDetector(), path, workers=workers, **KW)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot read window rows ")
    assert "damaged" in message and "Traceback" not in message and "\n" not in message


def test_degenerate_transform_gives_pixels_only_and_no_gis_file(tmp_path):
    path = write_geotiff(
        tmp_path / "deg.tif",
        square_image(100, [(10, 20, 6)]),
        transform=(0.0, 0.0, 500000.0, 0.0, 0.0, 4000000.0),
    )
    frame = predict_raster(DiscDetector(), path, **KW)
    assert (
        list(frame.columns) == ["x", "y", "diameter", "width", "height", "score", "label"]
        and len(frame) == 1
    )
    with pytest.warns(UserWarning, match=r"deg.tif: its geotransform .* degenerate.*out.gpkg not"):
        written = write_catalog(frame, tmp_path / "run", "out", path)
    assert [p.name for p in written] == ["out.csv"] and not (tmp_path / "run/out.gpkg").exists()


def test_raster_smaller_than_a_window_is_named(tmp_path):
    path = write_geotiff(tmp_path / "tiny.tif", square_image(30, []))
    with pytest.raises(
        TilingError, match=r"tiny.tif: the raster \(30 x 30 px\) is smaller than tile_size=40"
    ):
        predict_raster(DiscDetector(), path, **KW)
