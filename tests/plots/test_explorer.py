import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from model.evaluate import evaluate_catalog
from plots.explorer import MIN_RADIUS_PX, RasterExplorer, _frame_size


@pytest.fixture
def field(make_geotiff):
    rng = np.random.default_rng(0)
    data = rng.integers(100, 1000, (300, 500), dtype=np.uint16)
    truth = pd.DataFrame(
        {"x": [50.0, 200, 400, 420], "y": [40.0, 150, 250, 30], "diameter": [20.0, 8, 30, 10],
         "label": ["fresh", "degraded", "fresh", "fresh"]}
    )  # fmt: skip
    pred = pd.DataFrame(
        {"x": [51.0, 201, 300], "y": [40.0, 150, 100], "diameter": [19.0, 8, 12],
         "score": [0.9, 0.5, 0.35], "label": ["fresh", "degraded", "fresh"]}
    )  # fmt: skip
    return make_geotiff("field.tif", data), evaluate_catalog(pred, truth)


def test_opens_on_the_whole_raster_with_every_object(field):
    path, evaluation = field
    with RasterExplorer(path, evaluation, size=(250, 250), base_size=128) as explorer:
        assert explorer.screen == (250, 150)
        image = explorer.image_source.data
        # 2 raster px per screen px, finer than the 128 px overview (3.9): a strided window read
        assert image["image"][0].shape == (150, 250) and image["dw"] == [500]
        objects = explorer.object_source.data
        assert sorted(objects["kind"]) == [
            "false positive", "missed", "missed", "true positive", "true positive"
        ]  # fmt: skip
        assert (
            "5 objects" in explorer.status.text and "1:2.0 from the window" in explorer.status.text
        )
        # 2 raster px per screen px: an 8 px object is drawn no thinner than 3 screen px
        radius = dict(zip(objects["size"], objects["radius"], strict=True))
        assert radius["8.0 px (catalogue 8.0 px)"] == MIN_RADIUS_PX * 2
        assert radius["30.0 px"] == 15.0


def test_zoom_reads_the_window_and_keeps_the_objects_in_view(field):
    path, evaluation = field
    with RasterExplorer(path, evaluation, size=(250, 250), base_size=128) as explorer:
        explorer._on_ranges(type("Ranges", (), {"x0": 0, "x1": 100, "y0": 80, "y1": 0})())
        image = explorer.image_source.data
        assert image["image"][0].shape == (80, 100) and (image["x"], image["y"]) == ([0], [0])
        assert list(explorer.object_source.data["x"]) == [51.0]
        assert "1:1.0 from the window" in explorer.status.text
        explorer.update(600, 700, 0, 50)  # off the raster
        assert explorer.image_source.data["image"] == [] and "no pixels" in explorer.status.text


def test_filters_by_score_kind_and_label(field):
    path, evaluation = field
    with RasterExplorer(path, evaluation, base_size=128) as explorer:
        explorer.score_slider.value = 0.6
        explorer._on_filter("value_throttled", 0, 0.6)
        assert sorted(explorer.object_source.data["kind"]) == ["missed", "missed", "true positive"]
        explorer.kind_boxes.active = [explorer.kind_boxes.labels.index("missed")]
        explorer._on_filter("active", [], [])
        assert set(explorer.object_source.data["kind"]) == {"missed"}
        explorer.label_boxes.active = [explorer.label_boxes.labels.index("degraded")]
        explorer._on_filter("active", [], [])
        assert len(explorer.object_source.data["kind"]) == 0


def test_click_pins_pixel_world_diameter_and_score(field):
    path, evaluation = field
    with RasterExplorer(path, evaluation, base_size=128) as explorer:
        data = explorer.object_source.data
        i = list(data["score_text"]).index("0.900")
        explorer._on_pick("indices", [], [i])
        text = explorer.picked.text
        # pixel (51, 40) -> map x = 500000 + 51, y = 4000000 - 40 (1 m pixels, conftest's transform)
        assert "true positive fresh" in text and "pixel 51.0, 40.0" in text
        assert "world 500051.00, 3999960.00" in text and "19.0 px (catalogue 20.0 px)" in text
        assert "score 0.900" in text


def test_fits_and_plain_catalogues_in_pixel_space(tmp_path):
    image = np.random.default_rng(1).normal(100, 5, (64, 96)).astype(np.float32)
    fits.PrimaryHDU(image).writeto(tmp_path / "sky.fits")
    truth = pd.DataFrame({"x": [10.0, 50], "y": [10.0, 30], "diameter": [4.0, 6]})
    with RasterExplorer(tmp_path / "sky.fits", truth=truth, stretch="zscale") as explorer:
        data = explorer.object_source.data
        assert list(data["kind"]) == ["catalogue", "catalogue"]
        assert set(data["world"]) == {"none (pixel raster)"}
        assert not explorer.score_slider.visible and not explorer.kind_boxes.visible


def test_frame_fits_the_raster_aspect_in_the_box():
    assert _frame_size((6000, 6000), (860, 600)) == (600, 600)
    assert _frame_size((1000, 4000), (860, 600)) == (860, 215)
    assert _frame_size((50000, 10), (860, 600)) == (100, 600)
