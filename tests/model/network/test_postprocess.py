"""Batched post-processing gives torchvision's per-image detections (random heads, a real window)."""

from __future__ import annotations

import types

import numpy as np
import pytest
import rasterio
import torch
from torchvision.models.detection import RetinaNet

from model.config import ModelConfig
from model.network.factory import build_retinanet
from model.network.postprocess import BatchedRetinaNet, batched_detections, first_per_image

SIZES = ((8,), (16,), (32,), (64,), (128,))


def tiny_model(**overrides: object) -> BatchedRetinaNet:
    torch.manual_seed(0)
    config = ModelConfig(in_channels=3, tile_size=128, fpn_channels=32, anchor_sizes=SIZES,
                         aspect_ratios=(0.5, 1.0, 2.0), **overrides)  # type: ignore[arg-type]  # fmt: skip
    return build_retinanet(config).eval()


def random_heads(model: RetinaNet, n_images: int, n_classes: int, scale: float):
    """Head outputs and anchors of ``n_images`` 128-px images, logits spread by ``scale``."""
    images = model.transform([torch.zeros(3, 128, 128)] * n_images)[0]
    features = [torch.zeros(n_images, 1, 128 // s, 128 // s) for s in (8, 16, 32, 64, 128)]
    anchors = model.anchor_generator(images, features)
    per_level = [3 * f.shape[2] * f.shape[3] for f in features]
    gen = torch.Generator().manual_seed(n_images * 7 + n_classes)
    logits = torch.randn(n_images, sum(per_level), n_classes, generator=gen) * scale - 1
    deltas = torch.randn(n_images, sum(per_level), 4, generator=gen)
    heads = {"cls_logits": list(logits.split(per_level, 1)),
             "bbox_regression": list(deltas.split(per_level, 1))}  # fmt: skip
    return heads, [list(a.split(per_level)) for a in anchors], images.image_sizes


def canonical(detections: dict) -> dict:
    """Detections by decreasing score, equal scores by label then box (the order of ties)."""
    keys = [detections["boxes"][:, i].numpy() for i in (3, 2, 1, 0)]
    keys += [detections["labels"].numpy(), -detections["scores"].numpy()]
    order = torch.from_numpy(np.lexsort(keys))
    return {key: value[order] for key, value in detections.items()}


def assert_same(ours: list[dict], theirs: list[dict]) -> None:
    assert len(ours) == len(theirs)
    for mine, ref in zip(map(canonical, ours), map(canonical, theirs), strict=True):
        assert len(mine["scores"]) == len(ref["scores"])
        torch.testing.assert_close(mine["scores"], ref["scores"])
        torch.testing.assert_close(mine["boxes"], ref["boxes"])
        assert torch.equal(mine["labels"], ref["labels"])


@pytest.mark.parametrize(
    ("n_images", "n_classes", "scale", "settings"),
    [
        (4, 1, 2.0, {}),
        (3, 3, 2.5, {"score_thresh": 0.3, "detections_per_img": 15, "topk_candidates": 40}),
        (2, 2, 4.0, {"score_thresh": 0.0, "nms_thresh": 0.3, "detections_per_img": 500}),
        (1, 1, 1.0, {"topk_candidates": 5}),
    ],
)
def test_random_heads_give_torchvision_detections(n_images, n_classes, scale, settings):
    model = tiny_model(classes=[f"c{i}" for i in range(n_classes)], **settings)
    heads, anchors, shapes = random_heads(model, n_images, n_classes, scale)
    ours = batched_detections(heads, anchors, shapes, model)
    theirs = RetinaNet.postprocess_detections(model, heads, anchors, shapes)
    assert_same(ours, theirs)
    assert sum(len(d["scores"]) for d in ours) > 0
    assert all(len(d["scores"]) <= model.detections_per_img for d in ours)


def test_nothing_above_the_threshold_gives_empty_detections():
    model = tiny_model(score_thresh=0.99)
    heads, anchors, shapes = random_heads(model, 2, 1, 0.1)
    ours = batched_detections(heads, anchors, shapes, model)
    assert [d["boxes"].shape for d in ours] == [torch.Size([0, 4])] * 2
    assert_same(ours, RetinaNet.postprocess_detections(model, heads, anchors, shapes))


def test_boxes_are_clipped_to_each_image():
    model = tiny_model(score_thresh=0.0)
    heads, anchors, shapes = random_heads(model, 2, 1, 1.0)
    heads["bbox_regression"] = [d * 20 for d in heads["bbox_regression"]]  # boxes far outside
    boxes = torch.cat([d["boxes"] for d in batched_detections(heads, anchors, shapes, model)])
    assert boxes.min() >= 0 and boxes.max() <= 128
    assert (boxes == 128).any() and (boxes == 0).any()


def test_first_per_image_keeps_the_best_of_each_image_in_order():
    keep = torch.tensor([5, 2, 9, 7, 1, 3])  # by decreasing score
    image = torch.tensor([1, 0, 1, 1, 0, 2])
    parts = first_per_image(keep, image, n_images=4, limit=2)
    assert [p.tolist() for p in parts] == [[2, 1], [5, 9], [3], []]


def test_real_window_gives_the_same_detections(neon_tif):
    with rasterio.open(neon_tif) as ds:
        window = torch.from_numpy(ds.read(window=((100, 228), (200, 328))).astype(np.float32))
    images = [window, window.flip(2)]
    model = tiny_model(image_mean=[100.0] * 3, image_std=[50.0] * 3, score_thresh=0.0)
    with torch.inference_mode():
        ours = model(images)
        model.postprocess_detections = types.MethodType(RetinaNet.postprocess_detections, model)
        theirs = model(images)
    assert len(ours[0]["scores"]) == model.detections_per_img
    assert_same(ours, theirs)


def test_the_factory_builds_the_batched_model():
    assert isinstance(tiny_model(), BatchedRetinaNet)
