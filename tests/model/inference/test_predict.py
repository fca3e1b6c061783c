import numpy as np
import pandas as pd
import pytest
import rasterio
import torch

from model.inference.predict import detections_frame, predict_raster
from tests.conftest import write_geotiff
from tests.model.fakes import DiscDetector, square_image
from tiling.errors import RasterError

ANCH = ((8,), (16,), (24,), (32,), (48,))
KW = dict(tile_size=40, overlap=16, batch_size=3, progress=False)  # offsets 0, 24, 48, 60 (for 100)


def boxes_of(frame):
    r = frame["diameter"] / 2
    return sorted(zip(frame["x"] - r, frame["y"] - r, frame["x"] + r, frame["y"] + r, strict=True))


def test_objects_in_overlaps_reported_once_with_full_box(tmp_path):
    # (x0, y0, side): inside one tile, in the overlap of 2 tiles, of 4 tiles, on the raster edge
    squares = [(5, 5, 6), (28, 8, 8), (26, 28, 10), (94, 50, 6), (70, 90, 4)]
    path = write_geotiff(tmp_path / "r.tif", square_image(100, squares))
    frame = predict_raster(DiscDetector(), path, **KW)
    expected = sorted((x, y, x + s, y + s) for x, y, s in squares)
    assert boxes_of(frame) == [tuple(map(float, b)) for b in expected]
    assert set(frame["label"]) == {"dark"}
    assert list(frame.columns[:7]) == ["x", "y", "diameter", "width", "height", "score", "label"]
    assert (frame["width"] == frame["height"]).all()


def test_identical_with_0_and_2_workers(tmp_path):
    rng = np.random.default_rng(0)
    squares = [
        (int(x), int(y), int(s))
        for x, y, s in zip(
            rng.integers(0, 90, 12), rng.integers(0, 90, 12), rng.integers(2, 8, 12), strict=True
        )
    ]
    path = write_geotiff(tmp_path / "r.tif", square_image(100, squares))
    a = predict_raster(DiscDetector(), path, workers=0, **KW)
    b = predict_raster(DiscDetector(), path, workers=2, **KW)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) > 0


def test_crs_columns_match_rasterio_transform(tmp_path):
    path = write_geotiff(tmp_path / "r.tif", square_image(100, [(10, 20, 6)]))
    frame = predict_raster(DiscDetector(), path, **KW)
    with rasterio.open(path) as ds:
        mx, my = ds.transform @ (frame["x"].to_numpy(), frame["y"].to_numpy())
    np.testing.assert_allclose(frame["map_x"], mx)
    np.testing.assert_allclose(frame["map_y"], my)
    assert frame.loc[0, "x"] == 13.0 and frame.loc[0, "map_x"] == 500013.0
    assert -84 < frame.loc[0, "lon"] < -80 and 35 < frame.loc[0, "lat"] < 37  # UTM 17N, y=4000 km
    assert frame.loc[0, "map_diameter"] == 6.0


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_no_crs_gives_pixel_columns_only(tmp_path):
    path = write_geotiff(
        tmp_path / "r.tif", square_image(100, [(10, 20, 6)]), crs=None, transform=(1, 0, 0, 0, 1, 0)
    )
    frame = predict_raster(DiscDetector(), path, **KW)
    assert list(frame.columns) == ["x", "y", "diameter", "width", "height", "score", "label"]


def test_nodata_filled_and_float_values_kept(tmp_path):
    img = square_image(100, [(10, 10, 5)], value=300)
    img[0, :, :3] = 65535
    path = write_geotiff(tmp_path / "r.tif", img, nodata=65535)
    model = DiscDetector()
    frame = predict_raster(model, path, fill=[7.0], **KW)
    first = model.seen[0]
    assert first.dtype == torch.float32 and first[0, 0, 0] == 7.0 and first.max() == 300.0
    assert len(frame) == 1  # the nodata stripe (65535 > threshold) is not detected


def test_score_thresh_and_labels(tmp_path):
    img = square_image(100, [(10, 10, 5)], value=150) + square_image(100, [(60, 60, 5)], value=500)
    path = write_geotiff(tmp_path / "r.tif", img)
    frame = predict_raster(DiscDetector(label_split=300), path, score_thresh=0.0, **KW)
    assert sorted(frame["label"]) == ["bright", "dark"]
    assert len(predict_raster(DiscDetector(), path, score_thresh=0.999, **KW)) == 0


def test_band_count_mismatch_names_both(tmp_path):
    from model.config import ModelConfig
    from model.network.factory import build_retinanet

    model = build_retinanet(ModelConfig(in_channels=3, tile_size=64, anchor_sizes=ANCH))
    path = write_geotiff(tmp_path / "r.tif", square_image(100, []))
    with pytest.raises(RasterError, match=r"1 band\(s\) but the model expects 3"):
        predict_raster(model, path, **KW)


def test_retinanet_checkpoint_runs_and_settings_restored(tmp_path):
    from model.config import ModelConfig
    from model.network.checkpoint import save_model_checkpoint
    from model.network.factory import build_retinanet

    cfg = ModelConfig(
        backbone="resnet18",
        in_channels=1,
        tile_size=64,
        anchor_sizes=ANCH,
        image_mean=[100.0],
        image_std=[50.0],
    )
    model = build_retinanet(cfg).eval()
    ckpt = save_model_checkpoint(model, cfg, tmp_path / "m.ckpt")
    path = write_geotiff(tmp_path / "r.tif", square_image(100, [(10, 10, 8)]))
    frame = predict_raster(ckpt, path, tile_size=64, overlap=16, score_thresh=0.0, progress=False)
    assert {"x", "y", "diameter", "score", "label"} <= set(frame.columns)
    assert set(frame["label"]) <= {"object"}
    nms_before = model.nms_thresh
    predict_raster(model, path, tile_size=64, overlap=16, nms_thresh=0.3, progress=False)
    assert model.nms_thresh == nms_before


def test_missing_raster(tmp_path):
    with pytest.raises(RasterError, match="does not exist"):
        predict_raster(DiscDetector(), tmp_path / "nope.tif", **KW)


@pytest.mark.parametrize(
    ("crs", "west", "deg"),
    [("IAU_2015:30100", 350.0, 0.04), ("IAU_2015:49900", -30.0, 0.04)],
    ids=["moon-0-360", "mars-180"],
)
def test_lonlat_km_catalogue_round_trip(tmp_path, crs, west, deg):
    """Catalogue (lon, lat, km) -> pixel boxes -> prediction catalogue: back within 0.1 px and
    0.5 % of the diameter, longitudes in the raster's convention, diameters on the ellipsoid."""
    from tiling.catalog import read_catalog
    from tiling.catalog.footprint import LonLatFrame

    tif = write_geotiff(
        tmp_path / "body.tif", np.zeros((3600, 1000), np.uint8), crs=crs,
        transform=(deg, 0, west, 0, -deg, 72.0),
    )  # fmt: skip
    rng = np.random.default_rng(1)
    lon = (west + rng.uniform(0.5, 1000 * deg - 0.5, 50)) % 360  # catalogue in 0..360
    lat = rng.uniform(-60.0, 70.0, 50)
    km = rng.uniform(5.0, 60.0, 50)
    csv = tmp_path / "c.csv"
    pd.DataFrame({"lon": lon, "lat": lat, "diameter_km": km}).to_csv(csv, index=False)
    cat = read_catalog(csv, tif, columns={"x": "lon", "y": "lat", "diameter": "diameter_km"},
                       coords="lonlat", diameter_unit="km")  # fmt: skip
    assert len(cat) == 50 and (cat["width"] > cat["height"]).mean() > 0.9  # wide off the equator
    half = cat[["width", "height"]].to_numpy() / 2
    xy = cat[["x", "y"]].to_numpy()
    boxes = torch.tensor(np.hstack([xy - half, xy + half]))
    from tiling.sources import open_raster

    with open_raster(tif) as raster:
        pred = detections_frame(boxes, torch.ones(50), torch.zeros(50, dtype=torch.long),
                                ["crater"], raster, "km")  # fmt: skip
        x_back, y_back = LonLatFrame.of(raster).to_pixels(
            pred["lon"].to_numpy(), pred["lat"].to_numpy()
        )
    assert "diameter_m" not in pred
    assert np.hypot(x_back - cat["x"], y_back - cat["y"]).max() < 0.1
    assert np.abs(pred["diameter_km"] / km - 1).max() < 0.005
    np.testing.assert_allclose(np.mod(pred["lon"], 360), lon, atol=1e-8)
    centre = west + 500 * deg
    assert (np.abs(pred["lon"] - centre) <= 180).all()  # the raster's longitude convention


class FlatBoxDetector(DiscDetector):
    """DiscDetector that adds a box of width 0 and one of height 0 to every window."""

    def forward(self, images):
        out = super().forward(images)
        for o in out:
            flat = torch.tensor([[3.0, 3.0, 3.0, 9.0], [5.0, 7.0, 12.0, 7.0]])
            o["boxes"] = torch.cat([o["boxes"], flat])
            o["scores"] = torch.cat([o["scores"], torch.tensor([0.9, 0.9])])
            o["labels"] = torch.cat([o["labels"], torch.tensor([0, 0])])
        return out


def test_boxes_without_area_are_no_objects(tmp_path):
    squares = [(5, 5, 6), (70, 60, 8)]
    path = write_geotiff(tmp_path / "r.tif", square_image(100, squares))
    frame = predict_raster(FlatBoxDetector(), path, **KW)
    assert boxes_of(frame) == [tuple(map(float, (x, y, x + s, y + s))) for x, y, s in squares]
    assert (frame["width"] > 0).all() and (frame["height"] > 0).all()


@pytest.mark.parametrize(
    ("stored", "tta", "expected"),
    [
        (
            {"score_thresh_f1": 0.7, "score_thresh_f1@flips": 0.4},
            None,
            (0.7, "F1-best on validation"),
        ),
        (
            {"score_thresh_f1": 0.7, "score_thresh_f1@flips": 0.4},
            "flips",
            (0.4, "F1-best on validation with flips"),
        ),
        (
            {"score_thresh_f1": 0.7, "score_thresh_f1@flips": 0.4},
            "d4",
            (0.4, "F1-best on validation with flips; none stored for d4"),
        ),
        (
            {"score_thresh_f1": 0.7, "score_thresh_f1@d4": 0.35, "score_thresh_f1@flips": 0.4},
            "d4",
            (0.35, "F1-best on validation with d4"),
        ),
        (
            {"score_thresh_f1": 0.7, "score_thresh_f1@flips": None},  # older checkpoints
            "flips",
            (0.7, "F1-best on validation; none stored for flips"),
        ),
    ],
)
def test_the_stored_threshold_of_the_prediction_views(tmp_path, stored, tta, expected):
    from model.inference.predict import choose_score_thresh
    from model.network.checkpoint import write_score_thresholds

    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": {}}}, path)
    write_score_thresholds(path, stored)
    assert choose_score_thresh("auto", path, tta=tta) == expected
    assert choose_score_thresh(0.25, path, tta=tta) == (0.25, "given")
