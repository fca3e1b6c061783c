import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.config import ModelConfig, pyramid_strides
from model.network.anchors import (
    AUTO_STRIDE4_BELOW,
    SMALL_OBJECT_PX,
    SMALL_SHARE,
    auto_anchor_sizes,
    auto_stride4,
    best_anchor_iou,
    check_anchors_cover,
)
from tiling.errors import ConfigError


def _flat(sizes):
    return [a for level in sizes for a in level]


@pytest.mark.parametrize("stride4", [False, True])
def test_auto_anchors_cover_5_to_150_px(stride4):
    n_levels = 6 if stride4 else 5
    sizes = auto_anchor_sizes([5.0, 40.0, 150.0], n_levels=n_levels, max_size=384)
    assert len(sizes) == n_levels
    assert all(len(level) == 3 for level in sizes)
    flat = _flat(sizes)
    assert all(b > a for a, b in itertools.pairwise(flat))
    sweep = np.geomspace(5, 150, 2000)
    assert best_anchor_iou(sweep, sizes).min() >= 0.5
    ModelConfig(anchor_sizes=sizes, stride4=stride4)  # valid for a 256 px tile


def test_small_objects_get_small_anchor_on_the_finest_level():
    sizes = auto_anchor_sizes([5.0, 100.0], n_levels=6)
    assert 4.0 <= sizes[0][0] <= 6.0  # stride-4 level (P2)
    assert sizes[0][0] / pyramid_strides(True)[0] >= 1.0
    assert best_anchor_iou([5.0], sizes)[0] >= 0.7


def test_anchor_to_stride_ratio_stays_in_documented_bounds():
    for dmin in (3.0, 5.0, 30.0, 200.0):
        sizes = auto_anchor_sizes([dmin, dmin * 1.5], n_levels=5, max_size=None)
        ratios = np.array(sizes) / np.array(pyramid_strides(False))[:, None]
        assert ratios.min() >= 0.5 - 1e-6
        assert ratios.max() <= 8 * 2 ** (2 / 3) * 1.001  # sizes are rounded to 0.01 px


@settings(max_examples=60, deadline=None)
@given(
    dmin=st.floats(3.0, 60.0),
    span=st.floats(1.0, 20.0),
    stride4=st.booleans(),
    scales=st.integers(1, 4),
)
def test_auto_anchors_cover_every_square_object_in_range(dmin, span, stride4, scales):
    dmax = min(dmin * span, 1000.0)  # the largest anchor (768 px) matches up to 768 * sqrt(2) px
    n_levels = 6 if stride4 else 5
    sizes = auto_anchor_sizes(
        [dmin, dmax], n_levels=n_levels, scales_per_level=scales, max_size=1.5 * 512
    )
    assert all(b > a for a, b in itertools.pairwise(_flat(sizes)))
    assert _flat(sizes)[-1] <= 1.5 * 512 + 1e-6
    assert best_anchor_iou(np.geomspace(dmin, dmax, 300), sizes).min() >= 0.5 - 1e-3


def test_max_size_compresses_the_series():
    sizes = auto_anchor_sizes([60.0, 300.0], n_levels=5, max_size=384)
    assert _flat(sizes)[-1] == pytest.approx(384.0)
    assert best_anchor_iou(np.geomspace(60, 300, 500), sizes).min() >= 0.5


@pytest.mark.parametrize(
    ("diameters", "kwargs", "match"),
    [
        ([], {}, r"empty catalogue"),
        ([5.0, -1.0], {}, r"finite and > 0 px; 1 are not \(first: -1.0\)"),
        ([5.0, np.nan], {}, r"finite and > 0"),
        ([1.0, 20.0], {}, r"Objects of 1 px are smaller.*>= 2.83 px.*stride4=True"),
        ([2.0, 600.0], {"n_levels": 6, "max_size": 384}, r"catalogue spans 2-600 px"),
        ([100.0, 120.0], {"max_size": 50}, r"Objects of 100 px and more.*max_size=50"),
        ([5.0], {"n_levels": 6, "strides": (8, 16)}, r"n_levels=6 entries"),
    ],
)
def test_auto_anchor_errors(diameters, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        auto_anchor_sizes(diameters, **kwargs)


def test_best_anchor_iou_with_aspect_ratios():
    assert best_anchor_iou([8.0], ((8.0,),))[0] == pytest.approx(1.0)
    assert best_anchor_iou([4.0], ((8.0,),))[0] == pytest.approx(0.25)
    # an 8 px anchor of ratio 4 is 4 x 16: IoU with an 8 px square = 32 / (64 + 64 - 32)
    assert best_anchor_iou([8.0], ((8.0,),), (4.0,))[0] == pytest.approx(32 / 96)


def test_check_anchors_cover():
    config = ModelConfig(anchor_sizes=((8,), (16,), (32,), (64,), (128,)))
    assert check_anchors_cover(config, [8.0, 20.0, 100.0]) >= 0.5
    with pytest.raises(ConfigError, match=r"cannot cover objects of 3 px.*spans 3-100 px"):
        check_anchors_cover(config, [3.0, 20.0, 100.0])
    with pytest.raises(ConfigError, match=r"cannot cover objects of 400 px"):
        check_anchors_cover(config, [10.0, 400.0])
    assert check_anchors_cover(ModelConfig(), [1.0, 1000.0]) == 1.0


def test_auto_stride4_for_few_labels_with_many_small_objects():
    small, large = SMALL_OBJECT_PX - 1, SMALL_OBJECT_PX + 1
    n_small = int(np.ceil(SMALL_SHARE * 100))
    assert auto_stride4([small] * n_small + [large] * (100 - n_small))  # a fifth under 12 px
    assert not auto_stride4([small] * (n_small - 1) + [large] * (101 - n_small))
    assert not auto_stride4([SMALL_OBJECT_PX] * 100)  # 12 px itself is not small
    assert not auto_stride4([small] * AUTO_STRIDE4_BELOW)  # many labels: off
    assert auto_stride4([small] * (AUTO_STRIDE4_BELOW - 1))
    assert not auto_stride4([])


def test_unresolved_stride4_auto_is_refused_where_the_levels_are_needed():
    config = ModelConfig(tile_size=128, stride4="auto")
    with pytest.raises(ConfigError, match=r"stride4='auto' depends on the training objects"):
        _ = config.n_levels
    assert config.replace(stride4=True).n_levels == 6
    with pytest.raises(ConfigError, match=r"ModelConfig.stride4='auto' is invalid"):
        ModelConfig(tile_size=128, stride4="auto", anchor_sizes=((8.0,),) * 5)
    with pytest.raises(ConfigError, match=r"stride4='yes' is invalid"):
        ModelConfig(stride4="yes")
