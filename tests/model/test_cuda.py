"""On a CUDA GPU: prediction and a training step give the CPU's results (skipped without one).

Tolerance: float32 on both devices with TF32 off (cuDNN and oneDNN still sum in other orders):
the same number of detections, boxes within 0.01 px, scores within 1e-4, the same labels; the
losses of a training step within 1e-3 relative. Under bf16 autocast only that it runs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.config import ModelConfig
from model.inference.predict import predict_raster
from model.network.factory import build_retinanet

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture
def exact_float32(monkeypatch):
    """TF32 off in convolutions and matrix products, as on the CPU."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


def spread_model() -> torch.nn.Module:
    """A random model whose scores spread widely (logit sd ~2), so no near-ties decide the set."""
    torch.manual_seed(0)
    config = ModelConfig(in_channels=3, tile_size=128, fpn_channels=32, image_mean=[100.0] * 3,
                         image_std=[40.0] * 3, anchor_sizes=((8,), (16,), (32,), (64,), (128,)),
                         score_thresh=0.3, detections_per_img=20)  # fmt: skip
    model = build_retinanet(config).eval()
    torch.nn.init.normal_(model.head.classification_head.cls_logits.weight, std=0.5)
    return model


def test_predict_raster_on_cuda_gives_the_cpu_catalogue(make_geotiff, exact_float32):
    rng = np.random.default_rng(0)
    path = make_geotiff("rgb.tif", rng.integers(0, 255, (3, 300, 300), dtype=np.uint8))
    model = spread_model()
    options = {"tile_size": 128, "overlap": 32, "batch_size": 4, "progress": False}
    cpu = predict_raster(model, path, device="cpu", precision="32", **options)
    gpu = predict_raster(model, path, device="cuda", precision="32", **options)
    assert len(cpu) > 0 and len(gpu) == len(cpu)
    cpu, gpu = (f.sort_values(["x", "y"]).reset_index(drop=True) for f in (cpu, gpu))
    np.testing.assert_allclose(gpu[["x", "y", "diameter"]], cpu[["x", "y", "diameter"]], atol=0.01)
    np.testing.assert_allclose(gpu["score"], cpu["score"], atol=1e-4)
    assert (gpu["label"] == cpu["label"]).all()
    bf16 = predict_raster(model, path, device="cuda", precision="bf16-mixed", **options)
    assert len(bf16) > 0


def test_training_step_on_cuda_gives_the_cpu_losses(exact_float32):
    model = spread_model().train()
    images = torch.rand(2, 3, 128, 128) * 255
    boxes = torch.tensor([[10.0, 12.0, 40.0, 44.0], [60.0, 50.0, 90.0, 84.0]])
    targets = [{"boxes": boxes, "labels": torch.zeros(2, dtype=torch.long)}] * 2
    cpu = model(list(images), targets)
    model.cuda()
    gpu_targets = [{k: v.cuda() for k, v in t.items()} for t in targets]
    gpu = model(list(images.cuda()), gpu_targets)
    for name, value in cpu.items():
        torch.testing.assert_close(gpu[name].cpu(), value.detach(), rtol=1e-3, atol=1e-5)
    sum(gpu.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
