import numpy as np
import pandas as pd
import pytest

from augment.sampler import ContentWeightedSampler, tile_weights
from tiling.errors import ConfigError


def tables():
    """100 tiles: 0-49 empty, 50-94 one 'common' box, 95-99 one 'rare' box (and a common one)."""
    tiles = pd.DataFrame({"tile_id": np.arange(100, 200), "split": "train"})
    rows = [(100 + i, "common", 5.0 + i % 10) for i in range(50, 100)]
    rows += [(100 + i, "rare", 20.0) for i in range(95, 100)]
    rows += [(999, "rare", 1.0)]  # a tile not in tiles_df: ignored
    boxes = pd.DataFrame(rows, columns=["tile_id", "label", "diameter"])
    return tiles, boxes


def test_weights_formula():
    tiles, boxes = tables()
    w = tile_weights(tiles, boxes)
    n, n_common, n_rare = 55, 50, 5
    assert w[0] == pytest.approx(0.1)
    assert w[60] == pytest.approx(n / (2 * n_common))
    assert w[97] == pytest.approx(n / (2 * n_rare))
    w = tile_weights(tiles, boxes, label_weight=None, size_weight=1.0, empty_weight=0.0)
    median = boxes[boxes.tile_id < 999]["diameter"].median()
    assert w[0] == 0 and w[97] == pytest.approx(20.0 / median)
    assert w[51] == pytest.approx(6.0 / median)
    w = tile_weights(tiles, boxes, label_weight={"common": 1.0, "rare": 3.0}, size_weight=-1.0)
    assert w[97] == pytest.approx(3.0 * median / 20.0)


def test_sampler_oversamples_rare_and_undersamples_empty():
    tiles, boxes = tables()
    sampler = ContentWeightedSampler(tiles, boxes, num_samples=5000, seed=0)
    drawn = np.array(list(sampler))
    assert len(drawn) == len(sampler) == 5000
    rare = np.isin(drawn, np.arange(95, 100)).mean()
    empty = (drawn < 50).mean()
    # weights: empty 50 x 0.1 = 5, common 45 x 0.55 = 24.75, rare 5 x 5.5 = 27.5
    assert abs(rare - 27.5 / 57.25) < 0.03  # 5 % of the tiles, 48 % of the draws
    assert abs(empty - 5 / 57.25) < 0.02  # 50 % of the tiles, 9 % of the draws
    assert np.isclose(float(sampler.weights.sum()), 1.0)
    assert sampler.tile_ids[0] == 100


def test_sampler_determinism_and_epochs():
    tiles, boxes = tables()
    a = list(ContentWeightedSampler(tiles, boxes, seed=3))
    b = list(ContentWeightedSampler(tiles, boxes, seed=3))
    c = list(ContentWeightedSampler(tiles, boxes, seed=4))
    assert a == b and a != c
    sampler = ContentWeightedSampler(tiles, boxes, seed=3)
    sampler.set_epoch(1)
    assert list(sampler) != a and list(sampler) == list(sampler)
    unique = list(ContentWeightedSampler(tiles, boxes, replacement=False, num_samples=100))
    assert sorted(unique) == list(range(100))


def test_sampler_errors():
    tiles, boxes = tables()
    with pytest.raises(ConfigError, match=r"boxes_df lacks column\(s\) \['label'\]"):
        ContentWeightedSampler(tiles, boxes.drop(columns="label"))
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \['diameter'\]"):
        tile_weights(tiles, boxes.drop(columns="diameter"), size_weight=1.0)
    with pytest.raises(ConfigError, match=r"tiles_df lacks column\(s\) \['tile_id'\]"):
        tile_weights(tiles.drop(columns="tile_id"), boxes)
    with pytest.raises(ConfigError, match="empty_weight=-1 must be >= 0"):
        ContentWeightedSampler(tiles, boxes, empty_weight=-1)
    with pytest.raises(ConfigError, match=r"no weight for label\(s\) \['rare'\]"):
        ContentWeightedSampler(tiles, boxes, label_weight={"common": 1.0})
    with pytest.raises(ConfigError, match="label_weight='inverse' is not allowed"):
        ContentWeightedSampler(tiles, boxes, label_weight="inverse")
    with pytest.raises(ConfigError, match="num_samples=0 must be > 0"):
        ContentWeightedSampler(tiles, boxes, num_samples=0)
    with pytest.raises(ConfigError, match="num_samples=101"):
        ContentWeightedSampler(tiles, boxes, num_samples=101, replacement=False)
    with pytest.raises(ConfigError, match="all 50 tile weights are zero"):
        ContentWeightedSampler(tiles.iloc[:50], boxes, empty_weight=0.0)
