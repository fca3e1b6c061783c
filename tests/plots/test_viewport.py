import numpy as np
import pytest
from astropy.io import fits

from plots.viewport import RasterView, decimation, view_window
from tiling.errors import ConfigError
from tiling.sources import Window


def test_view_window_clips_and_rounds_outwards():
    assert view_window(-5, 10.2, 3.5, 8, 100, 50) == Window(3, 0, 5, 11)
    assert view_window(60, 40, 8, 3.5, 100, 50) == Window(3, 40, 5, 10)  # reversed bounds
    assert view_window(60, 80, 0, 10, 100, 50) is None  # right of the raster


def test_decimation_is_raster_pixels_per_screen_pixel():
    assert decimation(Window(0, 0, 400, 1000), (500, 400)) == 2.0
    assert decimation(Window(0, 0, 10, 10), (500, 400)) == 1.0
    with pytest.raises(ConfigError, match=r"screen size \(0, 10\) must be at least 1 x 1"):
        decimation(Window(0, 0, 10, 10), (0, 10))


@pytest.fixture
def gradient(make_geotiff):
    rows, cols = np.mgrid[0:300, 0:400]
    data = (rows * 100 + cols // 4).astype(np.uint16)
    data[:, :20] = 0  # nodata strip on the left
    return make_geotiff("g.tif", data, nodata=0), data


def test_far_views_come_from_the_overview_near_views_from_windows(gradient):
    path, _ = gradient
    with RasterView(path, base_size=100) as view:
        assert view.overview.shape == (1, 75, 100) and view.scale == 4.0
        whole = view.render(0, 400, 0, 300, (100, 75))
        assert whole.source == "overview" and whole.rgba.shape == (75, 100)
        assert (whole.x, whole.y, whole.dw, whole.dh) == (0, 0, 400, 300)
        near = view.render(100, 140, 50, 80, (200, 150))
        assert near.source == "window" and near.step == 1 and near.rgba.shape == (30, 40)
        assert (near.x, near.y, near.dw, near.dh) == (100, 50, 40, 30)
        mid = view.render(0, 200, 0, 150, (80, 60))  # 2.5 px per screen px < scale 4
        assert mid.source == "window" and mid.step == 2 and mid.rgba.shape == (75, 100)
        assert view.render(500, 600, 0, 10, (80, 60)) is None
        small = view.render(0, 400, 0, 300, (40, 30))  # 10 px per screen px: every 2nd of the 4
        assert small.source == "overview" and small.step == 8 and small.rgba.shape == (38, 50)
        assert (small.dw, small.dh) == (400, 304)  # whole strided pixels, past the last row


def test_decimated_reads_equal_strided_numpy_in_small_strips(gradient):
    path, data = gradient
    with RasterView(path, base_size=64, strip_bytes=2000) as view:  # 2.5 rows of 400 px a strip
        window = Window(7, 13, 101, 257)
        for step in (1, 2, 3, 7):
            got = view.read_decimated(window, step)
            expected = data[7:108, 13:270][::step, ::step]
            np.testing.assert_array_equal(got[0], expected)


def test_rgba_is_grey_stretched_with_nodata_transparent(gradient):
    path, _ = gradient
    with RasterView(path, base_size=100) as view:
        frame = view.render(0, 40, 0, 30, (400, 300))
        rgba = frame.rgba.view(np.uint8).reshape(30, 40, 4)
        assert (rgba[:, :20, 3] == 0).all() and (rgba[:, 20:, 3] == 255).all()
        assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 1] == rgba[..., 2]).all()
        far = view.render(0, 400, 0, 300, (100, 75)).rgba.view(np.uint8).reshape(75, 100, 4)
        assert far[-1, -1, 0] == 255 and far[0, 6, 0] == 0  # 99th and 1st percentiles clip


def test_rgb_rasters_keep_their_colours(make_geotiff):
    data = np.zeros((3, 40, 50), np.uint8)
    data[0, :, 25:] = 200  # right half red
    data[2, :, :25] = 100  # left half blue
    with RasterView(make_geotiff("rgb.tif", data)) as view:
        rgba = view.render(0, 50, 0, 40, (50, 40)).rgba.view(np.uint8).reshape(40, 50, 4)
    assert rgba[0, 40, 0] == 255 and rgba[0, 40, 2] == 0
    assert rgba[0, 10, 0] == 0 and rgba[0, 10, 2] == 255


def test_fits_without_wcs_renders_in_pixels(tmp_path):
    image = np.arange(60 * 80, dtype=np.float32).reshape(60, 80)
    image[0, 0] = np.nan
    fits.PrimaryHDU(image).writeto(tmp_path / "plain.fits")
    with RasterView(tmp_path / "plain.fits", base_size=16, stretch="zscale") as view:
        assert view.world is None and view.scale == 5.0
        frame = view.render(0, 80, 0, 60, (40, 30))
        assert frame.source == "window" and frame.step == 2
        assert frame.rgba.view(np.uint8).reshape(30, 40, 4)[0, 0, 3] == 0  # NaN is transparent


def test_bad_settings_and_empty_rasters_are_reported(make_geotiff, tmp_path):
    path = make_geotiff("zero.tif", np.zeros((20, 20), np.uint16), nodata=0)
    with pytest.raises(ConfigError, match="base_size=8 must be >= 16"):
        RasterView(path, base_size=8)
    with pytest.raises(ConfigError, match="zero.tif: the overview holds only nodata"):
        RasterView(path)
