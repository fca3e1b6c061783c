"""Test-time augmentation: the dihedral views of a window batch, mapped back and fused.

A *view* is a square window seen transposed or not, then mirrored left-right or not, then
upside-down or not: the 8 combinations are the dihedral group D4 (every rotation by a multiple of
90 degrees, with or without a mirror); the 4 without the transpose are the flips. Every view is
its own kind of exact pixel permutation of a ``T x T`` window, so a box maps back exactly: pixel
column ``x`` covers ``[x, x + 1)``, and a mirror maps the continuous coordinate ``x`` to ``T - x``;
a transpose swaps ``x`` and ``y``.

**Fusion: score-averaged clustering.** The boxes of all views of one window, back in the window's
frame, are clustered per label: the highest-scoring box still free opens a cluster, and from each
view it takes the highest-scoring free box of its label whose IoU with the opener is at least
:data:`CLUSTER_IOU` (at most one box per view: a view's own NMS already decided that two of its
boxes are two objects). The fused box is the score-weighted mean of the members; the fused score
is the sum of the members' scores divided by the number of views, i.e. the mean over views with a
zero for each view that missed the object. We chose this over weighted box fusion's
``mean score * min(members, views) / views`` because both coincide when every view sees an object
once, and with one box per view the plain average is simpler to reason about: an object found in
one view of eight at 0.8 scores 0.1, one found in all eight at 0.6 scores 0.6. Scores are thus
averaged probabilities, and the score threshold that suits TTA differs from the one without it
(choose it on validation data). The views run at the model's own low threshold, and the caller
filters the fused scores.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms, box_iou

from tiling.errors import ConfigError

TTA = Literal["flips", "d4"]
#: IoU with a cluster's opener that makes a box of another view a member.
CLUSTER_IOU = 0.55


class View(NamedTuple):
    """One dihedral view: transpose first, then mirror along x (columns), then along y (rows)."""

    transpose: bool
    flip_x: bool
    flip_y: bool


def views(tta: TTA | None) -> list[View]:
    """The views of a TTA mode: the identity alone (None), 4 (``"flips"``) or 8 (``"d4"``).

    Raises:
        ConfigError: an unknown mode.
    """
    if tta not in (None, "flips", "d4"):
        raise ConfigError(
            f"tta={tta!r} is not a test-time augmentation; use None, 'flips' or 'd4'."
        )
    transposes = (False, True) if tta == "d4" else (False,)
    flips = (False, True) if tta else (False,)
    return [View(t, fx, fy) for t in transposes for fx in flips for fy in flips]


def view_images(images: Tensor, view: View) -> Tensor:
    """``images`` FloatTensor[B, C, T, T] seen in ``view`` (same shape)."""
    out = images.transpose(-1, -2) if view.transpose else images
    dims = [d for d, on in ((-1, view.flip_x), (-2, view.flip_y)) if on]
    return out.flip(dims) if dims else out


def boxes_to_view(boxes: Tensor, view: View, size: int) -> Tensor:
    """Boxes FloatTensor[N, 4] xyxy of a ``size`` x ``size`` window, in the frame of ``view``."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    if view.transpose:
        x1, y1, x2, y2 = y1, x1, y2, x2
    if view.flip_x:
        x1, x2 = size - x2, size - x1
    if view.flip_y:
        y1, y2 = size - y2, size - y1
    return torch.stack([x1, y1, x2, y2], -1)


def boxes_from_view(boxes: Tensor, view: View, size: int) -> Tensor:
    """The inverse of :func:`boxes_to_view`: boxes found in ``view`` in the window's frame."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    if view.flip_y:
        y1, y2 = size - y2, size - y1
    if view.flip_x:
        x1, x2 = size - x2, size - x1
    if view.transpose:
        x1, y1, x2, y2 = y1, x1, y2, x2
    return torch.stack([x1, y1, x2, y2], -1)


def view_outputs(
    model: nn.Module, images: Tensor, tta: TTA | None
) -> list[list[dict[str, Tensor]]]:
    """Every view's detections of a batch, mapped back to the windows' frame (not fused).

    Args:
        model: torchvision-style detector in eval mode (list of FloatTensor[C, T, T] -> list of
            ``{"boxes" [D, 4], "scores" [D], "labels" [D]}``).
        images: FloatTensor[B, C, T, T] windows (square).
        tta: None (the identity view alone), ``"flips"`` (4 views) or ``"d4"`` (8 views).

    Returns:
        Per view, in the order of :func:`views` (the identity first, so ``[0]`` is the plain
        one-pass output), per window ``{"boxes" [D, 4] xyxy window px, "scores" [D],
        "labels" [D]}``.
    """
    size = int(images.shape[-1])
    per_view = []
    for view in views(tta):
        outputs = model(list(view_images(images, view)))
        per_view.append(
            [{**out, "boxes": boxes_from_view(out["boxes"], view, size)} for out in outputs]
        )
    return per_view


def fuse_windows(
    per_view: list[list[dict[str, Tensor]]], nms_thresh: float | None = None
) -> list[dict[str, Tensor]]:
    """Fuse :func:`view_outputs` window by window (:func:`fuse_views` over all its views).

    Args:
        per_view: per view, per window, detections in the window's frame.
        nms_thresh: when given, one NMS per label at this IoU after fusion, the one that
            whole-raster prediction applies after its merge (clusters may still overlap).

    Returns:
        Per window ``{"boxes" FloatTensor[K, 4], "scores" [K], "labels" [K]}``.
    """
    fused = [fuse_views(list(window), len(per_view)) for window in zip(*per_view, strict=True)]
    if nms_thresh is None:
        return fused
    out = []
    for pred in fused:
        keep = batched_nms(pred["boxes"], pred["scores"], pred["labels"], nms_thresh)
        out.append({k: v[keep] for k, v in pred.items()})
    return out


def detect_views(model: nn.Module, images: Tensor, tta: TTA) -> list[dict[str, Tensor]]:
    """Fused detections of every window of a batch over the views of ``tta``.

    Args:
        model, images: as for :func:`view_outputs`.
        tta: ``"flips"`` (4 views) or ``"d4"`` (8 views).

    Returns:
        Per window ``{"boxes" FloatTensor[K, 4] xyxy window px, "scores" [K], "labels" [K]}``.
    """
    return fuse_windows(view_outputs(model, images, tta))


def detect_tiles(
    model: nn.Module, images: Tensor, tta: TTA | None, nms_thresh: float
) -> list[dict[str, Tensor]]:
    """Detections of whole tiles, one pass (``tta=None``) or fused views, as prediction makes them.

    With ``tta`` the fused boxes of each tile get one NMS per label at ``nms_thresh``, the one
    that whole-raster prediction applies after fusion (clusters may still overlap).

    Args:
        model, images: as for :func:`view_outputs`.
        tta: None, ``"flips"`` or ``"d4"``.
        nms_thresh: IoU of the NMS after fusion.

    Returns:
        Per tile ``{"boxes" [K, 4] xyxy tile px, "scores" [K], "labels" [K]}``.
    """
    if tta is None:
        return list(model(list(images)))
    return fuse_windows(view_outputs(model, images, tta), nms_thresh)


def fuse_views(
    outputs: list[dict[str, Tensor]], n_views: int, iou: float = CLUSTER_IOU
) -> dict[str, Tensor]:
    """Fuse one window's detections from several views (module docstring: the rule).

    Args:
        outputs: per view ``{"boxes" [D, 4] xyxy in the window's frame, "scores" [D],
            "labels" [D]}``.
        n_views: the number of views that ran (the divisor of the fused score).
        iou: IoU with a cluster's opener that makes a box a member.

    Returns:
        ``{"boxes" FloatTensor[K, 4], "scores" FloatTensor[K], "labels" LongTensor[K]}`` by
        decreasing score.
    """
    boxes = torch.cat([o["boxes"].double() for o in outputs]).cpu()  # exact means of equal boxes
    scores = torch.cat([o["scores"].double() for o in outputs]).cpu()
    labels = torch.cat([o["labels"] for o in outputs]).cpu()
    view_of = torch.cat([torch.full((len(o["boxes"]),), k) for k, o in enumerate(outputs)])
    order = torch.argsort(scores, descending=True, stable=True)
    boxes, scores, labels, view_of = boxes[order], scores[order], labels[order], view_of[order]
    near = (box_iou(boxes, boxes) >= iou) & (labels[:, None] == labels[None, :])
    near.fill_diagonal_(True)  # a degenerate box (IoU 0/0 with itself) still opens a cluster
    free = torch.ones(len(boxes), dtype=torch.bool)
    fused: list[tuple[Tensor, Tensor, Tensor]] = []
    for opener in range(len(boxes)):
        if not free[opener]:
            continue
        members = _cluster(torch.nonzero(near[opener] & free).flatten(), view_of, n_views)
        free[members] = False
        weights = scores[members]
        box = (boxes[members] * weights[:, None]).sum(0) / weights.sum().clamp(min=1e-12)
        fused.append((box, weights.sum() / n_views, labels[opener]))
    if not fused:
        return {
            "boxes": boxes.reshape(0, 4).float(),
            "scores": scores[:0].float(),
            "labels": labels[:0],
        }
    out_boxes, out_scores, out_labels = (torch.stack(t) for t in zip(*fused, strict=True))
    rank = torch.argsort(out_scores, descending=True, stable=True)
    return {
        "boxes": out_boxes[rank].float(),
        "scores": out_scores[rank].float(),
        "labels": out_labels[rank],
    }


def _cluster(candidates: Tensor, view_of: Tensor, n_views: int) -> Tensor:
    """The first (highest-scoring) candidate of each view; ``candidates`` ascend in rank."""
    first = torch.full((n_views,), len(view_of), dtype=torch.long)
    first = first.scatter_reduce(0, view_of[candidates], candidates, "amin")
    return first[first < len(view_of)]
