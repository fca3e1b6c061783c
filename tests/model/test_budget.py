import pytest

from model.budget import BASE_STEPS, MAX_FACTOR, auto_max_steps


def test_auto_steps_keep_the_default_budgets_pixels_per_trial():
    assert auto_max_steps(256, 8, False) == BASE_STEPS == 480  # the default run: unchanged
    assert auto_max_steps(128, 8, False) == 1920  # a quarter of the pixels per step
    assert auto_max_steps(512, 8, False) == 120
    assert auto_max_steps(256, 16, False) == 240  # twice the tiles per step
    assert auto_max_steps(256, 4, False) == 960


def test_auto_steps_halve_with_the_stride4_level_and_stay_within_bounds():
    assert auto_max_steps(128, 8, True) == 960
    assert auto_max_steps(256, 8, True) == 240
    assert auto_max_steps(32, 8, False) == MAX_FACTOR * BASE_STEPS  # capped: fixed costs dominate
    assert auto_max_steps(4096, 8, True) == 10  # at least 10 steps
    assert auto_max_steps(200, 8, False) % 10 == 0  # 786.4 -> 790
    assert auto_max_steps(200, 8, False) == 790
    with pytest.raises(ValueError, match="batch_size=0"):
        auto_max_steps(256, 0, False)
