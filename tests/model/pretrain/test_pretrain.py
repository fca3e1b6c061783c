"""SimSiam pretraining: a weights file the detector loads fully matched for its backbone."""

from __future__ import annotations

import pytest
import torch

from model.config import ModelConfig
from model.network.factory import build_retinanet, load_weights
from model.pretrain import SimSiam, pretrain_backbone
from model.pretrain.loop import concrete
from model.pretrain.simsiam import negative_cosine
from tests.model.store_factory import open_store, write_disc_store
from tiling.errors import ConfigError

CONFIG = ModelConfig(backbone="resnet18", fpn_channels=32, norm="group", seed=3)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    return open_store(write_disc_store(root, n_tiles=8, tile_size=64, bands=2, nodata=0))


@pytest.fixture(scope="module")
def weights(store, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "w.pt"
    assert pretrain_backbone(store, CONFIG, path, steps=2, batch_size=4) == path
    return path


@pytest.mark.slow
def test_weights_load_fully_matched_for_the_backbone(store, weights):
    path = weights
    assert path.is_file()
    config = concrete(CONFIG, store).replace(weights=str(path))
    detector = build_retinanet(config)
    report = detector.weights_report
    backbone = [k for k in detector.state_dict() if k.startswith("backbone.")]
    assert sorted(report.matched) == sorted(backbone)  # every backbone and FPN tensor
    assert not report.skipped and not report.unused
    assert all(k.startswith("head.") for k in report.missing)
    fresh = build_retinanet(concrete(CONFIG, store))
    saved = torch.load(path, weights_only=True)["state_dict"]
    key = "backbone.body.conv1.weight"
    assert torch.equal(detector.state_dict()[key], saved[key])
    assert not torch.equal(fresh.state_dict()[key], saved[key])  # trained, not the init


@pytest.mark.slow
def test_weights_of_a_p2_pyramid_load_fully_matched(store, tmp_path):
    config = CONFIG.replace(stride4=True)  # the notebook passes stride4 (resolved per store)
    path = pretrain_backbone(store, config, tmp_path / "p2.pt", steps=1, batch_size=4)
    detector = build_retinanet(concrete(config, store).replace(weights=str(path)))
    backbone = [k for k in detector.state_dict() if k.startswith("backbone.")]
    assert sorted(detector.weights_report.matched) == sorted(backbone)
    assert any(k.startswith("backbone.fpn.inner_blocks.3") for k in backbone)  # the P2..P5 blocks


@pytest.mark.slow
def test_pretraining_is_deterministic(store, weights, tmp_path):
    a = weights
    b = pretrain_backbone(store, CONFIG, tmp_path / "b.pt", steps=2, batch_size=4)
    sa = torch.load(a, weights_only=True)["state_dict"]
    sb = torch.load(b, weights_only=True)["state_dict"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    model = build_retinanet(concrete(CONFIG, store))
    report = load_weights(model, a)
    assert len(report.matched) == len(sa)


def test_zero_steps_skip_and_bad_settings(store, tmp_path):
    assert pretrain_backbone(store, CONFIG, tmp_path / "none.pt", steps=0) is None
    assert not (tmp_path / "none.pt").exists()
    with pytest.raises(ConfigError, match="batch_size >= 2, got steps=5, batch_size=1"):
        pretrain_backbone(store, CONFIG, tmp_path / "x.pt", steps=5, batch_size=1)
    with pytest.raises(ConfigError, match="no tile in the splits"):
        pretrain_backbone(store, CONFIG, tmp_path / "x.pt", steps=1, splits=[])


def test_simsiam_loss_is_symmetric_and_bounded(store):
    model = SimSiam(build_retinanet(concrete(CONFIG, store))).eval()
    images = torch.rand(3, 2, 64, 64) * 1000
    with torch.no_grad():
        loss = model(images, images.flip(-1))
        again = model(images.flip(-1), images)
    assert -1 <= float(loss) <= 1 and torch.isclose(loss, again)
    z = torch.randn(4, 8, requires_grad=True)
    assert torch.isclose(negative_cosine(z, z), torch.tensor(-1.0))
