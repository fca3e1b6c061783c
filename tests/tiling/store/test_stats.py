import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tiling.store.stats import PERCENTILES, QUANTILE_LEVELS, band_stats, sorted_percentiles


@settings(max_examples=60, deadline=None)
@given(
    values=arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 300)),
        elements=st.floats(-1e6, 1e6),
    ),
    levels=st.lists(st.floats(0, 100), min_size=1, max_size=8),
)
def test_sorted_percentiles_equal_numpy(values, levels):
    got = sorted_percentiles(np.sort(values, axis=1), levels)
    np.testing.assert_allclose(got, np.percentile(values, levels, axis=1), rtol=1e-12, atol=1e-6)


def test_sorted_percentiles_store_levels():
    values = np.random.default_rng(0).integers(0, 256, (3, 10_001)).astype(np.float64)
    levels = [float(q) for q in PERCENTILES] + list(QUANTILE_LEVELS)
    got = sorted_percentiles(np.sort(values, axis=1), levels)
    assert got.shape == (len(levels), 3)
    np.testing.assert_array_equal(got, np.percentile(values, levels, axis=1))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_band_stats_native_dtypes_match_float64(tmp_path, dtype):
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else np.finfo(dtype)
    rng = np.random.default_rng(3)
    lo, hi = max(int(info.min), -30000), min(int(info.max), 60000)
    tiles = rng.integers(lo, hi, (5, 2, 16, 16), endpoint=True)
    tiles[0, :, 0, :2] = [[hi] * 2, [lo] * 2]  # the type's extremes: no overflow
    tiles = tiles.astype(dtype)
    tiles[1, :, 3, 3] = 7  # nodata pixel (every band)
    np.save(tmp_path / "t.npy", tiles)
    stats = band_stats([tmp_path / "t.npy"], [7])
    valid = tiles.transpose(1, 0, 2, 3).reshape(2, -1).astype(np.float64)
    valid = valid[:, ~(valid == 7).all(axis=0)]
    assert stats["sample_pixels"] == valid.shape[1] == 5 * 256 - 1
    np.testing.assert_allclose(stats["mean"], valid.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats["std"], valid.std(axis=1), rtol=1e-12)
    levels = [float(q) for q in PERCENTILES]
    expected = np.percentile(valid, levels, axis=1)
    got = np.array([stats["percentiles"][q] for q in PERCENTILES])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(
        stats["quantiles"]["values"], np.percentile(valid, QUANTILE_LEVELS, axis=1).T, rtol=1e-12
    )
