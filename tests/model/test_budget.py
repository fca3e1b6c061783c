import pytest

from model.budget import BASE_STEPS, MAX_FACTOR, auto_max_steps


def test_auto_steps_give_small_tiles_the_default_budgets_pixels_per_trial():
    assert auto_max_steps(256, 8, False) == BASE_STEPS == 480  # the default run: unchanged
    assert auto_max_steps(128, 8, False) == 1920  # a quarter of the pixels per step
    assert auto_max_steps(256, 4, False) == 960  # half the tiles per step
    assert auto_max_steps(200, 8, False) == 790  # 786.4, rounded to tens
    assert auto_max_steps(128, 8, True) == 960  # P2 costs two steps


def test_auto_steps_never_fall_below_the_default_nor_above_the_cap():
    assert auto_max_steps(256, 8, True) == BASE_STEPS  # not 240: fewer steps lost 0.33 AP
    assert auto_max_steps(512, 8, False) == BASE_STEPS
    assert auto_max_steps(256, 16, False) == BASE_STEPS
    assert auto_max_steps(32, 8, False) == MAX_FACTOR * BASE_STEPS  # capped: fixed costs dominate
    with pytest.raises(ValueError, match="batch_size=0"):
        auto_max_steps(256, 0, False)
