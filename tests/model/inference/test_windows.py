"""Prediction windows: non-finite pixels are filled like nodata, so detections survive them."""

import numpy as np
import pytest
import torch

from model.inference.predict import predict_raster
from model.inference.windows import fill_nodata
from tests.conftest import write_geotiff
from tests.model.fakes import DiscDetector, square_image

pytestmark = pytest.mark.reliability

KW = dict(tile_size=40, overlap=16, batch_size=3, progress=False)


@pytest.mark.parametrize("fill", [[0.0], None])
def test_window_with_inf_still_yields_detections(tmp_path, fill):
    squares = [(10, 10, 6), (62, 62, 6)]
    img = square_image(100, squares, value=300).astype(np.float32)
    img[0, 30:33, 5:8] = np.inf  # in the window of the first square
    img[0, 70, 50] = -np.inf  # in the window of the second
    img[0, 2, 90] = np.nan
    path = write_geotiff(tmp_path / "r.tif", img)
    model = DiscDetector()
    frame = predict_raster(model, path, fill=fill, **KW)
    got = sorted(zip(frame["x"], frame["y"], frame["diameter"], strict=True))
    assert got == [(13.0, 13.0, 6.0), (65.0, 65.0, 6.0)]  # the inf block is no object
    assert all(torch.isfinite(image).all() for image in model.seen)


def test_fill_nodata_uses_the_shared_rule():
    tile = np.array([[[np.inf, 1.0], [np.nan, 7.0]]], dtype=np.float32)
    assert fill_nodata(tile, 7.0, [4.0]).tolist() == [[[4.0, 1.0], [4.0, 4.0]]]
