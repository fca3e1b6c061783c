import numpy as np
import pytest
from astropy.visualization import ZScaleInterval

from tiling.radiometry.zscale import sort_kind, zscale_limits

RNG = np.random.default_rng(1)
CASES = {
    "normal": RNG.normal(100.0, 10.0, 15_000),
    "sky_and_stars": np.concatenate(
        [RNG.normal(1000.0, 20.0, 14_000), RNG.pareto(1.5, 1000) * 200 + 1000]
    ),
    "both_tails": np.concatenate(
        [RNG.normal(0.0, 1.0, 14_000), RNG.normal(0.0, 1.0, 1000) * 200.0]
    ),
    "uint8_noise": RNG.integers(0, 256, 15_000).astype(np.float64),
    "flat": np.full(15_000, 7.0),
    "gamma": RNG.gamma(2.0, 50.0, 15_000),
    "bimodal": np.concatenate([RNG.normal(0.0, 1.0, 7000), RNG.normal(50.0, 1.0, 8000)]),
    "tiny": RNG.normal(0.0, 1.0, 30),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_astropy_when_every_value_is_sampled(name):
    values = CASES[name]
    ours = zscale_limits(values)
    theirs = ZScaleInterval(n_samples=values.size).get_limits(values)
    span = max(float(np.ptp(values)), 1.0)
    np.testing.assert_allclose(ours, theirs, atol=2e-4 * span)


def test_limits_sit_inside_the_range_when_tails_are_rejected():
    values = CASES["both_tails"]
    low, high = zscale_limits(values)
    assert values.min() < low < -1.0 < 1.0 < high < values.max()
    wider = zscale_limits(values, contrast=0.1)
    assert wider[0] < low and wider[1] > high  # lower contrast: wider limits


def test_sampling_nan_presorted_and_order():
    values = RNG.normal(50.0, 3.0, 200_000)
    values[::20] = RNG.uniform(-1000.0, 1000.0, 10_000)  # wide tails: limits inside the range
    full = zscale_limits(values, n_samples=values.size)
    sampled = zscale_limits(values)  # 20,000 evenly strided ranks
    assert values.min() < full[0] < 40.0 < 60.0 < full[1] < values.max()
    np.testing.assert_allclose(sampled, full, rtol=2e-3)
    shuffled = values.copy()
    shuffled[::7] = np.nan
    shuffled[1::11] = np.inf
    finite = shuffled[np.isfinite(shuffled)]
    assert zscale_limits(shuffled) == zscale_limits(np.sort(finite), presorted=True)
    assert zscale_limits(finite[:-1][::-1].reshape(2, -1)) == zscale_limits(
        finite[:-1]
    )  # any shape


def test_too_many_rejections_fall_back_to_the_range():
    values = np.concatenate([np.zeros(500), np.full(500, 100.0)])  # a step: no straight line
    assert zscale_limits(values, min_pixels=600, max_reject=0.9) == (0.0, 100.0)


def test_empty_and_bad_parameters():
    assert all(np.isnan(zscale_limits(np.array([np.nan, np.inf]))))
    with pytest.raises(ValueError, match="contrast=0"):
        zscale_limits(CASES["normal"], contrast=0)
    with pytest.raises(ValueError, match="n_samples=0"):
        zscale_limits(CASES["normal"], n_samples=0)


def test_sort_kind_radix_only_for_small_integers():
    assert [sort_kind(np.dtype(t)) for t in ("uint8", "int16", "bool")] == ["stable"] * 3
    assert [sort_kind(np.dtype(t)) for t in ("uint32", "float32", "float64")] == ["quicksort"] * 3
