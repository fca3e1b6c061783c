"""Score thresholds chosen on validation, and a bootstrap interval of the validation mAP@50.

After a trial trains, its best checkpoint runs over the validation tiles
(:func:`view_detections`), in one pass and with the test-time views that prediction will use
(``tta``, default ``"flips"``: the notebook's and the CLI's), both from the same forward passes
(the identity view is the one pass). Fused views average their scores, so a threshold chosen on
one-pass scores does not suit them: on the few-labels benchmark's tree crowns (15-24 validation
crowns) it gave F1 0.40 on average where the views' own gave 0.47.

Each tile's detections are matched to its true objects greedily by decreasing score, COCO's rule
(a detection takes the unmatched true object of its label with the highest IoU >= 0.5), so the
detections above any threshold are a prefix of one ranked list with fixed hit flags, and every
threshold's precision and recall come from one cumulative sum:

- ``score_thresh_f1``: the score of the one-pass ranked detection where F1 is highest (a
  detection is kept when its score is >= the threshold); ``val/f1``, ``val/precision``,
  ``val/recall`` are taken there (not at the config's low ``score_thresh``, where the precision
  is poor);
- ``score_thresh_p70``: the lowest threshold whose precision is >= :data:`TARGET_PRECISION`
  (None when no threshold reaches it);
- ``score_thresh_f1@flips``, ``score_thresh_p70@flips`` (or ``@d4``): the same, with the views
  fused as prediction fuses them, and ``val/f1@flips``, ``val/precision@flips``,
  ``val/recall@flips`` there (what prediction with those views gives on validation);
- ``test/f1``, ``test/precision``, ``test/recall`` (when the store has test tiles): the same
  checkpoint over the test tiles in one pass at ``score_thresh_f1``, in place of Lightning's
  test-loop figures at the config's ``score_thresh`` (one pass, as ``test/map_50``: the views
  would cost 4-8 passes over the test tiles per trial; the notebook scores its whole-raster
  predictions, views included, on the test rasters);
- ``val/map_50_lo``, ``val/map_50_hi``: a 95 % percentile bootstrap interval of the mAP@50
  (COCO's 101-point interpolated AP per label, mean over labels), over :data:`RESAMPLES`
  resamples of the validation *tiles* with replacement (seeded). Tiles, not objects, are the
  unit: the objects of one tile share its image, and its false positives belong to it.

:func:`validation_report` does all of it and stores the thresholds in the checkpoint
(:func:`model.network.checkpoint.write_score_thresholds`, keys of
:func:`~model.network.checkpoint.threshold_key`), where ``predict_raster`` and
``raster-detect predict`` find the one of their views
(:func:`model.inference.predict.choose_score_thresh`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import box_iou

from model.config import ModelConfig
from model.inference.tta import TTA, fuse_windows, view_outputs
from model.network.checkpoint import load_model, threshold_key, write_score_thresholds
from model.training.datamodule import TileDataset, collate_tiles, fill_values
from tiling.store.interface import TileStoreLike

log = logging.getLogger(__name__)

IOU = 0.5
TARGET_PRECISION = 0.7
RESAMPLES = 200
RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCO's recall thresholds
THRESHOLD_NAMES = ("score_thresh_f1", "score_thresh_p70")


@dataclasses.dataclass(frozen=True)
class RankedDetections:
    """Detections of a set of tiles, greedily matched, by decreasing score.

    Attributes:
        scores: float64[D], descending; hits: bool[D] (matched a true object at IoU >= 0.5);
        labels: int64[D]; tiles: int64[D] index of each detection's tile in ``0..n_tiles-1``;
        truth_tiles: int64[G] tile index of each true object; truth_labels: int64[G];
        n_tiles: the number of tiles (empty ones included).
    """

    scores: np.ndarray
    hits: np.ndarray
    labels: np.ndarray
    tiles: np.ndarray
    truth_tiles: np.ndarray
    truth_labels: np.ndarray
    n_tiles: int


def greedy_hits(pred: dict[str, Tensor], target: dict[str, Tensor], iou: float = IOU) -> Tensor:
    """BoolTensor[D]: which detections of one tile match a true object (COCO's greedy rule).

    Args:
        pred: ``{"boxes" [D, 4] xyxy, "scores" [D], "labels" [D]}``.
        target: ``{"boxes" [G, 4] xyxy, "labels" [G]}``.
        iou: the least IoU of a match.
    """
    hits = torch.zeros(len(pred["boxes"]), dtype=torch.bool)
    if len(pred["boxes"]) == 0 or len(target["boxes"]) == 0:
        return hits
    overlap = box_iou(pred["boxes"].double().cpu(), target["boxes"].double().cpu())
    overlap[pred["labels"].cpu()[:, None] != target["labels"].cpu()[None, :]] = -1.0
    free = torch.ones(overlap.shape[1], dtype=torch.bool)
    for d in torch.argsort(pred["scores"].cpu(), descending=True, stable=True).tolist():
        row = torch.where(free, overlap[d], torch.full_like(overlap[d], -1.0))
        best = int(torch.argmax(row))
        if row[best] >= iou:
            hits[d], free[best] = True, False
    return hits


def rank_detections(
    preds: list[dict[str, Tensor]], targets: list[dict[str, Tensor]], iou: float = IOU
) -> RankedDetections:
    """Match every tile's detections (:func:`greedy_hits`) and rank them all by score."""
    hits = [greedy_hits(p, t, iou) for p, t in zip(preds, targets, strict=True)]
    empty = torch.zeros(0, dtype=torch.float64)  # exact for float32 scores and int labels

    def cat(key: str, items: list[dict[str, Tensor]]) -> np.ndarray:
        return torch.cat([empty, *(x[key].cpu().to(empty.dtype) for x in items)]).numpy()

    tiles = np.repeat(np.arange(len(preds)), [len(p["scores"]) for p in preds])
    scores = cat("scores", preds).astype(np.float64)
    order = np.argsort(-scores, kind="stable")
    return RankedDetections(
        scores=scores[order],
        hits=torch.cat(hits).numpy()[order] if hits else np.zeros(0, bool),
        labels=cat("labels", preds).astype(np.int64)[order],
        tiles=tiles[order],
        truth_tiles=np.repeat(np.arange(len(targets)), [len(t["labels"]) for t in targets]),
        truth_labels=cat("labels", targets).astype(np.int64),
        n_tiles=len(preds),
    )


def choose_thresholds(
    ranked: RankedDetections, target_precision: float = TARGET_PRECISION
) -> dict[str, float | None]:
    """The F1-best threshold and its P/R/F1; the lowest threshold with precision >= target.

    Only thresholds between distinct scores are considered (detections of equal score are kept
    or dropped together).

    Returns:
        ``{"score_thresh_f1", "f1", "precision", "recall", "score_thresh_p70"}``; thresholds are
        None (and the metrics 0) when there are no detections or no true objects.
    """
    none: dict[str, float | None] = {"score_thresh_f1": None, "score_thresh_p70": None}
    n_truth = len(ranked.truth_labels)
    if len(ranked.scores) == 0 or n_truth == 0:
        return {**none, "f1": 0.0, "precision": 0.0, "recall": 0.0}
    tp = np.cumsum(ranked.hits)
    kept = np.arange(1, len(tp) + 1)
    cut = np.r_[ranked.scores[1:] != ranked.scores[:-1], True]  # last of each run of ties
    precision, recall = tp / kept, tp / n_truth
    f1 = np.where(cut, 2 * tp / (kept + n_truth), -1.0)
    k = int(np.argmax(f1))
    reach = np.flatnonzero(cut & (precision >= target_precision))
    return {
        "score_thresh_f1": float(ranked.scores[k]),
        "f1": float(f1[k]),
        "precision": float(precision[k]),
        "recall": float(recall[k]),
        "score_thresh_p70": float(ranked.scores[reach[-1]]) if len(reach) else None,
    }


def map_50(ranked: RankedDetections, weights: np.ndarray | None = None) -> np.ndarray:
    """mAP@50 (COCO 101-point AP per label, mean over labels with true objects) per tile weighting.

    Args:
        ranked: the ranked detections.
        weights: float[R, n_tiles] how often each tile counts in each of R resamples (default:
            one row of ones, the plain value).

    Returns:
        float64[R]; NaN where no label has a true object.
    """
    w = np.ones((1, ranked.n_tiles)) if weights is None else np.asarray(weights, np.float64)
    per_label = [
        _ap_101(ranked, w, label) for label in np.unique(np.r_[ranked.truth_labels, ranked.labels])
    ]
    if not per_label:
        return np.full(len(w), np.nan)
    stacked = np.stack(per_label)  # [L, R], NaN where a resample holds no object of the label
    seen = ~np.isnan(stacked)
    total = np.where(seen, stacked, 0.0).sum(0)
    return np.where(seen.any(0), total / np.maximum(seen.sum(0), 1), np.nan)


def _ap_101(ranked: RankedDetections, w: np.ndarray, label: int) -> np.ndarray:
    """float64[R]: 101-point interpolated AP of one label under each row of tile weights."""
    mine = ranked.labels == label
    det_w = w[:, ranked.tiles[mine]]  # [R, D]
    tp = np.cumsum(det_w * ranked.hits[mine], axis=1)
    kept = np.cumsum(det_w, axis=1)
    n_truth = w[:, ranked.truth_tiles[ranked.truth_labels == label]].sum(1)  # [R]
    precision = np.divide(tp, kept, out=np.zeros_like(tp), where=kept > 0)
    envelope = np.flip(np.maximum.accumulate(np.flip(precision, 1), axis=1), 1)
    recall = tp / np.maximum(n_truth, 1e-12)[:, None]
    padded = torch.from_numpy(np.c_[envelope, np.zeros(len(w))])  # 0 beyond the last recall
    at = torch.searchsorted(
        torch.from_numpy(np.ascontiguousarray(recall)),
        torch.from_numpy(np.tile(RECALL_POINTS, (len(w), 1))),
    )
    ap = torch.gather(padded, 1, at).mean(1).numpy()
    return np.where(n_truth > 0, ap, np.nan)


def bootstrap_map_50(
    ranked: RankedDetections, resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """``(value, low, high)``: the mAP@50 and its percentile bootstrap interval over tiles.

    The interval is widened, if need be, to hold ``value`` (a skewed bootstrap can leave it out).
    """
    value = float(map_50(ranked)[0])
    if ranked.n_tiles == 0 or np.isnan(value):
        return value, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, ranked.n_tiles, size=(resamples, ranked.n_tiles))
    weights = np.stack([np.bincount(row, minlength=ranked.n_tiles) for row in draws])
    values = map_50(ranked, weights)
    values = values[~np.isnan(values)]
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail]) if len(values) else (value, value)
    return value, min(float(low), value), max(float(high), value)


def scores_at(ranked: RankedDetections, thresh: float) -> dict[str, float]:
    """Precision, recall and F1 of the detections scoring >= ``thresh`` (0 without any)."""
    n_truth = len(ranked.truth_labels)
    kept = ranked.scores >= thresh
    tp, n_kept = int(ranked.hits[kept].sum()), int(kept.sum())
    return {
        "precision": tp / n_kept if n_kept else 0.0,
        "recall": tp / n_truth if n_truth else 0.0,
        "f1": 2 * tp / (n_kept + n_truth) if n_kept + n_truth else 0.0,
    }


@torch.inference_mode()
def view_detections(
    checkpoint: str | Path,
    store: TileStoreLike,
    config: ModelConfig,
    device: str = "cpu",
    split: str = "val",
    tta: TTA | None = None,
) -> dict[TTA | None, RankedDetections]:
    """Run ``checkpoint``'s model over the store's ``split`` tiles, in one pass and with ``tta``.

    The views of ``tta`` run once; the identity view is the one pass, and the fused views get the
    NMS that prediction applies after fusion (:func:`model.inference.tta.detect_tiles`).

    Returns:
        ``{None: one-pass ranked detections}``, plus ``{tta: fused ranked detections}`` with
        ``tta``.
    """
    model, _ = load_model(checkpoint, map_location=device)
    nms_thresh = float(getattr(model, "nms_thresh", 0.5))
    ids = store.tiles.loc[store.tiles["split"] == split, "tile_id"].to_numpy(np.int64)
    dataset = TileDataset(store, ids, fill_values(config, store))
    found: dict[TTA | None, list[dict[str, Tensor]]] = {None: [], **({tta: []} if tta else {})}
    targets: list[dict[str, Tensor]] = []
    for start in range(0, len(dataset), config.batch_size):
        items = [dataset[i] for i in range(start, min(start + config.batch_size, len(dataset)))]
        images, batch_targets = collate_tiles(items)
        per_view = view_outputs(model, images.to(device), tta)
        found[None] += [{k: v.cpu() for k, v in p.items()} for p in per_view[0]]
        if tta:
            found[tta] += fuse_windows(per_view, nms_thresh)
        targets += batch_targets
    return {mode: rank_detections(preds, targets) for mode, preds in found.items()}


def validation_report(
    checkpoint: str | Path,
    store: TileStoreLike,
    config: ModelConfig,
    device: str = "cpu",
    tta: TTA | None = "flips",
) -> dict[str, Any]:
    """Thresholds, P/R/F1 at the F1-best one and the mAP@50 interval; thresholds stored.

    Args:
        checkpoint, store, config: the trial's best checkpoint, its tile store and config.
        device: where the model runs.
        tta: the views prediction will fuse (None: one pass only); their thresholds are stored
            beside the one-pass ones.

    Returns:
        The trial's columns ``score_thresh_f1``, ``score_thresh_p70``, ``val/f1``,
        ``val/precision``, ``val/recall`` (one pass, at ``score_thresh_f1``); with ``tta`` the
        same of its views, ``score_thresh_f1@<tta>``, ..., ``val/f1@<tta>``, ...;
        ``val/map_50_lo``, ``val/map_50_hi`` (one pass, as the val/map_50 of training) and, when
        the store has test tiles and a threshold was found, ``test/f1``, ``test/precision``,
        ``test/recall`` in one pass at ``score_thresh_f1`` (see the module docstring).
        ``checkpoint`` gains the thresholds.
    """
    by_mode = view_detections(checkpoint, store, config, device, "val", tta)
    chosen = {mode: choose_thresholds(ranked) for mode, ranked in by_mode.items()}
    thresholds = {
        threshold_key(name, mode): found[name]
        for mode, found in chosen.items()
        for name in THRESHOLD_NAMES
    }
    _, low, high = bootstrap_map_50(by_mode[None], seed=config.seed)
    write_score_thresholds(checkpoint, thresholds)
    log.info("validation: %s, mAP@50 interval [%.3f, %.3f]", chosen, low, high)
    metrics = {
        threshold_key(f"val/{k}", mode): found[k]
        for mode, found in chosen.items()
        for k in ("f1", "precision", "recall")
    }
    thresh = chosen[None]["score_thresh_f1"]
    if thresh is not None and (store.tiles["split"] == "test").any():
        tested = scores_at(view_detections(checkpoint, store, config, device, "test")[None], thresh)
        metrics.update({f"test/{k}": v for k, v in tested.items()})
    return {**thresholds, **metrics, "val/map_50_lo": low, "val/map_50_hi": high}


def trial_columns(
    checkpoint: str | Path | None,
    store: TileStoreLike,
    config: ModelConfig,
    accelerator: str,
    tta: TTA | None = "flips",
) -> dict[str, Any]:
    """:func:`validation_report` of a trial's best checkpoint (``{}`` when it has none).

    Args:
        checkpoint: the trial's best checkpoint path (``""`` or None when training failed).
        store, config: the trial's tile store and concrete config.
        accelerator: the RunConfig's; the model runs on CUDA when it allows and one is present.
        tta: the views of the predictions to come (see :func:`validation_report`).
    """
    if not checkpoint or not Path(checkpoint).is_file():
        return {}
    gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return validation_report(checkpoint, store, config, "cuda" if gpu else "cpu", tta)
