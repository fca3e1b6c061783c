"""FitsRaster: windows, scaling, compression, nodata, WCS and errors on tiny FITS in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from tiling.errors import RasterError
from tiling.sources import Window, open_raster
from tiling.sources.fits import FitsRaster

CRVAL = (150.0, 2.5)
CRPIX = (20.0, 15.0)  # 1-based FITS reference pixel
CD = np.array([[-1.0e-4, 2.0e-5], [3.0e-5, 1.2e-4]])  # deg/px, rotated and skewed a little


def sky_header() -> fits.Header:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(CRVAL)
    wcs.wcs.crpix = list(CRPIX)
    wcs.wcs.cd = CD
    return wcs.to_header()


def write(path, hdus):
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.fixture
def image():
    return np.random.default_rng(0).normal(100, 10, (37, 53)).astype(np.float32)


WINDOWS = [Window(0, 0, 37, 53), Window(5, 7, 10, 20), Window(30, 40, 7, 13), Window(12, 0, 1, 1)]


def test_2d_windows_equal_numpy_slices(tmp_path, image):
    path = write(tmp_path / "a.fits", [fits.PrimaryHDU(image, header=sky_header())])
    with FitsRaster(path) as r:
        assert (r.height, r.width, r.count, r.dtype) == (37, 53, 1, np.dtype("float32"))
        assert np.isnan(r.nodata) and r.world == "sky" and r.crs_wkt is None
        for w in WINDOWS:
            np.testing.assert_array_equal(r.read(w), image[None][(slice(None), *w.slices)])


def test_cube_bands_and_named_hdu(tmp_path):
    cube = np.arange(3 * 20 * 30, dtype=np.int32).reshape(3, 20, 30)
    other = np.ones((4, 4), np.float32)
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(other, name="FIRST"), fits.ImageHDU(cube, name="CUBE")]
    path = write(tmp_path / "cube.fits", hdus)
    with FitsRaster(path, hdu="CUBE") as r:
        assert (r.count, r.height, r.width, r.dtype, r.nodata) == (3, 20, 30, np.int32, None)
        assert r.hdu_index == 2 and r.world is None
        np.testing.assert_array_equal(r.read(Window(4, 5, 6, 7)), cube[:, 4:10, 5:12])
    with FitsRaster(path, hdu=2) as r:
        np.testing.assert_array_equal(r.read(Window(0, 0, 20, 30)), cube)
    with FitsRaster(path) as r:  # default: first HDU with image data, the primary is empty
        assert r.hdu_index == 1 and r.height == 4


def test_scaled_int16_blank_becomes_nan_float32(tmp_path):
    raw = np.random.default_rng(1).integers(-1000, 1000, (25, 40)).astype(np.int16)
    raw[3, 4] = -32768
    hdu = fits.PrimaryHDU(raw)
    hdu.header.update(BSCALE=0.5, BZERO=10.0, BLANK=-32768)
    path = write(tmp_path / "s.fits", [hdu])
    expected = raw.astype(np.float32) * 0.5 + 10.0
    expected[3, 4] = np.nan
    with FitsRaster(path) as r:
        assert r.dtype == np.float32 and np.isnan(r.nodata)
        got = r.read(Window(2, 3, 5, 6))
        np.testing.assert_array_equal(got[0], expected[2:7, 3:9])
        assert np.isnan(got[0, 1, 1])


def test_uint16_bzero_32768_stays_uint16(tmp_path):
    data = np.random.default_rng(2).integers(0, 65536, (30, 20)).astype(np.uint16)
    data[0, 0], data[1, 1] = 0, 65535
    path = write(tmp_path / "u.fits", [fits.PrimaryHDU(data)])  # astropy writes BZERO=32768
    assert fits.getheader(path)["BZERO"] == 32768
    with FitsRaster(path) as r:
        assert r.dtype == np.uint16 and r.nodata is None
        np.testing.assert_array_equal(r.read(Window(0, 0, 5, 4))[0], data[:5, :4])
        np.testing.assert_array_equal(r.read(Window(10, 3, 20, 17))[0], data[10:, 3:])


def test_uint16_blank_is_nodata(tmp_path):
    raw = np.zeros((4, 4), np.int16)
    raw[1, 2] = -32768
    hdu = fits.PrimaryHDU(raw, do_not_scale_image_data=True)
    hdu.header.update(BZERO=32768, BSCALE=1, BLANK=-32768)
    path = write(tmp_path / "ub.fits", [hdu])
    with FitsRaster(path) as r:
        assert r.dtype == np.uint16 and r.nodata == 0.0
        assert r.read(Window(0, 0, 4, 4))[0, 0, 0] == 32768


def test_integer_blank_kept_as_nodata(tmp_path):
    raw = np.full((5, 6), 7, np.int16)
    raw[2, 2] = -99
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BLANK"] = -99
    path = write(tmp_path / "b.fits", [hdu])
    with FitsRaster(path) as r:
        assert r.dtype == np.int16 and r.nodata == -99
        assert r.read(Window(2, 2, 1, 1)).item() == -99


@pytest.mark.parametrize("dtype", ["float32", "uint16", "int16"])
def test_compressed_rice_windows(tmp_path, dtype):
    rng = np.random.default_rng(3)
    cube = rng.integers(0, 60000 if dtype == "uint16" else 3000, (3, 70, 45)).astype(dtype)
    comp = fits.CompImageHDU(cube, header=sky_header(), compression_type="RICE_1", name="SCI")
    comp.header["NAXIS3"] = 3
    path = write(tmp_path / "c.fits.fz", [fits.PrimaryHDU(), comp])
    with open_raster(path) as r:
        assert isinstance(r, FitsRaster) and r.count == 3 and r.dtype == np.dtype(dtype)
        assert r.world == "sky"
        window = r.read(Window(33, 10, 20, 30))
    full = fits.getdata(path, ext=1)  # astropy's own full decompression (RICE quantizes floats)
    np.testing.assert_array_equal(window, full[:, 33:53, 10:40])
    np.testing.assert_allclose(window, cube[:, 33:53, 10:40], atol=0 if dtype != "float32" else 100)


def test_nan_pixels_are_nodata_in_overview(tmp_path, image):
    image = image.copy()
    image[:4, :4] = np.nan
    path = write(tmp_path / "n.fits", [fits.PrimaryHDU(image)])
    with FitsRaster(path) as r:
        assert np.isnan(r.read(Window(0, 0, 2, 2))).all()
        ov, scale = r.read_overview(14)
        assert scale == 4.0 and ov.shape == (1, 10, 14)
        assert np.isnan(ov[0, 0, 0])
        np.testing.assert_allclose(ov[0, 2, 3], image[8:12, 12:16].mean(), rtol=1e-5)
        np.testing.assert_allclose(ov[0, -1, -1], image[36:, 52:].mean(), rtol=1e-5)


def test_overview_strips_match_full_block_mean(tmp_path, monkeypatch):
    data = np.random.default_rng(4).integers(0, 1000, (2, 50, 30)).astype(np.int16)
    path = write(tmp_path / "o.fits", [fits.PrimaryHDU(data)])
    monkeypatch.setattr("tiling.sources.fits.OVERVIEW_STRIP_BYTES", 1)  # one block row per strip
    with FitsRaster(path) as r:
        ov, scale = r.read_overview(10)
    assert scale == 5.0 and ov.shape == (2, 10, 6) and ov.dtype == np.int16
    expected = data.reshape(2, 10, 5, 6, 5).mean(axis=(2, 4))
    np.testing.assert_array_equal(ov, np.round(expected))


def test_wcs_crpix_roundtrip_and_pixel_size(tmp_path, image):
    path = write(tmp_path / "w.fits", [fits.PrimaryHDU(image, header=sky_header())])
    with FitsRaster(path) as r:
        ra, dec = r.pixel_to_world(CRPIX[0] - 0.5, CRPIX[1] - 0.5)
        np.testing.assert_allclose([ra, dec], CRVAL, atol=1e-10)
        x = np.array([0.0, 10.3, 52.9, -5.0, 70.0])
        y = np.array([0.0, 20.7, 36.5, 40.0, -3.0])
        back = r.world_to_pixel(*r.pixel_to_world(x, y))
        np.testing.assert_allclose(back, [x, y], atol=0.01)
        assert r.pixel_size() == pytest.approx(np.sqrt(abs(np.linalg.det(CD))), rel=1e-9)


def test_wcs_one_pixel_step_follows_cd(tmp_path, image):
    path = write(tmp_path / "w.fits", [fits.PrimaryHDU(image, header=sky_header())])
    with FitsRaster(path) as r:
        x0, y0 = CRPIX[0] - 0.5, CRPIX[1] - 0.5
        ra1, dec1 = r.pixel_to_world(x0 + 1.0, y0)  # one column to the right = first CD column
    cosd = np.cos(np.radians(CRVAL[1]))
    np.testing.assert_allclose([(ra1 - CRVAL[0]) * cosd, dec1 - CRVAL[1]], CD[:, 0], rtol=1e-3)


def test_cube_with_spectral_axis_uses_celestial_wcs(tmp_path):
    header = sky_header()
    header.update(CTYPE3="FREQ", CRVAL3=1.4e9, CDELT3=1e6, CRPIX3=1.0)
    cube = np.zeros((2, 30, 40), np.float32)
    path = write(tmp_path / "spec.fits", [fits.PrimaryHDU(cube, header=header)])
    with FitsRaster(path) as r:
        assert r.world == "sky" and r.count == 2
        np.testing.assert_allclose(r.pixel_to_world(CRPIX[0] - 0.5, CRPIX[1] - 0.5), CRVAL)


def test_galactic_wcs_converts_to_icrs(tmp_path, image):
    header = sky_header()
    header.update(CTYPE1="GLON-TAN", CTYPE2="GLAT-TAN", CRVAL1=0.0, CRVAL2=0.0)
    path = write(tmp_path / "g.fits", [fits.PrimaryHDU(image, header=header)])
    with FitsRaster(path) as r:
        ra, dec = r.pixel_to_world(CRPIX[0] - 0.5, CRPIX[1] - 0.5)
        np.testing.assert_allclose([ra, dec], [266.405, -28.936], atol=1e-2)  # Galactic centre
        np.testing.assert_allclose(
            r.world_to_pixel(ra, dec), [CRPIX[0] - 0.5, CRPIX[1] - 0.5], atol=0.01
        )


@pytest.mark.parametrize("name", ["x.fits", "x.fits.fz", "x.fit"])
def test_open_raster_picks_fits(tmp_path, image, name):
    path = write(tmp_path / name, [fits.PrimaryHDU(image)])
    with open_raster(path) as r:
        assert isinstance(r, FitsRaster) and r.world is None


def test_open_raster_passes_hdu(tmp_path, image):
    path = write(tmp_path / "h.fits", [fits.PrimaryHDU(image), fits.ImageHDU(image * 2, name="B")])
    with open_raster(path, hdu="B") as r:
        np.testing.assert_array_equal(r.read(Window(0, 0, 2, 2))[0], image[:2, :2] * 2)


def test_missing_hdu_errors(tmp_path, image):
    path = write(tmp_path / "e.fits", [fits.PrimaryHDU(image)])
    with pytest.raises(RasterError, match=r"HDU 'SCI' not found; the file has 1 HDUs"):
        FitsRaster(path, hdu="SCI")
    with pytest.raises(RasterError, match=r"HDU 3 not found"):
        FitsRaster(path, hdu=3)


def test_hdu_without_image_errors(tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.ones(3))])
    path = write(tmp_path / "t.fits", [fits.PrimaryHDU(), table])
    with pytest.raises(RasterError, match=r"HDU 1 \(BinTableHDU\) has no image data"):
        FitsRaster(path, hdu=1)
    with pytest.raises(RasterError, match=r"HDU 0 \(PrimaryHDU\) has no image data"):
        FitsRaster(path, hdu=0)
    with pytest.raises(RasterError, match="no HDU holds image data"):
        FitsRaster(path)


def test_naxis4_errors(tmp_path):
    path = write(tmp_path / "4d.fits", [fits.PrimaryHDU(np.zeros((2, 2, 3, 4), np.float32))])
    with pytest.raises(RasterError, match=r"NAXIS = 4; only 2-D images and 3-D cubes"):
        FitsRaster(path)


def test_window_outside_and_no_wcs_errors(tmp_path, image):
    path = write(tmp_path / "p.fits", [fits.PrimaryHDU(image)])
    with FitsRaster(path) as r:
        with pytest.raises(RasterError, match="falls outside the raster"):
            r.read(Window(30, 0, 10, 5))
        with pytest.raises(RasterError, match="has no celestial WCS"):
            r.pixel_to_world(1.0, 1.0)
        with pytest.raises(RasterError, match="has no celestial WCS"):
            r.pixel_size()
        with pytest.raises(RasterError, match="max_size 0 must be >= 1"):
            r.read_overview(0)


def test_not_a_fits_file_errors(tmp_path):
    path = tmp_path / "bad.fits"
    path.write_bytes(b"not a fits file at all" * 200)
    with pytest.raises(RasterError, match="cannot open as FITS"):
        FitsRaster(path)


# --- damaged files (reliability) ---------------------------------------------------------------


@pytest.mark.reliability
@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_truncated_fits_refused_at_open_with_sizes(tmp_path):
    from tests.faults import cut

    data = np.arange(80 * 100, dtype=np.float32).reshape(80, 100)
    path = cut(write(tmp_path / "cut.fits", [fits.PrimaryHDU(data)]), 2880 + 10_000)
    with pytest.raises(
        RasterError,
        match=r"cut.fits: truncated FITS file: HDU 0 needs 34880 bytes \(32000 bytes of data "
        r"from byte 2880\) but the file has 12880 \(22000 missing\)",
    ):
        open_raster(path)
    whole = write(tmp_path / "whole.fits", [fits.PrimaryHDU(data)])
    with open_raster(whole) as src:  # the untouched file: padded to 2880-byte blocks, fine
        assert src.read(Window(70, 0, 10, 3))[0, -1, -1] == data[-1, 2]
    packed = write(
        tmp_path / "c.fits", [fits.PrimaryHDU(), fits.CompImageHDU(data.astype(np.int16))]
    )
    cut(packed, packed.stat().st_size - 3000)
    with pytest.raises(RasterError, match=r"c.fits: truncated FITS file: HDU 1 needs \d+ bytes"):
        open_raster(packed)


@pytest.mark.reliability
def test_unreadable_fits_data_names_file_and_rows(tmp_path, monkeypatch, image):
    path = write(tmp_path / "d.fits", [fits.PrimaryHDU(image)])
    with open_raster(path) as src:

        class Broken:
            def __getitem__(self, key):
                raise OSError("decompression failed")

        monkeypatch.setattr(type(src._hdu), "section", property(lambda self: Broken()))
        with pytest.raises(RasterError, match=r"d.fits: cannot read HDU 0 rows 5-15, columns 7-27"):
            src.read(Window(5, 7, 10, 20))
