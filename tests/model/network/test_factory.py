import logging

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.ops.misc import FrozenBatchNorm2d

from model.config import ModelConfig
from model.network.backbones import build_backbone, count_frozen_norms, norm_layer
from model.network.factory import (
    FocalClassificationHead,
    NoResizeTransform,
    StretchTransform,
    build_retinanet,
    load_weights,
)
from tiling.errors import ConfigError
from tiling.radiometry.stretch import Stretch

TILE = 64
FIVE = ((8.0,), (16.0,), (32.0,), (64.0,), (96.0,))


def _config(**changes):
    base = {"tile_size": TILE, "anchor_sizes": FIVE, "score_thresh": 0.0, "classes": ["a", "b"]}
    return ModelConfig(**{**base, **changes})


def _batch(channels, n=2, size=TILE):
    torch.manual_seed(0)
    images = [torch.rand(channels, size, size) * 100 for _ in range(n)]
    targets = [
        {
            "boxes": torch.tensor([[10.0, 12.0, 20.0, 22.0], [30, 30, 50, 46]]),
            "labels": torch.tensor([0, 1]),
        },
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ][:n]
    return images, targets


@pytest.mark.parametrize(
    ("backbone", "bands"),
    [
        ("resnet18", 1),
        ("resnet18", 3),
        ("resnet18", 4),
        ("resnet34", 3),
        ("resnet50", 4),
        ("mobilenet_v3_large", 1),
    ],
)
def test_every_backbone_and_band_count_trains_and_predicts(backbone, bands):
    config = _config(
        backbone=backbone, in_channels=bands, image_mean=[50.0] * bands, image_std=[29.0] * bands
    )
    model = build_retinanet(config)
    assert count_frozen_norms(model) == 0
    assert all(p.requires_grad for p in model.parameters())
    images, targets = _batch(bands)
    losses = model(images, targets)
    assert set(losses) == {"classification", "bbox_regression"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    first = next(m for m in model.backbone.body.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == bands
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    for det in out:
        assert set(det) == {"boxes", "scores", "labels"}
        assert 0 < det["boxes"].shape[0] <= config.detections_per_img
        assert det["boxes"].shape[1] == 4
        assert det["labels"].min() >= 0 and det["labels"].max() < config.num_classes
        assert det["boxes"].min() >= 0 and det["boxes"].max() <= TILE


def test_no_hidden_resize_and_config_normalisation():
    config = _config(
        tile_size=80, anchor_sizes=FIVE, in_channels=3, image_mean=[10, 20, 30], image_std=[2, 4, 5]
    )
    model = build_retinanet(config)
    assert isinstance(model.transform, NoResizeTransform)
    images = [torch.full((3, 80, 80), 30.0), torch.full((3, 80, 80), 30.0)]
    model.eval()
    batch, _ = model.transform(images)
    assert batch.image_sizes == [(80, 80), (80, 80)]
    assert batch.tensors.shape == (2, 3, 96, 96)  # padded to a multiple of 32, never resized
    expected = torch.tensor([(30 - 10) / 2, (30 - 20) / 4, (30 - 30) / 5])
    assert torch.allclose(batch.tensors[0, :, :80, :80].mean(dim=(1, 2)), expected)
    model.train()
    boxes = torch.tensor([[1.0, 2.0, 30.0, 40.0]])
    _, targets = model.transform(images[:1], [{"boxes": boxes, "labels": torch.tensor([0])}])
    assert torch.equal(targets[0]["boxes"], boxes)


def test_no_stretch_is_the_plain_normalising_transform_bit_for_bit():
    config = _config(in_channels=2, image_mean=[200.0, 5.0], image_std=[30.0, 2.0])
    model = build_retinanet(config).eval()
    assert type(model.transform) is NoResizeTransform
    assert model.transform.nodata_fill == [200.0, 5.0]
    images = [torch.rand(2, TILE, TILE) * 4e4 for _ in range(2)]
    batch, _ = model.transform(images)
    mean, std = torch.tensor([200.0, 5.0])[:, None, None], torch.tensor([30.0, 2.0])[:, None, None]
    assert torch.equal(batch.tensors, torch.stack([(i - mean) / std for i in images]))


def test_tile_normalisation_ignores_each_bands_brightness_and_contrast():
    config = _config(in_channels=3, image_mean=[100.0] * 3, image_std=[20.0] * 3)
    per_tile = build_retinanet(config.replace(input_norm="tile")).eval()
    per_set = build_retinanet(config).eval()
    torch.manual_seed(1)
    image = 100 + 25 * torch.randn(3, TILE, TILE)  # std 25 per band: above the floor (5)
    other_site = (
        image * torch.tensor([0.6, 1.3, 0.8])[:, None, None]
        + torch.tensor([-30.0, 12, 5])[:, None, None]
    )
    a, b = per_tile.transform([image, other_site])[0].tensors
    assert torch.allclose(a, b, atol=1e-4)  # the same input to the network
    assert a.mean(dim=(-2, -1)).abs().max() < 1e-4
    assert torch.allclose(a.std(dim=(-2, -1)), torch.ones(3), atol=1e-4)
    c, d = per_set.transform([image, other_site])[0].tensors
    assert (c - d).abs().mean() > 0.5  # what the data set's statistics give
    flat = 100 + 0.5 * torch.randn(3, TILE, TILE)  # std 0.5: divided by the floor, 0.25 x 20
    (e,) = per_tile.transform([flat])[0].tensors
    assert torch.allclose(e.std(dim=(-2, -1)), torch.full((3,), 0.1), atol=0.01)


# one band 0..40,000 ADU with a sky of ~200; a second band on another scale
RAW = torch.tensor(
    [
        [
            [-50.0, 150.0, 190.0, 200.0],
            [210.0, 400.0, 5e3, 4e4],
            [5e4, 195.5, 201.25, float("nan")],
        ],
        [[0.0, 0.1, 0.2, 0.5], [0.7, 0.9, 1.0, 1.5], [-1.0, 0.05, 0.95, 0.33]],
    ]
)
PARAMS = {"low": [190.0, 0.1], "high": [4e4, 0.9]}


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "linear", **PARAMS},
        {"kind": "zscale", **PARAMS},
        {"kind": "asinh", **PARAMS, "a": 0.1},
        {"kind": "asinh", **PARAMS, "a": 0.001},
        {"kind": "log", **PARAMS, "a": 1000.0},
    ],
)
def test_stretch_transform_equals_tiling_stretch(params):
    expected = Stretch.from_dict(params).apply(RAW.numpy())  # numpy, float64 inside
    assert expected.min() == 0.0 and expected.max() == 1.0
    config = _config(in_channels=2, input_stretch=params["kind"], stretch_params=params)
    model = build_retinanet(config.replace(image_mean=[0.0, 0.0], image_std=[1.0, 1.0])).eval()
    assert isinstance(model.transform, StretchTransform)
    batch, _ = model.transform([RAW, RAW * 1])  # two images: stretched as one batch
    np.testing.assert_allclose(batch.tensors[1, :, :3, :4].numpy(), expected, atol=1e-5, rtol=0)
    assert batch.tensors.shape == (2, 2, 32, 32) and batch.image_sizes == [(3, 4), (3, 4)]
    # then the usual normalisation, in stretched units
    normed = build_retinanet(config.replace(image_mean=[0.5, 0.2], image_std=[0.25, 0.5])).eval()
    out = normed.transform([RAW])[0].tensors[0, :, :3, :4].numpy()
    mean, std = np.array([0.5, 0.2])[:, None, None], np.array([0.25, 0.5])[:, None, None]
    np.testing.assert_allclose(out, (expected - mean) / std, atol=1e-4, rtol=0)


def test_stretch_transform_batched_any_shape_float32_and_flat_bands():
    params = {"kind": "asinh", "low": [0.0, 3.0], "high": [10.0, 3.0], "a": 0.1}
    stretch = Stretch.from_dict(params)
    transform = StretchTransform(32, 32, [0.0, 0.0], [1.0, 1.0], stretch)
    x = torch.rand(3, 2, 5, 6) * 20 - 5
    out = stretch.apply(x)  # the one stretch, on a batch [B, C, H, W]
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out[1], stretch.apply(x[1]))  # [C, H, W] and [B, C, H, W] agree
    # flat band (low == high): span taken as 1, the same on numpy and torch
    np.testing.assert_allclose(out[0].numpy(), stretch.apply(x[0].numpy()), atol=1e-6)
    same = transform.stretch_images([x[0], x[1]])
    assert all(torch.equal(a, b) for a, b in zip(same, out[:2], strict=True))
    assert transform.stretch_images([x[0], x[1, :, :4]])[1].shape == (2, 4, 6)  # mixed shapes
    assert transform.stretch_images([x[0].double()])[0].dtype == torch.float64
    assert transform.state_dict() == {}  # limits live in the config, not in checkpoints


def test_stretched_model_trains_predicts_and_keeps_the_state_dict_keys():
    params = {"kind": "log", "low": [190.0], "high": [4e4], "a": 1000.0}
    config = _config(
        in_channels=1, input_stretch="log", stretch_params=params, image_mean=[0.2], image_std=[0.1]
    )
    model = build_retinanet(config)
    images, targets = _batch(1)
    losses = model(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        assert len(model(images)) == 2
    plain = build_retinanet(_config(in_channels=1))
    assert model.state_dict().keys() == plain.state_dict().keys()
    fill = model.transform.nodata_fill  # raw value that stretches to image_mean
    assert fill == pytest.approx(config.nodata_fill)
    assert Stretch.from_dict(params).apply(np.array(fill)[:, None, None])[0, 0, 0] == pytest.approx(
        0.2
    )


def test_checkpoint_restores_the_stretch_and_its_predictions(tmp_path):
    from model.network.checkpoint import load_model, save_model_checkpoint

    params = {"kind": "asinh", **PARAMS, "a": 0.01}
    config = _config(
        in_channels=2,
        input_stretch="asinh",
        stretch_params=params,
        image_mean=[0.1, 0.5],
        image_std=[0.2, 0.3],
    )
    model = build_retinanet(config).eval()
    loaded, loaded_config = load_model(save_model_checkpoint(model, config, tmp_path / "m.ckpt"))
    assert loaded_config == config and isinstance(loaded.transform, StretchTransform)
    images = [torch.rand(2, TILE, TILE) * 4e4 for _ in range(2)]
    with torch.no_grad():
        assert torch.equal(model.transform(images)[0].tensors, loaded.transform(images)[0].tensors)


def test_stretch_without_params_is_refused():
    with pytest.raises(
        ConfigError, match=r"input_stretch='asinh' needs stretch_params.*resolve_config"
    ):
        build_retinanet(_config(input_stretch="asinh"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_stretch_runs_on_the_device_under_autocast():
    params = {"kind": "asinh", **PARAMS, "a": 0.1}
    config = _config(in_channels=2, input_stretch="asinh", stretch_params=params)
    model = build_retinanet(config).cuda().eval()
    assert model.transform.stretch.low.device.type == "cuda"
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        batch, _ = model.transform([RAW.cuda()] * 4)
    expected = Stretch.from_dict(params).apply(RAW.numpy())
    np.testing.assert_allclose(
        batch.tensors[3, :, :3, :4].float().cpu().numpy(), expected, atol=1e-5
    )


def test_default_mean_std_are_zero_one():
    model = build_retinanet(_config(in_channels=2))
    assert model.transform.image_mean == [0.0, 0.0]
    assert model.transform.image_std == [1.0, 1.0]


def test_config_values_reach_the_model():
    config = _config(
        focal_alpha=0.5,
        focal_gamma=1.0,
        nms_thresh=0.4,
        score_thresh=0.2,
        detections_per_img=17,
        topk_candidates=50,
        aspect_ratios=(0.5, 1.0, 2.0),
    )
    model = build_retinanet(config)
    head = model.head.classification_head
    assert isinstance(head, FocalClassificationHead)
    assert (head.alpha, head.gamma) == (0.5, 1.0)
    assert head.num_anchors == 3
    assert head.num_classes == 2
    assert (model.nms_thresh, model.score_thresh) == (0.4, 0.2)
    assert (model.detections_per_img, model.topk_candidates) == (17, 50)
    assert model.anchor_generator.sizes == FIVE
    assert model.anchor_generator.aspect_ratios == ((0.5, 1.0, 2.0),) * 5


def test_focal_parameters_change_the_loss():
    model = build_retinanet(_config())
    images, targets = _batch(3)
    head = model.head.classification_head
    base = model(images, targets)["classification"].item()
    head.gamma = 0.0
    assert model(images, targets)["classification"].item() != pytest.approx(base)


def test_box_loss_selects_the_regression_loss():
    images, targets = _batch(3)
    losses = {}
    for name in ("l1", "giou"):
        torch.manual_seed(0)
        model = build_retinanet(_config(box_loss=name))
        assert model.head.regression_head._loss_type == name
        losses[name] = model(images, targets)["bbox_regression"].item()
    assert np.isfinite(list(losses.values())).all()
    assert losses["giou"] != pytest.approx(losses["l1"])  # same weights, other loss
    with pytest.raises(ConfigError, match=r"box_loss='iou'"):
        ModelConfig(tile_size=TILE, box_loss="iou")


def test_stride4_adds_a_pyramid_level():
    sizes = ((4.0,), (8.0,), (16.0,), (32.0,), (64.0,), (96.0,))
    model = build_retinanet(_config(stride4=True, anchor_sizes=sizes))
    features = model.backbone(torch.zeros(1, 3, TILE, TILE))
    assert [f.shape[-1] for f in features.values()] == [16, 8, 4, 2, 1, 1]
    assert len(model.anchor_generator.sizes) == 6
    images, targets = _batch(3)
    assert torch.isfinite(sum(model(images, targets).values()))


def test_group_norm_variant_and_norm_errors():
    model = build_retinanet(_config(backbone="mobilenet_v3_large", norm="group"))
    assert not any(isinstance(m, nn.BatchNorm2d | FrozenBatchNorm2d) for m in model.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.head.modules())
    images, targets = _batch(3)
    assert torch.isfinite(sum(model(images, targets).values()))
    with pytest.raises(ConfigError, match=r"norm='instance'"):
        norm_layer("instance")
    with pytest.raises(ConfigError, match=r"backbone='vgg'"):
        build_backbone("vgg")


def test_auto_anchors_fall_back_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="model.network.factory"):
        model = build_retinanet(ModelConfig(tile_size=128))
    assert "was not resolved" in caplog.text
    assert model.anchor_generator.sizes == ((8.0,), (16.0,), (32.0,), (64.0,), (128.0,))


def test_weights_load_matching_layers_and_report_skips(tmp_path, caplog):
    source = build_retinanet(_config(in_channels=3, classes=["only"]))
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}},
        tmp_path / "w.ckpt",
    )
    with caplog.at_level(logging.INFO, logger="model.network.factory"):
        model = build_retinanet(_config(in_channels=4, weights=str(tmp_path / "w.ckpt")))
    report = model.weights_report
    skipped = {s.split(":")[0] for s in report.skipped}
    assert skipped == {
        "backbone.body.conv1.weight",
        "head.classification_head.cls_logits.weight",
        "head.classification_head.cls_logits.bias",
    }
    assert len(report.matched) > 100 and not report.unused
    assert set(report.missing) == skipped
    assert "tensors loaded, 3 skipped" in caplog.text
    name = "backbone.body.layer1.0.conv1.weight"
    assert torch.equal(model.state_dict()[name], source.state_dict()[name])


def test_bare_backbone_weights_and_nested_model_key(tmp_path):
    torch.save(resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    model = build_retinanet(_config(norm="batch"))  # torchvision's ResNets use BatchNorm
    report = load_weights(model, tmp_path / "resnet18.pth")
    assert "backbone.body.layer4.1.bn2.running_var" in report.matched
    assert report.unused == ["fc.weight", "fc.bias"]
    # into the GroupNorm default, the affine parameters load but the running statistics cannot
    report = load_weights(build_retinanet(_config()), tmp_path / "resnet18.pth")
    assert "backbone.body.layer4.1.bn2.weight" in report.matched
    assert "layer4.1.bn2.running_var" in report.unused
    torch.save({"model": model.state_dict()}, tmp_path / "nested.pt")
    assert not load_weights(build_retinanet(_config()), tmp_path / "nested.pt").skipped


class _Evil:
    pass


def test_weights_errors(tmp_path):
    model = build_retinanet(_config())
    with pytest.raises(ConfigError, match=r"Weights file .*nope.pt does not exist"):
        load_weights(model, tmp_path / "nope.pt")
    (tmp_path / "text.pt").write_text("not a torch file")
    with pytest.raises(ConfigError, match=r"text.pt is a text file .*A weights file is one file"):
        load_weights(model, tmp_path / "text.pt")
    torch.save({"x": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ConfigError, match=r"evil.pt holds Python objects such as .*_Evil") as err:
        load_weights(model, tmp_path / "evil.pt")
    assert "weights_only" not in str(err.value)
    torch.save({"epoch": 3}, tmp_path / "empty.pt")
    with pytest.raises(ConfigError, match=r"empty.pt holds no state dict"):
        load_weights(model, tmp_path / "empty.pt")
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match=r"matches no tensor of this model.*'foo.weight'"):
        load_weights(model, tmp_path / "other.pt")


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v3_large"])
def test_a_batch_of_one_window_works_with_one_channel_per_group(backbone):
    # fpn_channels=32: the heads' GroupNorm(32) has one channel per group, and a 128-px window's
    # P7 map is 1 x 1, so a batch of one gave a group of a single value.
    config = _config(backbone=backbone, tile_size=128, fpn_channels=32, norm="group", in_channels=1)
    model = build_retinanet(config).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        (out,) = model([torch.rand(1, 128, 128) * 100])
    assert set(out) == {"boxes", "scores", "labels"} and out["boxes"].shape[1] == 4
    assert len(out["scores"]) > 0  # score_thresh 0: every window gives detections
    assert torch.isfinite(out["boxes"]).all()


def test_group_norm_matches_torchs_and_loads_its_weights():
    from model.network.backbones import GroupNorm

    torch.manual_seed(0)
    ours, theirs = GroupNorm(4, 8), nn.GroupNorm(4, 8)
    nn.init.normal_(theirs.weight)
    nn.init.normal_(theirs.bias)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(ours(x), theirs(x))
    single = GroupNorm(8, 8)
    single.load_state_dict(nn.GroupNorm(8, 8).state_dict())
    nn.init.normal_(single.bias)
    out = single(torch.randn(1, 8, 1, 1)).flatten()
    torch.testing.assert_close(out, single.bias.detach(), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        nn.GroupNorm(8, 8)(torch.randn(1, 8, 1, 1))  # torch's own layer still refuses


def test_boxes_and_losses_stay_float32_under_bf16_autocast():
    model = build_retinanet(_config(fpn_channels=32, in_channels=1)).eval()
    images, targets = _batch(1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        heads = model.head(list(model.backbone(torch.stack(images)).values()))
        (out, _) = model(images)
    assert {v.dtype for v in heads.values()} == {torch.float32}
    # bf16 boxes would sit on a 0.25-0.5 px grid here (values 32-64 px); float32 ones do not
    assert out["boxes"].dtype == torch.float32 and len(out["boxes"]) > 0
    assert bool(((out["boxes"] * 4) % 1 != 0).any())
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(images, targets)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
