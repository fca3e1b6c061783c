import math
from pathlib import Path

import numpy as np
import pytest
import torch

from model.config import ModelConfig, default_anchor_sizes, load_yaml, pyramid_strides
from model.run_config import RUN_FIELDS
from tiling.errors import ConfigError
from tiling.radiometry.stretch import Stretch

FIVE = ((8,), (16,), (32,), (64,), (128,))
ASINH = {"kind": "asinh", "low": [180.0, 0.0, 5.0], "high": [4e4, 1.0, 5.0], "a": 0.1}


def test_defaults_are_valid():
    config = ModelConfig()
    assert config.backbone == "resnet18"
    assert config.num_classes == 1
    assert config.n_levels == 5
    assert config.anchor_sizes == "auto"
    assert ModelConfig(stride4=True).n_levels == 6
    assert default_anchor_sizes(True)[0] == (4.0,)
    assert pyramid_strides(False) == (8, 16, 32, 64, 128)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"backbone": "vgg16"}, r"backbone='vgg16'.*resnet18"),
        ({"weights": 3}, r"weights=3"),
        ({"in_channels": 0}, r"in_channels=0.*>= 1"),
        ({"tile_size": 16}, r"tile_size=16"),
        ({"norm": "layer"}, r"norm='layer'.*batch"),
        ({"scales_per_level": 0}, r"scales_per_level=0"),
        ({"classes": []}, r"classes=\[\]"),
        ({"classes": ["a", "a"]}, r"distinct"),
        ({"image_mean": [0.0, 1.0]}, r"image_mean=\[0.0, 1.0\].*3 numbers"),
        ({"image_std": [1.0, 0.0, 1.0]}, r"image_std=.*positive"),
        ({"aspect_ratios": (0.0,)}, r"aspect_ratios"),
        ({"anchor_sizes": "big"}, r"anchor_sizes='big'.*5 levels"),
        ({"anchor_sizes": FIVE[:4]}, r"anchor_sizes=.*5 levels \(P3-P7"),
        ({"anchor_sizes": FIVE, "stride4": True}, r"6 levels \(P2-P7"),
        ({"anchor_sizes": ((8,), (16,), (-32,), (64,), (128,))}, r"positive pixel sizes"),
        ({"anchor_sizes": ((8,), (16,), (), (64,), (128,))}, r"non-empty tuples"),
        ({"anchor_sizes": ((8,), (32,), (16,), (64,), (128,))}, r"strictly increasing"),
        ({"anchor_sizes": ((8, 9), (16,), (32,), (64,), (128,))}, r"same number of sizes"),
        ({"anchor_sizes": FIVE, "tile_size": 64}, r"largest anchor <= 1.5 x tile_size = 96"),
        ({"focal_alpha": 1.5}, r"focal_alpha=1.5.*\[0.0, 1.0\]"),
        ({"focal_gamma": -1}, r"focal_gamma=-1"),
        ({"score_thresh": 2.0}, r"score_thresh"),
        ({"nms_thresh": 0.0}, r"nms_thresh=0.0.*\(0.0, 1.0\]"),
        ({"detections_per_img": 0}, r"detections_per_img"),
        ({"topk_candidates": 0}, r"topk_candidates"),
        ({"optimizer": "adam"}, r"optimizer='adam'.*adamw.*sgd"),
        ({"lr": -0.1}, r"lr=-0.1"),
        ({"lr": 0}, r"lr=0"),
        ({"weight_decay": -1.0}, r"weight_decay"),
        ({"scheduler": "step"}, r"scheduler='step'.*onecycle"),
        ({"batch_size": 0}, r"batch_size"),
        ({"max_epochs": True}, r"max_epochs=True"),
        ({"early_stopping_patience": 0}, r"early_stopping_patience=0"),
        ({"augment": 3}, r"augment=3.*recipe"),
        ({"seed": -1}, r"seed=-1"),
        ({"image_mean": [0.0, float("nan"), 1.0]}, r"image_mean=\[0.0, nan, 1.0\].*finite numbers"),
        ({"image_std": [1.0, float("inf"), 1.0]}, r"image_std=\[1.0, inf, 1.0\].*finite numbers"),
        ({"fpn_channels": 100}, r"fpn_channels=100.*multiple of 32 with norm=\"group\".*e.g. 96"),
        ({"lr": "1e-3"}, r"lr='1e-3'.*a string, not a number: write it unquoted"),
        ({"batch_size": 8.0}, r"batch_size=8.0.*an integer >= 1"),
        ({"stride4": 1}, r"stride4=1.*one of \[False, True, 'auto'\]"),
        (
            {"input_stretch": "sqrt"},
            r"input_stretch='sqrt'.*'none', 'linear', 'asinh', 'log', 'zscale'",
        ),
        ({"stretch_a": 0.0}, r"stretch_a=0.0.*\(0.0, 1000000.0\]"),
        (
            {"stretch_params": {**ASINH, "a": 0.1}},
            r"stretch_params=.*None when input_stretch=\"none\"",
        ),
        (
            {"input_stretch": "asinh", "stretch_params": {"kind": "asinh"}},
            r"stretch_params=.*needs exactly the keys",
        ),
        ({"input_stretch": "log", "stretch_params": ASINH}, r"stretch_params=.*kind \"log\""),
        (
            {"input_stretch": "asinh", "stretch_params": {**ASINH, "low": [0.0]}},
            r"one value per band",
        ),
        (
            {"input_stretch": "asinh", "in_channels": 2, "stretch_params": ASINH},
            r"2 low/high values",
        ),
        (
            {"input_stretch": "asinh", "stretch_params": {**ASINH, "high": [1, 1, -5]}},
            r"low <= high",
        ),
        ({"input_stretch": "asinh", "stretch_params": {**ASINH, "a": "x"}}, r"finite numbers"),
        (
            {"input_stretch": "asinh", "stretch_params": ASINH, "stretch_a": 0.5},
            r"equal to stretch_a=0.5",
        ),
    ],
)
def test_invalid_values_name_field_value_and_allowed(changes, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig(**changes)


def test_valid_explicit_values_are_normalised(tmp_path):
    config = ModelConfig(
        anchor_sizes=[[4, 5], [8, 10], [16, 20], [32, 40], [64, 80], [128, 160]],
        stride4=True,
        aspect_ratios=[1.0, 2.0],
        weights=tmp_path / "w.pt",
        classes=("a", "b"),
        image_mean=(1, 2, 3),
        early_stopping_patience=3,
        augment={"name": "d4"},
    )
    assert config.anchor_sizes[0] == (4, 5)
    assert isinstance(config.anchor_sizes, tuple)
    assert config.aspect_ratios == (1.0, 2.0)
    assert config.weights == str(tmp_path / "w.pt")
    assert config.classes == ["a", "b"]
    assert config.image_mean == [1, 2, 3]
    assert config.num_classes == 2


def _rich_config():
    return ModelConfig(
        backbone="mobilenet_v3_large",
        in_channels=4,
        classes=["fresh", "degraded"],
        tile_size=512,
        anchor_sizes=((6, 7.5, 9.4), (12, 15, 19), (24, 30, 38), (48, 60, 76), (95, 120, 151)),
        aspect_ratios=(0.5, 1.0, 2.0),
        image_mean=[100.0, 200.0, 300.0, 400.0],
        image_std=[10.0, 20.0, 30.0, 40.0],
        augment={"name": "compose", "transforms": [{"name": "d4", "symmetries": [0, 1]}]},
        early_stopping_patience=5,
    )


def test_yaml_and_json_round_trip_files_and_text(tmp_path):
    config = _rich_config()
    assert ModelConfig.from_yaml(config.to_yaml(tmp_path / "c.yaml")) == config
    assert ModelConfig.from_yaml(tmp_path / "c.yaml") == config
    assert ModelConfig.from_yaml(str(tmp_path / "c.yaml")) == config
    assert ModelConfig.from_json(config.to_json(tmp_path / "c.json")) == config
    restored = ModelConfig.from_json(tmp_path / "c.json")
    assert restored == config
    assert isinstance(restored.anchor_sizes[0], tuple)
    assert isinstance(restored.aspect_ratios, tuple)
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_input_stretch_round_trips_and_gives_a_raw_nodata_fill(tmp_path):
    assert ModelConfig().input_stretch == "none" and ModelConfig().stretch_params is None
    config = ModelConfig(
        input_stretch="asinh",
        stretch_a=0.1,
        stretch_params={**ASINH, "low": (180, 0.0, 5.0)},  # tuples and ints are normalised
        image_mean=[0.3, 0.5, 0.5],
        image_std=[0.2, 0.2, 0.2],
    )
    assert config.stretch_params["low"] == [180, 0.0, 5.0]
    assert ModelConfig.from_yaml(config.to_yaml(tmp_path / "s.yaml")) == config
    assert ModelConfig.from_json(config.to_json()) == config
    torch.save({"config": config.to_dict()}, tmp_path / "s.pt")
    assert (
        ModelConfig.from_dict(torch.load(tmp_path / "s.pt", weights_only=True)["config"]) == config
    )
    fill = config.nodata_fill  # raw values whose stretch is image_mean: they normalise to 0
    stretched = Stretch.from_dict(config.stretch_params).apply(np.array(fill)[:, None, None])
    np.testing.assert_allclose(stretched[:2, 0, 0], [0.3, 0.5], atol=1e-6)
    assert fill[2] == 5.0  # flat band: its low
    assert ModelConfig(image_mean=[1, 2, 3]).nodata_fill == [1, 2, 3]  # no stretch: image_mean
    assert ModelConfig(input_stretch="log", image_mean=[1, 2, 3]).nodata_fill is None  # unresolved
    log = ModelConfig(
        input_stretch="log",
        in_channels=1,
        stretch_params={"kind": "log", "low": [0], "high": [1], "a": 1000.0},
    )
    assert log.replace(image_mean=[0.5]).nodata_fill[0] == pytest.approx(
        math.expm1(0.5 * math.log1p(1000)) / 1000
    )


def test_to_dict_is_plain_and_survives_weights_only_load(tmp_path):
    data = _rich_config().to_dict()
    assert isinstance(data["anchor_sizes"], list)
    assert isinstance(data["anchor_sizes"][0], list)
    torch.save({"hyper_parameters": {"config": data}}, tmp_path / "c.pt")
    loaded = torch.load(tmp_path / "c.pt", weights_only=True)
    assert ModelConfig.from_dict(loaded["hyper_parameters"]["config"]) == _rich_config()


def test_unknown_keys_are_named(tmp_path):
    data = {**ModelConfig().to_dict(), "learning_rate": 0.1, "bakbone": "x"}
    with pytest.raises(ConfigError, match=r"\['bakbone', 'learning_rate'\]"):
        ModelConfig.from_dict(data)
    (tmp_path / "c.yaml").write_text("lr: 0.01\nepochs: 3\n")
    with pytest.raises(ConfigError, match=r"Unknown ModelConfig key\(s\) \['epochs'\]"):
        ModelConfig.from_yaml(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=r"expects a mapping, got list"):
        ModelConfig.from_dict([1, 2])


def test_partial_yaml_takes_defaults(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("backbone: resnet34\nanchor_sizes: [[8], [16], [32], [64], [128]]\n")
    config = ModelConfig.from_yaml(path)
    assert config.backbone == "resnet34"
    assert config.anchor_sizes == ((8,), (16,), (32,), (64,), (128,))
    assert config.lr == ModelConfig().lr


def test_bad_files_give_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"missing.yaml does not exist"):
        ModelConfig.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"missing.json does not exist"):
        ModelConfig.from_json(Path(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"JSON from .* is invalid"):
        ModelConfig.from_json(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match=r"YAML from .* is invalid"):
        ModelConfig.from_yaml("a: [1, 2\nb: 3")


def test_replace_validates_and_copies():
    config = ModelConfig()
    changed = config.replace(lr=0.01, classes=["a", "b"])
    assert changed.lr == 0.01
    assert changed.num_classes == 2
    assert config.lr == ModelConfig().lr
    with pytest.raises(ConfigError, match=r"lr=-1"):
        config.replace(lr=-1)
    with pytest.raises(ConfigError, match=r"\['nope'\]"):
        config.replace(nope=1)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        ModelConfig().lr = 1.0  # type: ignore[misc]


def test_numpy_values_become_python_and_config_hashes(tmp_path):
    import numpy as np

    config = ModelConfig(
        in_channels=np.int64(2),
        image_mean=np.array([1.5, 2.5], dtype=np.float32),
        image_std=[np.float64(1.0), np.float64(2.0)],
        anchor_sizes=np.array([[8.0], [16.0], [32.0], [64.0], [128.0]]),
        augment={"name": "d4", "symmetries": (0, 1)},
    )
    assert type(config.in_channels) is int
    assert config.image_mean == [1.5, 2.5]
    assert type(config.image_std[0]) is float
    assert config.anchor_sizes[4] == (128.0,)
    assert config.augment == {"name": "d4", "symmetries": [0, 1]}
    assert ModelConfig.from_yaml(config.to_yaml()) == config
    assert hash(config) == hash(ModelConfig.from_json(config.to_json()))
    assert len({config, config.replace(), ModelConfig()}) == 2
    path = tmp_path / "run.cfg"
    path.write_text(config.to_yaml())
    assert ModelConfig.from_yaml(str(path)) == config
    assert ModelConfig.from_yaml("lr: 0.5").lr == 0.5


def test_group_norm_takes_any_fpn_width_with_batch_norm():
    assert ModelConfig(fpn_channels=100, norm="batch").fpn_channels == 100
    assert ModelConfig(fpn_channels=96).fpn_channels == 96


def test_yaml_reads_exponents_without_a_dot_as_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nweight_decay: 5E-4\nfocal_gamma: 2\n")
    config = ModelConfig.from_yaml(path)
    assert (config.lr, config.weight_decay, config.focal_gamma) == (1e-3, 5e-4, 2)
    assert isinstance(config.lr, float)
    assert ModelConfig.from_yaml(config.to_yaml()) == config
    assert load_yaml("a: 1e-3\nb: 10\nc: '1e-3'\nd: 1.5e+2\ne: 1_000") == {
        "a": 0.001,
        "b": 10,
        "c": "1e-3",
        "d": 150.0,
        "e": 1000,
    }


def test_run_settings_of_older_configs_are_dropped_with_a_warning(tmp_path, caplog):
    old = {**ModelConfig().to_dict(), "num_workers": 4, "accelerator": "gpu", "precision": "32"}
    with caplog.at_level("WARNING", logger="model.config"):
        config = ModelConfig.from_dict(old)
    assert config == ModelConfig()
    assert "accelerator='gpu', num_workers=4, precision='32' dropped" in caplog.text
    assert "RunConfig" in caplog.text
    assert not set(RUN_FIELDS) & set(config.to_dict())
    (tmp_path / "old.yaml").write_text("devices: 2\nstrategy: ddp\nlr: 0.01\n")
    assert ModelConfig.from_yaml(tmp_path / "old.yaml") == ModelConfig(lr=0.01)
