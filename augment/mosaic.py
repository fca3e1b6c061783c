"""Mosaic: four tiles of the batch in the four quadrants of one (object-level augmentation).

YOLOv4's mosaic shrinks four images into one canvas; here nothing is resampled, because the
objects of this project have a scale that the anchors are fitted to: a random centre ``(cx, cy)``
(``centre`` range, a fraction of the side) splits the output tile into four rectangles, and each
rectangle shows the *same pixels* of its own source tile (top-left: the image itself; the three
others: images of the batch drawn uniformly). Each source's boxes are clipped to its rectangle
and kept when at least ``min_visible`` of their area is left (``visible`` multiplied by that
fraction when the targets carry it; ``diameter``, ``width``, ``height`` keep the object's size).

The result mixes tiles from different places and contexts (and, from a multi-raster store,
different rasters) in every batch. Like copy-paste, it reads other images of the batch, so an
image transformed alone gets four pieces of itself back (the identity).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from augment.base import PackedTargets, Params, Transform, rand, uniform
from tiling.errors import ConfigError


@dataclass
class Mosaic(Transform):
    """Four tiles of the batch in the quadrants of each output tile, split at a random centre.

    Attributes:
        centre: (min, max) of the split point as a fraction of the side, per axis.
        min_visible: a clipped box is kept when at least this fraction of its area remains.
    """

    centre: tuple[float, float] = (0.25, 0.75)
    min_visible: float = 0.5
    name: ClassVar[str] = "mosaic"

    def __post_init__(self) -> None:
        self.centre = (float(self.centre[0]), float(self.centre[1]))
        if not 0 < self.centre[0] <= self.centre[1] < 1:
            raise ConfigError(
                f"mosaic centre={list(self.centre)} is invalid; use (min, max) with "
                "0 < min <= max < 1"
            )
        if not 0 < self.min_visible <= 1:
            raise ConfigError(f"mosaic min_visible={self.min_visible} must be in (0, 1]")

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        channels: int = 1,
        size: tuple[int, int] | None = None,
    ) -> Params:
        """``centre`` [B, 2] (fractions x, y) and ``others`` [B, 3] in [0, 1) (source images)."""
        lo, hi = self.centre
        return {
            "centre": uniform(lo, hi, [batch_size, 2], generator),
            "others": rand([batch_size, 3], generator),
        }

    def apply_packed(
        self, images: Tensor, targets: PackedTargets, params: Params
    ) -> tuple[Tensor, PackedTargets]:
        """Assemble the quadrants (one masked copy per quadrant) and clip the boxes."""
        b, _, height, width = images.shape
        own = torch.arange(b, device=images.device)[:, None]
        others = (params["others"] * b).long().clamp_max(b - 1)
        sources = torch.cat([own, others], dim=1)  # [B, 4]: top-left, top-right, bottom-l., -r.
        cx = (params["centre"][:, 0] * width).round()
        cy = (params["centre"][:, 1] * height).round()
        rects = quadrants(cx, cy, width, height)  # [B, 4, 4] xyxy
        out = torch.empty_like(images)
        xs = torch.arange(width, device=images.device)
        ys = torch.arange(height, device=images.device)
        for q in range(4):
            r = rects[:, q]
            inx = (xs[None] >= r[:, 0:1]) & (xs[None] < r[:, 2:3])  # [B, W]
            iny = (ys[None] >= r[:, 1:2]) & (ys[None] < r[:, 3:4])  # [B, H]
            mask = (iny[:, :, None] & inx[:, None, :])[:, None]  # [B, 1, H, W]
            out = torch.where(mask, images[sources[:, q]], out)
        return out, clip_to_quadrants(targets, sources, rects, self.min_visible)


def quadrants(cx: Tensor, cy: Tensor, width: int, height: int) -> Tensor:
    """The four rectangles ``[B, 4, 4]`` (xyxy px) around centres ``cx[B]``, ``cy[B]``."""
    zero, w = torch.zeros_like(cx), torch.full_like(cx, float(width))
    h = torch.full_like(cy, float(height))
    return torch.stack(
        [
            torch.stack([zero, zero, cx, cy], -1),
            torch.stack([cx, zero, w, cy], -1),
            torch.stack([zero, cy, cx, h], -1),
            torch.stack([cx, cy, w, h], -1),
        ],
        dim=1,
    )


def clip_to_quadrants(
    targets: PackedTargets, sources: Tensor, rects: Tensor, min_visible: float
) -> PackedTargets:
    """The boxes of each output image: its sources' boxes clipped to their rectangles.

    Args:
        targets: the input boxes (``N``).
        sources: ``LongTensor[B, 4]``, the source image of each quadrant.
        rects: ``[B, 4, 4]`` xyxy rectangles.
        min_visible: kept when the clipped area is at least this fraction of the box's.
    """
    b = sources.shape[0]
    pairs = (sources.reshape(b * 4, 1) == targets.batch[None]).nonzero()  # (quadrant, box)
    slot, n = pairs[:, 0], pairs[:, 1]
    rect = rects.reshape(b * 4, 4)[slot]
    boxes = targets.boxes[n]
    clipped = torch.cat(
        [torch.maximum(boxes[:, :2], rect[:, :2]), torch.minimum(boxes[:, 2:], rect[:, 2:])], 1
    )
    side = (clipped[:, 2:] - clipped[:, :2]).clamp_min(0)
    full = (boxes[:, 2:] - boxes[:, :2]).prod(1).clamp_min(1e-12)
    fraction = side.prod(1) / full
    keep = (fraction >= min_visible) & (side > 0).all(1)
    batch = slot // 4
    order = torch.argsort(batch[keep], stable=True)
    fields = {k: v[n][keep][order] for k, v in targets.fields.items()}
    if "visible" in fields:
        fields["visible"] = fields["visible"] * fraction[keep][order].to(fields["visible"].dtype)
    return dataclasses.replace(
        targets,
        boxes=clipped[keep][order],
        labels=targets.labels[n][keep][order],
        batch=batch[keep][order],
        fields=fields,
    )
