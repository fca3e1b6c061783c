import logging

import numpy as np
import pytest

from model.config import ModelConfig
from model.network.anchors import best_anchor_iou
from model.network.data_settings import resolve_config
from tiling.errors import ConfigError
from tiling.radiometry.stretch import Stretch


def test_resolve_config_fills_anchors_and_band_stats(caplog):
    stats = {"mean": [100.0, 50.0, 10.0, 7.0], "std": [10.0, 0.0, 2.0, 1.0], "percentiles": {}}
    with caplog.at_level(logging.INFO, logger="model.network.data_settings"):
        config = resolve_config(ModelConfig(stride4=True), [5.0, 150.0], stats)
    assert "auto anchor sizes resolved" in caplog.text
    assert config.in_channels == 4
    assert config.image_mean == [100.0, 50.0, 10.0, 7.0]
    assert config.image_std == [10.0, 1.0, 2.0, 1.0]  # constant band: std 1
    assert len(config.anchor_sizes) == 6
    assert best_anchor_iou(np.geomspace(5, 150, 200), config.anchor_sizes).min() >= 0.5


def test_resolve_config_without_data_and_with_explicit_anchors():
    assert resolve_config(ModelConfig()).anchor_sizes == (
        (8.0,),
        (16.0,),
        (32.0,),
        (64.0,),
        (128.0,),
    )
    explicit = ModelConfig(anchor_sizes=((8,), (16,), (32,), (64,), (128,)), image_mean=[1, 2, 3])
    resolved = resolve_config(explicit, [10.0, 60.0], {"mean": [0, 0, 0], "std": [1, 1, 1]})
    assert resolved.image_mean == [1, 2, 3]  # explicit values win
    with pytest.raises(ConfigError, match=r"cannot cover objects of 1 px"):
        resolve_config(explicit, [1.0, 60.0])
    with pytest.raises(ConfigError, match=r"image_mean=\[1, 2, 3\].*4 numbers"):
        resolve_config(explicit, None, {"mean": [0, 0, 0, 0], "std": [1, 1, 1, 1]})


def _stretch_stats():
    """Hand-made band stats of 2 bands: sky ~200 ADU with stars to 40,000, and a 0-1 band."""
    levels = [i + 0.5 for i in range(100)]
    sky = np.r_[np.linspace(190.0, 215.0, 98), 5e3, 4e4]  # 2 % of the bins are stars
    return {
        "mean": [400.0, 0.5],
        "std": [3000.0, 0.3],
        "percentiles": {"0.5": [190.0, 0.0], "2": [191.0, 0.02], "99.5": [4e4, 1.0]},
        "quantiles": {"levels": levels, "values": [sky.tolist(), np.linspace(0, 1, 100).tolist()]},
        "zscale": {"low": [185.0, 0.0], "high": [220.0, 1.0], "contrast": 0.25},
    }


def test_resolve_config_fills_the_input_stretch_from_band_stats():
    stats = _stretch_stats()
    config = resolve_config(ModelConfig(input_stretch="asinh", stretch_a=0.01), None, stats)
    assert config.in_channels == 2
    assert config.stretch_params == {
        "kind": "asinh",
        "low": [190.0, 0.0],
        "high": [4e4, 1.0],
        "a": 0.01,
    }
    stretched = Stretch.from_dict(config.stretch_params).apply(
        np.asarray(stats["quantiles"]["values"])[:, :, None]
    )[:, :, 0]
    np.testing.assert_allclose(config.image_mean, stretched.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(config.image_std, stretched.std(axis=1), rtol=1e-6)
    assert 0 < config.image_mean[0] < 0.5 and config.image_std[0] < 0.5  # [0, 1] units, not ADU
    # default a, zscale limits, linear
    assert (
        resolve_config(ModelConfig(input_stretch="log"), None, stats).stretch_params["a"] == 1000.0
    )
    zscale = resolve_config(ModelConfig(input_stretch="zscale"), None, stats)
    assert zscale.stretch_params == {"kind": "zscale", "low": [185.0, 0.0], "high": [220.0, 1.0]}
    linear = resolve_config(ModelConfig(input_stretch="linear", stretch_a=5.0), None, stats)
    assert "a" not in linear.stretch_params  # stretch_a is for asinh/log only
    # "none" keeps raw-unit statistics and no params
    plain = resolve_config(ModelConfig(), None, stats)
    assert (plain.stretch_params, plain.image_mean, plain.image_std) == (
        None,
        [400.0, 0.5],
        [3000.0, 0.3],
    )


def test_resolve_config_stretch_fallbacks_explicit_values_and_errors(caplog):
    stats = _stretch_stats()
    old = {k: stats[k] for k in ("mean", "std", "percentiles")}  # a store without quantiles
    with caplog.at_level(logging.INFO, logger="model.network.data_settings"):
        config = resolve_config(ModelConfig(input_stretch="linear"), None, old)
    assert (config.image_mean, config.image_std) == ([0.5, 0.5], [0.25, 0.25])
    assert "no quantiles" in caplog.text
    explicit = {"kind": "asinh", "low": [0.0, 0.0], "high": [1e3, 1.0], "a": 0.1}
    kept = resolve_config(
        ModelConfig(
            input_stretch="asinh", in_channels=2, stretch_params=explicit, image_std=[1, 1]
        ),
        None,
        stats,
    )
    assert kept.stretch_params == explicit and kept.image_std == [1, 1]  # explicit values win
    quantiles = np.asarray(stats["quantiles"]["values"])[:, :, None]
    means = Stretch.from_dict(explicit).apply(quantiles)[:, :, 0].mean(axis=1)
    np.testing.assert_allclose(kept.image_mean, means, rtol=1e-6)  # of the explicit stretch
    with pytest.raises(ConfigError, match=r"input_stretch='zscale' needs band_stats\['zscale'\]"):
        resolve_config(ModelConfig(input_stretch="zscale"), None, old)
    with pytest.raises(ConfigError, match=r"needs band_stats\['99.5'\]"):
        resolve_config(
            ModelConfig(input_stretch="asinh"), None, {**old, "percentiles": {"0.5": [0, 0]}}
        )


def test_resolve_config_resolves_the_step_budget_after_the_pyramid():
    config = ModelConfig(tile_size=128, batch_size=8, max_steps="auto", stride4=True)
    assert resolve_config(config, [10.0, 20.0]).max_steps == 960
    assert resolve_config(config.replace(stride4=False), [10.0, 20.0]).max_steps == 1920
    assert resolve_config(config.replace(max_steps=300), [10.0, 20.0]).max_steps == 300  # kept
    with pytest.raises(ConfigError, match=r"stride4='auto' depends on the training objects"):
        resolve_config(config.replace(stride4="auto"), [10.0, 20.0])
    with pytest.raises(ConfigError, match=r"max_steps='now' is invalid"):
        ModelConfig(max_steps="now")
