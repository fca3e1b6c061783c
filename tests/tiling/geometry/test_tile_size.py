import numpy as np
import pandas as pd
import pytest

from tiling.errors import ConfigError
from tiling.geometry.tile_size import (
    FEW_OBJECTS,
    LARGE_TILE,
    SMALL_TILE,
    auto_tile_size,
    resolve_tile_size,
)


def test_few_small_objects_get_small_tiles():
    assert SMALL_TILE == 128 and LARGE_TILE == 256
    assert auto_tile_size(np.full(273, 16.0)) == SMALL_TILE  # the crater image
    crowns = np.r_[np.full(90, 40.0), np.full(10, 100.0)]  # nine in ten at most 64 px
    assert auto_tile_size(crowns) == SMALL_TILE


def test_many_or_large_objects_keep_large_tiles():
    assert auto_tile_size(np.full(FEW_OBJECTS, 10.0)) == LARGE_TILE
    assert auto_tile_size(np.full(FEW_OBJECTS - 1, 10.0)) == SMALL_TILE
    large = np.r_[np.full(80, 20.0), np.full(20, 65.0)]  # the 0.9 quantile is 65 px
    assert auto_tile_size(large) == LARGE_TILE
    assert auto_tile_size(np.r_[np.full(80, 20.0), np.full(20, 64.0)]) == SMALL_TILE
    assert auto_tile_size(np.zeros(0)) == LARGE_TILE  # nothing to go by
    assert auto_tile_size(np.r_[np.full(50, 12.0), np.full(5, np.nan)]) == SMALL_TILE


def test_a_raster_too_small_for_a_large_tile_gets_small_tiles():
    many = np.full(FEW_OBJECTS, 10.0)
    assert auto_tile_size(many, min_side=255) == SMALL_TILE
    assert auto_tile_size(many, min_side=256) == LARGE_TILE
    assert auto_tile_size(np.full(10, 100.0), min_side=200) == SMALL_TILE


def test_resolve_counts_all_catalogues_together():
    half = pd.DataFrame({"x": 0.0, "y": 0.0, "diameter": np.full(FEW_OBJECTS // 2, 10.0)})
    assert resolve_tile_size("auto", [half]) == SMALL_TILE
    assert resolve_tile_size("auto", [half, half]) == LARGE_TILE
    assert resolve_tile_size("auto", {"a": half}.values()) == SMALL_TILE
    assert resolve_tile_size(192, [half]) == 192
    assert resolve_tile_size("auto", []) == LARGE_TILE
    assert resolve_tile_size("auto", [half, half], min_side=200) == SMALL_TILE
    assert resolve_tile_size(192, [half], min_side=200) == 192  # a number is kept as given


@pytest.mark.parametrize(
    ("value", "catalogs", "match"),
    [
        ("big", [], r"tile_size='big': give a number of pixels or 'auto'"),
        (0, [], r"tile_size=0 must be a positive whole number of pixels or 'auto'"),
        (12.5, [], r"tile_size=12.5 must be a positive whole number"),
        ("auto", [pd.DataFrame({"x": [1.0]})], r"catalogue\(s\) \[0\] lack it"),
    ],
)
def test_bad_values_say_what_to_give(value, catalogs, match):
    with pytest.raises(ConfigError, match=match):
        resolve_tile_size(value, catalogs)
