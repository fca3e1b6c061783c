"""Synthetic star field: deterministic, WCS-consistent, catalogue on bright pixels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tiling.sources import Window, open_raster
from tiling.sources.fits import FitsRaster
from tiling.synthetic import starfield


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    out = tmp_path_factory.mktemp("starfield")
    fits_path, csv_path = starfield.generate_star_field(out, small=True, seed=0)
    with FitsRaster(fits_path) as r:
        image = r.read(Window(0, 0, r.height, r.width))[0]
        x, y = r.world_to_pixel(*pd.read_csv(csv_path)[["ra", "dec"]].to_numpy().T)
        pixel_size = r.pixel_size()
    return out, fits_path, csv_path, image, x, y, pixel_size


def test_files_and_layout(field):
    out, fits_path, csv_path, image, *_ = field
    assert fits_path == out / "images" / "star_field.fits"
    assert csv_path == out / "datasets" / "star_field.csv"
    assert image.shape == (768, 768) and image.dtype == np.float32
    cat = pd.read_csv(csv_path)
    assert list(cat.columns) == ["ra", "dec", "diameter_arcsec", "label"]
    assert set(cat["label"]) == {"star", "galaxy"}
    assert (cat["label"] == "star").sum() > 80 and (cat["label"] == "galaxy").sum() >= 3


def test_open_raster_sees_sky_wcs(field):
    _, fits_path, *_, pixel_size = field
    with open_raster(fits_path) as r:
        assert r.world == "sky" and np.isnan(r.nodata)
    assert pixel_size * 3600 == pytest.approx(starfield.PIXEL_SCALE)


def test_image_content(field):
    image = field[3]
    nan = np.isnan(image)
    assert 0.005 < nan.mean() < 0.05  # the patch and the bad columns
    valid = image[~nan]
    assert np.median(valid) == pytest.approx(starfield.SKY, abs=5)
    assert valid.max() == starfield.SATURATION  # saturated stars are clipped
    assert np.std(valid[valid < np.percentile(valid, 50)]) < 2 * starfield.SKY_SIGMA


def test_catalogue_lands_on_bright_pixels(field):
    _, _, csv_path, image, x, y, pixel_size = field
    cat = pd.read_csv(csv_path)
    assert ((x > 0) & (x < 768) & (y > 0) & (y < 768)).all()
    col, row = x.astype(int), y.astype(int)
    assert not np.isnan(image[row, col]).any()  # objects in the NaN region were removed
    threshold = starfield.SKY + 4 * starfield.SKY_SIGMA
    padded = np.pad(np.nan_to_num(image, nan=0.0), 3)
    peaks, offsets = [], []
    for c, r in zip(col, row, strict=True):
        box = padded[r : r + 7, c : c + 7]  # 7 x 7 around the centre pixel
        peaks.append(box[2:5, 2:5].max())
        dr, dc = np.unravel_index(np.argmax(box), box.shape)
        offsets.append(np.hypot(dr - 3, dc - 3))
    stars = (cat["label"] == "star").to_numpy()
    assert np.mean(np.array(peaks) > threshold) > 0.97
    assert np.median(np.array(offsets)[stars]) <= 1.0
    diam_px = cat["diameter_arcsec"] / 3600 / pixel_size
    assert diam_px[stars].between(3.5, 33).all() and 5 <= diam_px[stars].median() <= 15
    assert diam_px[~stars].between(12, 80).all()


def test_deterministic_and_seed_dependent(field, tmp_path):
    _, _, csv_path, image, *_ = field
    fits_path2, csv_path2 = starfield.generate_star_field(tmp_path, small=True, seed=0)
    with FitsRaster(fits_path2) as r:
        again = r.read(Window(0, 0, r.height, r.width))[0]
    np.testing.assert_array_equal(again, image)
    assert csv_path2.read_bytes() == csv_path.read_bytes()
    other, objects, _ = starfield.render_star_field(128, seed=1)
    same, objects_same, _ = starfield.render_star_field(128, seed=1)
    np.testing.assert_array_equal(other, same)
    pd.testing.assert_frame_equal(objects, objects_same)
    assert not np.array_equal(starfield.render_star_field(128, seed=2)[0], other, equal_nan=True)


def test_cli(tmp_path, monkeypatch):
    monkeypatch.setattr(starfield, "SMALL_SIZE", 96)
    starfield.main(["--out", str(tmp_path / "sf"), "--small", "--seed", "4"])
    assert (tmp_path / "sf" / "images" / "star_field.fits").exists()
    assert len(pd.read_csv(tmp_path / "sf" / "datasets" / "star_field.csv")) > 0
