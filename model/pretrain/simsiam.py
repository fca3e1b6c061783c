"""SimSiam on the detector's own backbone and FPN: the network, the views and the loss.

SimSiam (Chen and He, "Exploring Simple Siamese Representation Learning", CVPR 2021) learns
from two augmented views of one image: an encoder ``f`` and a projector ``g`` give ``z = g(f(x))``
for each view, a predictor ``h`` maps one view's ``z`` to the other's, and the loss is the
negative cosine similarity with a stop-gradient on the target side. It needs no negative pairs,
no momentum encoder and no large batches (the paper's collapse analysis holds at batch 64 and it
trains at 16-32 on a CPU here), which is why it was chosen over BYOL (a second, moving-average
network: twice the memory) and masked-image modelling (built for transformers; on a ResNet it
needs sparse convolutions to avoid learning the mask).

The encoder is the detector itself, cut before the heads: ``build_retinanet(config)``'s input
transform (the same band normalisation, or stretch, as in detection) then its ``backbone``
(ResNet body + FPN). Its pyramid maps are average-pooled and the levels averaged into one
``fpn_channels`` vector, so the FPN learns too. The views are drawn with the box-free transforms
of :mod:`augment` (symmetries, crop-zoom, radiometric jitter, noise or blur) on empty targets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn
from torchvision.models.detection import RetinaNet

from augment import (
    D4,
    Brightness,
    Compose,
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    OneOf,
    RandomApply,
    RandomCropZoom,
    Transform,
)

PROJECTION = 256  # width of the projector's output (the paper: 2048 for ResNet-50)
PREDICTOR = 64  # bottleneck of the predictor (the paper: 512 = a quarter)


def view_transform() -> Transform:
    """The box-free augmentation that draws each view (stronger than detection's default)."""
    return Compose(
        [
            D4(),
            RandomApply(RandomCropZoom(0.6, 1.5, min_visible=0.5), p=0.8),
            RandomApply(Brightness(max_delta=0.4), p=0.8),
            RandomApply(Contrast(max_factor=0.4), p=0.8),
            RandomApply(Gamma(max_log_gamma=0.3), p=0.5),
            RandomApply(OneOf([GaussianNoise(max_sigma=0.1), GaussianBlur(max_sigma=1.5)]), p=0.5),
        ]
    )


def mlp(width_in: int, hidden: int, width_out: int, last_norm: bool) -> nn.Sequential:
    """Linear-BN-ReLU, then Linear (+ BN without affine for the projector, as the paper)."""
    layers: list[nn.Module] = [
        nn.Linear(width_in, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, width_out, bias=not last_norm),
    ]
    if last_norm:
        layers.append(nn.BatchNorm1d(width_out, affine=False))
    return nn.Sequential(*layers)


class SimSiam(nn.Module):
    """The detector's transform and backbone, a projector and a predictor.

    Args:
        detector: a RetinaNet of :func:`model.network.factory.build_retinanet`; its
            ``transform`` and ``backbone`` are used (shared, not copied).
    """

    def __init__(self, detector: RetinaNet) -> None:
        super().__init__()
        self.transform = detector.transform
        self.backbone = detector.backbone
        width = int(detector.backbone.out_channels)
        self.projector = mlp(width, PROJECTION, PROJECTION, last_norm=True)
        self.predictor = mlp(PROJECTION, PREDICTOR, PROJECTION, last_norm=False)

    def embed(self, images: Tensor) -> Tensor:
        """``FloatTensor[B, F]``: pyramid maps pooled and averaged, for images ``[B, C, T, T]``."""
        batch, _ = self.transform(list(images))
        features = self.backbone(batch.tensors)
        pooled = [nnf.adaptive_avg_pool2d(f, 1).flatten(1) for f in features.values()]
        return torch.stack(pooled).mean(0)

    def forward(self, view_a: Tensor, view_b: Tensor) -> Tensor:
        """The symmetric SimSiam loss of two views ``[B, C, T, T]`` (scalar in [-1, 1])."""
        z_a, z_b = self.projector(self.embed(view_a)), self.projector(self.embed(view_b))
        p_a, p_b = self.predictor(z_a), self.predictor(z_b)
        return (negative_cosine(p_a, z_b) + negative_cosine(p_b, z_a)) / 2


def negative_cosine(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean negative cosine similarity of ``[B, D]`` rows, the target detached (stop-gradient)."""
    return -nnf.cosine_similarity(prediction, target.detach(), dim=-1).mean()
