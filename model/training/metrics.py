"""Detection metrics of a validation/test loop: COCO mAP, and P/R/F1 at one IoU and score.

:class:`DetectionMetrics` wraps torchmetrics' ``MeanAveragePrecision`` (backend
``faster_coco_eval`` where it imports, else ``pycocotools``) and :class:`MatchCounts`, which
counts true positives, false positives and false negatives at IoU >= 0.5 among the detections
scoring at least ``score_thresh``. Both hold summable states, so they reduce correctly across
DDP processes.

Matching (:func:`match_detections`) is one-to-one within a class and an image, and *optimal*: it
maximises the number of pairs with IoU >= ``iou_thresh`` (ties broken by the larger total IoU),
with ``scipy.optimize.linear_sum_assignment`` on the IoU matrix of each image. A greedy
score-ordered matching (COCO's) can leave a true object unmatched when a higher-scoring detection
takes it from a detection that had no other partner; the optimal one cannot.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Literal

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.detection import MeanAveragePrecision
from torchvision.ops import box_iou

from tiling.errors import ConfigError

Detections = dict[str, Tensor]


def map_backend() -> Literal["faster_coco_eval", "pycocotools"]:
    """``"faster_coco_eval"`` when that package imports, else ``"pycocotools"``."""
    return "faster_coco_eval" if importlib.util.find_spec("faster_coco_eval") else "pycocotools"


def match_detections(
    pred_boxes: Tensor,
    pred_labels: Tensor,
    true_boxes: Tensor,
    true_labels: Tensor,
    iou_thresh: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """One-to-one matching of one image's detections to its true objects.

    Args:
        pred_boxes: FloatTensor[D, 4], xyxy pixels.
        pred_labels: LongTensor[D].
        true_boxes: FloatTensor[G, 4], xyxy pixels.
        true_labels: LongTensor[G].
        iou_thresh: a pair counts when its IoU is at least this (and the labels agree).

    Returns:
        ``(pred_matched BoolTensor[D], true_matched BoolTensor[G])`` on the inputs' device; both
        have the same number of True values (the true positives).
    """
    pred_hit = torch.zeros(len(pred_boxes), dtype=torch.bool, device=pred_boxes.device)
    true_hit = torch.zeros(len(true_boxes), dtype=torch.bool, device=true_boxes.device)
    if len(pred_boxes) == 0 or len(true_boxes) == 0:
        return pred_hit, true_hit
    iou = box_iou(pred_boxes.float(), true_boxes.float())
    valid = (iou >= iou_thresh) & (pred_labels[:, None] == true_labels[None, :])
    if not bool(valid.any()):
        return pred_hit, true_hit
    # each valid pair is worth more than any sum of IoUs: maximise the count, then the IoU
    gain = torch.where(valid, iou + 1.0 + min(iou.shape), torch.zeros_like(iou))
    rows, cols = linear_sum_assignment(gain.cpu().numpy(), maximize=True)
    rows_t = torch.as_tensor(rows, device=pred_boxes.device)
    cols_t = torch.as_tensor(cols, device=pred_boxes.device)
    keep = valid[rows_t, cols_t]
    pred_hit[rows_t[keep]] = True
    true_hit[cols_t[keep]] = True
    return pred_hit, true_hit


class MatchCounts(Metric):
    """True/false positives and false negatives at ``iou_thresh`` and ``score_thresh``.

    ``compute()`` returns ``{"precision", "recall", "f1"}`` (0 when undefined) as 0-d tensors.
    """

    full_state_update = False
    tp: Tensor
    fp: Tensor
    fn: Tensor

    def __init__(self, score_thresh: float = 0.5, iou_thresh: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= score_thresh <= 1.0 or not 0.0 < iou_thresh <= 1.0:
            raise ConfigError(
                f"MatchCounts(score_thresh={score_thresh}, iou_thresh={iou_thresh}): use a score "
                "threshold in [0, 1] and an IoU threshold in (0, 1]."
            )
        self.score_thresh = float(score_thresh)
        self.iou_thresh = float(iou_thresh)
        for name in ("tp", "fp", "fn"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Sequence[Detections], targets: Sequence[Detections]) -> None:
        """Add one batch: per image ``boxes``/``scores``/``labels`` and ``boxes``/``labels``."""
        for pred, target in zip(preds, targets, strict=True):
            keep = pred["scores"] >= self.score_thresh
            p_hit, t_hit = match_detections(
                pred["boxes"][keep],
                pred["labels"][keep],
                target["boxes"],
                target["labels"],
                self.iou_thresh,
            )
            tp = int(p_hit.sum())
            self.tp += tp
            self.fp += len(p_hit) - tp
            self.fn += len(t_hit) - tp

    def compute(self) -> dict[str, Tensor]:
        """Precision tp/(tp+fp), recall tp/(tp+fn), F1 their harmonic mean."""
        tp, fp, fn = (x.double() for x in (self.tp, self.fp, self.fn))
        precision = tp / (tp + fp) if tp + fp > 0 else torch.zeros((), dtype=torch.double)
        recall = tp / (tp + fn) if tp + fn > 0 else torch.zeros((), dtype=torch.double)
        denom = precision + recall
        f1 = 2 * precision * recall / denom if denom > 0 else torch.zeros((), dtype=torch.double)
        return {"precision": precision.float(), "recall": recall.float(), "f1": f1.float()}


class DetectionMetrics(nn.Module):
    """mAP (COCO, IoU 0.50:0.95), mAP@50, mAP@75 and P/R/F1 at IoU 0.5 and ``score_thresh``.

    mAP counts up to ``max(100, max_detections)`` detections per image (COCO: 100; dense
    fields of small objects need the model's ``detections_per_img``). Use:
    ``update(preds, targets)`` per batch, ``compute()`` once per epoch, then ``reset()``.
    """

    KEYS = ("map", "map_50", "map_75")

    def __init__(
        self, score_thresh: float = 0.5, iou_thresh: float = 0.5, max_detections: int = 100
    ) -> None:
        super().__init__()
        self.map = MeanAveragePrecision(
            iou_type="bbox",
            backend=map_backend(),
            max_detection_thresholds=[1, 10, max(100, int(max_detections))],
        )
        self.counts = MatchCounts(score_thresh, iou_thresh)

    def update(self, preds: Sequence[Detections], targets: Sequence[Detections]) -> None:
        """Add a batch (the tensors stay on their device)."""
        plain = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        self.map.update(list(preds), plain)
        self.counts.update(preds, plain)

    def compute(self) -> dict[str, float]:
        """``{"map", "map_50", "map_75", "precision", "recall", "f1"}`` as floats.

        mAP values are -1 when no true object was seen (COCO's convention), then set to 0.
        """
        maps = self.map.compute()
        out = {k: max(float(maps[k]), 0.0) for k in self.KEYS}
        out.update({k: float(v) for k, v in self.counts.compute().items()})
        return out

    def reset(self) -> None:
        """Clear the accumulated batches."""
        self.map.reset()
        self.counts.reset()
