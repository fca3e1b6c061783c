"""RetinaNet post-processing for a whole batch at once: one top-k per level, one batched NMS.

torchvision's ``RetinaNet.postprocess_detections`` loops over the images of a batch and, inside,
over the pyramid levels: per image and level a sigmoid, a threshold, a ``torch.where`` (a
host-device synchronisation on a GPU), a top-k, a decode and a clip; then one NMS per image. With
B images and L levels that is B x L small steps and B x (L + 1) synchronisations per batch.
:func:`batched_detections` computes the same detections with L steps over the batch: the scores
below the threshold are masked rather than removed (so every image keeps the same shape), the
top-k runs along the batch's second axis for as many candidates as the fullest image has, and a
single ``batched_nms`` separates images and labels by its group index. :class:`BatchedRetinaNet`
is torchvision's RetinaNet with this post-processing; :func:`model.network.factory.build_retinanet` builds it.

Same detections: the same candidates per level (the ``topk_candidates`` best scores above
``score_thresh``), the same decoded and clipped boxes, the same NMS per image and label, the first
``detections_per_img`` per image by decreasing score. Only the order of exactly equal scores may
differ. ``tests/model/network/test_postprocess.py`` compares both on random heads and on a window
of a real raster.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.profiler import record_function
from torchvision.models.detection import RetinaNet
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import batched_nms

Detections = list[dict[str, Tensor]]


def level_candidates(
    logits: Tensor, regression: Tensor, anchors: Tensor, box_coder: BoxCoder, topk: int,
    score_thresh: float,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """The best ``topk`` (anchor, label) pairs of one level for every image, decoded.

    Args:
        logits: ``FloatTensor[B, A, K]`` class logits of the level's A anchors.
        regression: ``FloatTensor[B, A, 4]`` box offsets.
        anchors: ``FloatTensor[B, A, 4]`` xyxy px.
        box_coder: the model's BoxCoder.
        topk: most candidates per image.
        score_thresh: candidates must score above it.

    Returns:
        ``(boxes [B, k, 4] xyxy px, scores [B, k], labels [B, k])``, ``k`` = the most
        candidates above ``score_thresh`` of an image, at most ``topk`` (0 when none is above);
        an image with fewer candidates is padded with scores of -1.
    """
    n_classes = logits.shape[-1]
    scores = torch.sigmoid(logits).flatten(1)
    above = scores > score_thresh
    k = min(topk, int(above.sum(1).max()))  # the one synchronisation of the level
    top, index = scores.masked_fill(~above, -1.0).topk(k, dim=1)
    anchor = (index // n_classes).unsqueeze(-1).expand(-1, -1, 4)
    deltas, bases = regression.gather(1, anchor), anchors.gather(1, anchor)
    boxes = box_coder.decode_single(deltas.reshape(-1, 4), bases.reshape(-1, 4))
    return boxes.view(deltas.shape), top, index % n_classes


def clip_to_images(boxes: Tensor, image_shapes: list[tuple[int, int]]) -> Tensor:
    """``boxes`` [B, N, 4] xyxy clipped to each image's ``(height, width)``."""
    sizes = torch.tensor(image_shapes, dtype=boxes.dtype, device=boxes.device)  # [B, 2] (h, w)
    limits = sizes.flip(1).repeat(1, 2).unsqueeze(1)  # [B, 1, 4] (w, h, w, h)
    return torch.minimum(boxes.clamp(min=0), limits)


def first_per_image(keep: Tensor, image: Tensor, n_images: int, limit: int) -> list[Tensor]:
    """Split ``keep`` (indices by decreasing score) per image, at most ``limit`` each.

    Args:
        keep: ``LongTensor[M]`` indices of kept candidates, by decreasing score.
        image: ``LongTensor[M]`` image of each kept candidate.
        n_images: B.
        limit: most detections per image.

    Returns:
        B tensors of indices, each by decreasing score.
    """
    order = torch.sort(image, stable=True).indices
    keep, image = keep[order], image[order]
    counts = torch.bincount(image, minlength=n_images)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(keep), device=keep.device) - starts[image]
    kept = rank < limit
    return list(keep[kept].split(counts.clamp(max=limit).tolist()))


def batched_detections(
    head_outputs: dict[str, list[Tensor]],
    anchors: list[list[Tensor]],
    image_shapes: list[tuple[int, int]],
    model: RetinaNet,
) -> Detections:
    """Detections of a batch, as ``RetinaNet.postprocess_detections`` returns them.

    Args:
        head_outputs: ``cls_logits`` (per level ``[B, A_l, K]``) and ``bbox_regression`` (per
            level ``[B, A_l, 4]``).
        anchors: per image, per level ``FloatTensor[A_l, 4]`` xyxy px.
        image_shapes: per image ``(height, width)`` px.
        model: supplies ``box_coder``, ``score_thresh``, ``nms_thresh``, ``topk_candidates`` and
            ``detections_per_img``.

    Returns:
        Per image ``boxes`` FloatTensor[D, 4] xyxy px, ``scores`` [D], ``labels`` LongTensor[D],
        by decreasing score.
    """
    per_level = zip(*anchors, strict=True)  # per level, one [A_l, 4] per image
    levels = zip(
        head_outputs["cls_logits"], head_outputs["bbox_regression"], per_level, strict=True
    )
    parts = [
        level_candidates(logits, deltas, torch.stack(base), model.box_coder,
                         model.topk_candidates, model.score_thresh)
        for logits, deltas, base in levels
    ]  # fmt: skip
    boxes, scores, labels = (torch.cat(p, dim=1) for p in zip(*parts, strict=True))
    boxes = clip_to_images(boxes, image_shapes)
    image = torch.arange(len(image_shapes), device=boxes.device).unsqueeze(1).expand_as(scores)
    valid = scores > model.score_thresh
    boxes, scores, labels, image = boxes[valid], scores[valid], labels[valid], image[valid]
    n_classes = head_outputs["cls_logits"][0].shape[-1]
    keep = batched_nms(boxes, scores, image * n_classes + labels, model.nms_thresh)
    per_image = first_per_image(keep, image[keep], len(image_shapes), model.detections_per_img)
    return [{"boxes": boxes[i], "scores": scores[i], "labels": labels[i]} for i in per_image]


class BatchedRetinaNet(RetinaNet):
    """torchvision's RetinaNet whose post-processing is :func:`batched_detections`."""

    def postprocess_detections(
        self,
        head_outputs: dict[str, list[Tensor]],
        anchors: list[list[Tensor]],
        image_shapes: list[tuple[int, int]],
    ) -> Detections:
        """Detections of a batch (see :func:`batched_detections`)."""
        with record_function("postprocess.batched"):
            return batched_detections(head_outputs, anchors, image_shapes, self)
