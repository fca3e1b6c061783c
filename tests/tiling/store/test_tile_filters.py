import logging

import numpy as np
import pandas as pd
import pytest

from tiling.errors import ConfigError
from tiling.store.tile_filters import (
    TileFilter,
    apply_tile_filters,
    keep_empty,
    max_nodata_fraction,
    min_objects,
    tile_uniform,
    tile_where,
)


def make_tiles(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    tiles = pd.DataFrame(
        {
            "tile_id": np.arange(n),
            "raster": rng.choice(["a", "b"], n),
            "row": rng.integers(0, 10_000, n),
            "col": rng.integers(0, 10_000, n),
            "n_boxes": rng.choice([0, 0, 0, 1, 2, 5], n),
            "nodata_fraction": rng.uniform(0, 1, n),
        }
    )
    boxes = pd.DataFrame({"tile_id": np.repeat(tiles["tile_id"], tiles["n_boxes"])})
    return tiles, boxes


def test_reprs_and_masks():
    tiles, boxes = make_tiles()
    f = max_nodata_fraction(0.25)
    assert repr(f) == "max_nodata_fraction(0.25)" and f.needs_pixels
    assert np.array_equal(f(tiles, boxes), tiles["nodata_fraction"] <= 0.25)
    g = min_objects(2)
    assert repr(g) == "min_objects(2)" and not g.needs_pixels
    assert np.array_equal(g(tiles, boxes), tiles["n_boxes"] >= 2)
    assert repr(keep_empty(0.1)) == "keep_empty(0.1)"
    w = tile_where(lambda t: t["row"] < 5000, "rows_below(5000)")
    assert repr(w) == "rows_below(5000)" and w(tiles, boxes).sum() == (tiles["row"] < 5000).sum()


def test_keep_empty_fraction_seed_and_independence():
    tiles, boxes = make_tiles()
    keep = keep_empty(0.3)(tiles, boxes, seed=7)
    empty = tiles["n_boxes"].to_numpy() == 0
    assert keep[~empty].all()
    assert abs(keep[empty].mean() - 0.3) < 0.05
    assert np.array_equal(keep, keep_empty(0.3)(tiles, boxes, seed=7))
    assert not np.array_equal(keep, keep_empty(0.3)(tiles, boxes, seed=8))
    # a tile's fate depends on its own row only: a subset, shuffled, gets the same answers
    sub = tiles.sample(frac=0.3, random_state=1)
    assert np.array_equal(keep_empty(0.3)(sub, boxes, seed=7), keep[sub.index.to_numpy()])
    u = tile_uniform(tiles, 7)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.03
    assert keep_empty(0.0)(tiles, boxes).sum() == (~empty).sum()
    assert keep_empty(1.0)(tiles, boxes).all()


def test_apply_in_order_with_report(caplog):
    tiles, boxes = make_tiles()
    caplog.set_level(logging.INFO)
    filters = [min_objects(1), max_nodata_fraction(0.5)]
    keep, report = apply_tile_filters(tiles, boxes, filters, seed=0)
    expected = (tiles["n_boxes"] >= 1) & (tiles["nodata_fraction"] <= 0.5)
    assert np.array_equal(keep, expected)
    assert report["filter"].tolist() == ["min_objects(1)", "max_nodata_fraction(0.5)"]
    assert report["before"].iloc[0] == len(tiles)
    assert report["removed"].iloc[0] == (tiles["n_boxes"] == 0).sum()
    assert report["before"].iloc[1] == report["before"].iloc[0] - report["removed"].iloc[0]
    assert "tile filter min_objects(1) removed" in caplog.text
    # the filters commute: reversing them keeps the same tiles
    assert np.array_equal(apply_tile_filters(tiles, boxes, filters[::-1])[0], keep)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: max_nodata_fraction(1.5), r"max_nodata_fraction\(1.5\): the fraction must be"),
        (lambda: keep_empty(-0.1), r"keep_empty\(-0.1\): the fraction must be"),
        (lambda: min_objects(-1), r"min_objects\(-1\): the number of objects must be >= 0"),
    ],
)
def test_constructor_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_bad_masks_and_objects():
    tiles, boxes = make_tiles(10)
    short = TileFilter("short", lambda t, b, s: np.ones(3, bool))
    with pytest.raises(ConfigError, match=r"tile filter short returned a mask of shape \(3,\)"):
        apply_tile_filters(tiles, boxes, [short])
    with pytest.raises(ConfigError, match="is not a TileFilter"):
        apply_tile_filters(tiles, boxes, [lambda t: t])
