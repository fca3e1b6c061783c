"""Non-finite values are nodata everywhere; the model never sees one."""

import numpy as np
import pytest

from tiling.sources.nodata import fill_invalid, invalid_values, nodata_pixels

pytestmark = pytest.mark.reliability


def test_non_finite_values_are_invalid_in_float_rasters():
    a = np.array([[[1.0, np.inf, -np.inf, np.nan, 0.0]]], dtype=np.float32)
    assert invalid_values(a, None).tolist() == [[[False, True, True, True, False]]]
    assert invalid_values(a, 0.0).tolist() == [[[False, True, True, True, True]]]
    assert nodata_pixels(a, None).tolist() == [[False, True, True, True, False]]


def test_a_pixel_is_nodata_when_every_band_is_invalid():
    a = np.array([[[np.inf, np.inf, 5]], [[np.nan, 3, 0]]], dtype=np.float64)
    assert nodata_pixels(a, 0).tolist() == [[True, False, False]]
    ints = np.array([[[0, 7]], [[0, 0]]], dtype=np.uint16)
    assert nodata_pixels(ints, 0).tolist() == [[True, False]]
    assert not nodata_pixels(ints, None).any()


def test_fill_invalid_leaves_only_finite_values():
    a = np.array([[[1.0, np.inf, 3.0, np.nan]], [[2.0, 2.0, -np.inf, np.nan]]], np.float32)
    out = fill_invalid(a, None, [10.0, 20.0])
    # nodata pixel (col 3): fill in both bands; lone non-finite values: their band's fill
    assert out.tolist() == [[[1.0, 10.0, 3.0, 10.0]], [[2.0, 2.0, 20.0, 20.0]]]
    mean = fill_invalid(a, None, None)
    assert np.isfinite(mean).all() and mean[0, 0, 1] == 2.0  # mean of the valid 1 and 3
    big = np.array([[[1e300, 1.0]]])  # float64 beyond float32's range
    assert fill_invalid(big, None, [0.0]).tolist() == [[[0.0, 1.0]]]


def test_nodata_value_inside_a_valid_pixel_is_data():
    a = np.array([[[0, 0]], [[0, 9]]], dtype=np.uint8)
    assert fill_invalid(a, 0, [5.0, 6.0]).tolist() == [[[5.0, 0.0]], [[6.0, 9.0]]]
