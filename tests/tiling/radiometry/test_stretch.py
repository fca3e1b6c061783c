"""Stretches: known values on known arrays, round trips, sampling through the raster interface."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from astropy.io import fits

from tiling.errors import ConfigError, RasterError
from tiling.radiometry.stretch import (
    AsinhStretch,
    LinearStretch,
    LogStretch,
    Stretch,
    fit_stretch,
    sample_pixels,
)
from tiling.sources.fits import FitsRaster

RAMP = np.arange(1001, dtype=np.float64)[None]  # one band, values 0..1000


def test_linear_percentiles_map_to_0_and_1():
    sample = np.stack([RAMP[0], 10 * RAMP[0] - 5])
    s = fit_stretch("linear", sample, p_low=2, p_high=98)
    assert isinstance(s, LinearStretch)
    np.testing.assert_allclose(s.low, [20.0, 195.0])
    np.testing.assert_allclose(s.high, [980.0, 9795.0])
    x = np.array([[[20.0, 500.0, 980.0, -1e9, 1e9]], [[195.0, 4995.0, 9795.0, 0, 0]]])
    out = s.apply(x)
    assert out.dtype == np.float32 and out.shape == (2, 1, 5)
    np.testing.assert_allclose(out[0, 0], [0.0, 480 / 960, 1.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(out[1, 0, :3], [0.0, 0.5, 1.0], atol=1e-6)


def test_asinh_known_values_and_monotone():
    s = AsinhStretch(low=(0.0,), high=(1.0,), a=0.1)
    u = np.linspace(0, 1, 101)[None, None]
    out = s.apply(u)[0, 0]
    assert out[0] == 0.0 and out[-1] == pytest.approx(1.0)
    assert out[10] == pytest.approx(math.asinh(1.0) / math.asinh(10.0), rel=1e-6)
    assert np.all(np.diff(out) > 0) and out[10] > 0.1  # lifts faint values


def test_log_known_values_and_monotone():
    s = LogStretch(low=(0.0,), high=(1.0,), a=1000.0)
    out = s.apply(np.linspace(0, 1, 101)[None, None])[0, 0]
    assert out[0] == 0.0 and out[-1] == pytest.approx(1.0)
    assert out[1] == pytest.approx(math.log(11.0) / math.log(1001.0), rel=1e-6)
    assert np.all(np.diff(out) > 0)


def test_fit_asinh_and_log_use_percentiles_and_a():
    s = fit_stretch("asinh", RAMP, p_low=0, p_high=100, a=0.5)
    assert (s.low, s.high, s.a) == ((0.0,), (1000.0,), 0.5)
    assert fit_stretch("log", RAMP).a == 1000.0


def test_zscale_of_linear_ramp_is_its_range():
    s = fit_stretch("zscale", RAMP)
    assert s.kind == "zscale"
    np.testing.assert_allclose([s.low[0], s.high[0]], [0.0, 1000.0], atol=1e-6)


def test_zscale_ignores_sparse_outliers():
    rng = np.random.default_rng(0)
    sky = rng.normal(100.0, 5.0, 20_000)
    sky[:50] = 60_000.0  # saturated stars
    s = fit_stretch("zscale", sky[None])
    assert 70 < s.low[0] < 100 < s.high[0] < 140


def test_apply_nan_fill_and_torch():
    s = LinearStretch(low=(0.0,), high=(10.0,))
    x = np.array([[[np.nan, 5.0]]])
    assert s.apply(x).tolist() == [[[0.0, 0.5]]]
    assert np.isnan(s.apply(x, fill=None)[0, 0, 0])
    t = s.apply(torch.tensor(x))
    assert t.dtype == torch.float32 and t.tolist() == [[[0.0, 0.5]]]
    a = AsinhStretch(low=(0.0,), high=(1.0,))
    np.testing.assert_allclose(
        a.apply(torch.linspace(0, 1, 11)[None, None]).numpy(),
        a.apply(np.linspace(0, 1, 11)[None, None]),
    )


def test_flat_band_maps_to_zero():
    s = LinearStretch(low=(3.0,), high=(3.0,))
    assert s.apply(np.full((1, 2, 2), 3.0)).max() == 0.0


@pytest.mark.parametrize("kind", ["linear", "asinh", "log", "zscale"])
def test_to_dict_roundtrip_through_json(kind):
    s = fit_stretch(kind, np.stack([RAMP[0], RAMP[0] ** 1.5]))
    again = Stretch.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s and type(again) is type(s)


def test_errors():
    with pytest.raises(ConfigError, match="stretch kind 'gamma' unknown"):
        fit_stretch("gamma", RAMP)
    with pytest.raises(ConfigError, match=r"unknown parameters \['beta'\]"):
        fit_stretch("asinh", RAMP, beta=2)
    with pytest.raises(ConfigError, match=r"unknown parameters \['a'\]"):
        fit_stretch("linear", RAMP, a=2)
    with pytest.raises(ConfigError, match="need 0 <= p_low < p_high <= 100"):
        fit_stretch("linear", RAMP, p_low=50, p_high=10)
    with pytest.raises(ConfigError, match="has a band without values"):
        fit_stretch("linear", np.full((2, 5), np.nan))
    with pytest.raises(ConfigError, match="fitted on 1 bands cannot apply"):
        LinearStretch(low=(0.0,), high=(1.0,)).apply(np.zeros((3, 2, 2)))
    with pytest.raises(ConfigError, match="one value per band"):
        LinearStretch(low=(0.0, 1.0), high=(1.0,))
    with pytest.raises(ConfigError, match="stretch kind 'nope' unknown"):
        Stretch.from_dict({"kind": "nope"})
    with pytest.raises(ConfigError, match="needs exactly the keys"):
        Stretch.from_dict({"kind": "asinh", "low": [0], "high": [1]})


@pytest.fixture
def fits_with_nan(tmp_path):
    data = np.random.default_rng(1).normal(50, 5, (2, 60, 80)).astype(np.float32)
    data[:, :30, :] = np.nan  # upper half nodata
    data[1, 40, 40] = np.nan  # one band only: the whole pixel is invalid
    path = tmp_path / "n.fits"
    fits.PrimaryHDU(data).writeto(path)
    return path, data


def test_sample_pixels_valid_only_and_deterministic(fits_with_nan):
    path, data = fits_with_nan
    with FitsRaster(path) as r:
        a = sample_pixels(r, n_windows=5, window_size=16, seed=3)
        b = sample_pixels(r, n_windows=5, window_size=16, seed=3)
        big = sample_pixels(r, n_windows=2, window_size=500, seed=0)  # shrunk to the raster
    assert a.shape[0] == 2 and 0 < a.shape[1] <= 5 * 256 and not np.isnan(a).any()
    np.testing.assert_array_equal(a, b)
    assert np.isin(a[0], data[0]).all()
    assert big.shape == (2, 2 * (30 * 80 - 1))


def test_sample_pixels_integer_nodata(tmp_path):
    data = np.full((10, 10), 7, np.int16)
    data[:, :5] = -1
    hdu = fits.PrimaryHDU(data)
    hdu.header["BLANK"] = -1
    hdu.writeto(tmp_path / "i.fits")
    with FitsRaster(tmp_path / "i.fits") as r:
        sample = sample_pixels(r, 3, 10)
    assert sample.shape == (1, 3 * 50) and (sample == 7).all()


def test_sample_pixels_errors(fits_with_nan, tmp_path):
    with FitsRaster(fits_with_nan[0]) as r, pytest.raises(RasterError, match="must be >= 1"):
        sample_pixels(r, n_windows=0)
    fits.PrimaryHDU(np.full((8, 8), np.nan, np.float32)).writeto(tmp_path / "all_nan.fits")
    with (
        FitsRaster(tmp_path / "all_nan.fits") as r,
        pytest.raises(RasterError, match="no valid pixel"),
    ):
        sample_pixels(r, n_windows=2, window_size=4)


@pytest.mark.parametrize("kind", ["linear", "asinh", "log", "zscale"])
def test_invert_gives_the_raw_value_of_a_stretched_value(kind):
    s = fit_stretch(kind, np.stack([RAMP[0], RAMP[0] ** 1.5]))
    raw = s.invert([0.0, 0.37])
    assert raw[0] == pytest.approx(s.low[0])
    assert s.apply(np.array(raw)[:, None, None])[1, 0, 0] == pytest.approx(0.37, abs=1e-6)
    assert s.invert([2.0, -1.0]) == pytest.approx((s.high[0], s.low[1]))  # clipped to [0, 1]
    with pytest.raises(ConfigError, match="cannot invert 1 values"):
        s.invert([0.5])


def test_band_stats_record_quantiles_and_zscale_limits(tmp_path):
    from tiling.store.stats import QUANTILE_LEVELS, band_stats

    rng = np.random.default_rng(0)
    tiles = rng.normal(200.0, 5.0, (4, 2, 32, 32)).astype(np.float32)
    tiles[:, :, :4, :4] = 40_000.0  # stars: ~2 % of the valid pixels
    tiles[0, :, 10:, :] = 0.0  # nodata
    np.save(tmp_path / "t.npy", tiles)
    stats = band_stats([tmp_path / "t.npy"], [0.0])
    assert set(stats["percentiles"]) == {"0.5", "2", "50", "98", "99.5"}  # unchanged keys
    assert stats["quantiles"]["levels"] == list(QUANTILE_LEVELS)
    values = np.asarray(stats["quantiles"]["values"])
    assert values.shape == (2, 100) and np.all(np.diff(values, axis=1) >= 0)
    assert values.min() > 100 and values[:, -1].max() == 40_000.0  # nodata excluded
    z = stats["zscale"]
    assert z["contrast"] == 0.25 and all(
        170 < lo < 200 < hi < 250 for lo, hi in zip(z["low"], z["high"], strict=True)
    )
    json.dumps(stats)  # plain types, fit for meta.json
