import pytest
import torch

from model.config import ModelConfig
from model.network.checkpoint import load_model, read_checkpoint_config, save_model_checkpoint
from model.network.factory import build_retinanet
from tiling.errors import ConfigError, RasterDetectError

SIZES = ((8.0,), (16.0,), (32.0,), (64.0,), (96.0,))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model with non-initial weights (one SGD step, so BN stats moved) and its checkpoint."""
    config = ModelConfig(
        tile_size=64,
        anchor_sizes=SIZES,
        classes=["a", "b"],
        in_channels=2,
        image_mean=[5.0, 6.0],
        image_std=[2.0, 3.0],
        score_thresh=0.0,
        weights="/nonexistent/start.pt",  # kept in the config, never loaded by load_model
    )
    model = build_retinanet(config.replace(weights=None))
    torch.manual_seed(1)
    images = [torch.rand(2, 64, 64) * 10 for _ in range(2)]
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 24.0, 24.0]]), "labels": torch.tensor([1])}] * 2
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    sum(model(images, targets).values()).backward()
    optimizer.step()
    path = save_model_checkpoint(model, config, tmp_path_factory.mktemp("ckpt") / "sub" / "m.ckpt")
    return model.eval(), config, path, images


def test_rebuilt_model_predicts_identically(trained):
    model, config, path, images = trained
    loaded, loaded_config = load_model(path)
    assert loaded_config == config
    assert not loaded.training
    with torch.no_grad():
        expected, got = model(images), loaded(images)
    for a, b in zip(expected, got, strict=True):
        assert a["boxes"].shape[0] > 0
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(a[key], b[key])


def test_checkpoint_layout_is_plain_and_safe(trained):
    _, config, path, _ = trained
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["hyper_parameters"]["config"] == config.to_dict()
    assert all(k.startswith("model.") for k in ckpt["state_dict"])
    assert read_checkpoint_config(ckpt, path) == config


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(ConfigError, match=r"Checkpoint file .*absent.ckpt does not exist"):
        load_model(tmp_path / "absent.ckpt")
    (tmp_path / "notes.ckpt").write_bytes(b"\x00\x01 not a checkpoint")
    with pytest.raises(ConfigError, match=r"notes.ckpt is not a torch file"):
        load_model(tmp_path / "notes.ckpt")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(RasterDetectError, match=r"plain.pt is not a checkpoint of this project"):
        load_model(tmp_path / "plain.pt")


def test_checkpoint_without_weights_or_with_bad_config(tmp_path, trained):
    _, config, path, _ = trained
    ckpt = torch.load(path, weights_only=True)
    torch.save(
        {"hyper_parameters": ckpt["hyper_parameters"], "state_dict": {}}, tmp_path / "empty.ckpt"
    )
    with pytest.raises(RasterDetectError, match=r"no 'state_dict' entries prefixed 'model.'"):
        load_model(tmp_path / "empty.ckpt")
    bad = {**ckpt, "hyper_parameters": {"config": {**config.to_dict(), "depth": 3}}}
    torch.save(bad, tmp_path / "bad.ckpt")
    with pytest.raises(ConfigError, match=r"Unknown ModelConfig key\(s\) \['depth'\]"):
        load_model(tmp_path / "bad.ckpt")


def test_weights_that_do_not_fit_the_config(tmp_path, trained):
    _, config, path, _ = trained
    ckpt = torch.load(path, weights_only=True)
    other = config.replace(classes=["a", "b", "c"])
    torch.save(
        {**ckpt, "hyper_parameters": {"config": other.to_dict()}}, tmp_path / "mismatch.ckpt"
    )
    with pytest.raises(RasterDetectError, match=r"do not fit .*classes=3"):
        load_model(tmp_path / "mismatch.ckpt")


def test_checkpoint_with_run_settings_in_its_config_still_loads(trained, tmp_path, caplog):
    # checkpoints written before RunConfig hold the hardware settings in their config
    model, config, path, images = trained
    checkpoint = torch.load(path, weights_only=True)
    hyper = checkpoint["hyper_parameters"]["config"]
    hyper.update(accelerator="cpu", devices="auto", num_workers=2, precision="32")
    torch.save(checkpoint, tmp_path / "old.ckpt")
    with caplog.at_level("WARNING", logger="model.config"):
        loaded, loaded_config = load_model(tmp_path / "old.ckpt")
    assert loaded_config == config and "num_workers=2" in caplog.text
    with torch.no_grad():
        assert torch.equal(loaded(images)[0]["boxes"], model(images)[0]["boxes"])
