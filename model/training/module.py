"""``RetinaNetModule``: the LightningModule that trains, validates and tests a RetinaNet.

- training: one forward pass in train mode gives the losses (``classification``,
  ``bbox_regression``), logged per step as ``train/loss_classification``,
  ``train/loss_bbox_regression`` and their sum ``train/loss`` (its epoch mean as
  ``train/epoch_loss``);
- augmentation of whole batches on the device, in :meth:`on_after_batch_transfer`, training only
  (the ``config.augment`` recipe, :func:`augment.build_transform`);
- validation and test: ONE forward pass per batch in eval mode (detections; the model has no
  losses in eval mode, and a second pass only for them is not worth its cost), accumulated into
  :class:`model.training.metrics.DetectionMetrics` and logged once per epoch as ``val/map``,
  ``val/map_50``, ``val/map_75``, ``val/precision``, ``val/recall``, ``val/f1`` (``test/...``);
- optimiser and per-step learning-rate schedule from the config.

The config is stored as a plain dict (``checkpoint["hyper_parameters"]["config"]``), so
:func:`model.network.checkpoint.load_model` rebuilds the network from a checkpoint alone.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from augment import build_transform
from model.config import ModelConfig
from model.inference.tta import TTA, detect_tiles
from model.network.factory import build_retinanet
from model.training.datamodule import TileDataset
from model.training.metrics import DetectionMetrics
from tiling.errors import ConfigError
from tiling.store.interface import TileStoreLike

Batch = tuple[Tensor, list[dict[str, Tensor]]]
MIN_BOX_SIDE = 1e-2  # px; torchvision rejects boxes with x2 <= x1 or y2 <= y1
WARMUP_FRACTION = 0.05  # of the steps, linear warm-up before the cosine decay
MAX_WARMUP_STEPS = 500
FUSED_DEVICES = ("cpu", "cuda")  # where torch's fused AdamW/SGD kernels run


@contextlib.contextmanager
def hook_warning_silenced() -> Iterator[None]:
    """Inside: Lightning's note that ``on_after_batch_transfer`` is overridden goes unshown.

    The augmentation hook lives in the module on purpose (it needs the device and the training
    state); Lightning warns about that whenever a DataModule is used. The filter holds only for
    the ``with`` block (a fit or a test), never for the importing process.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule`"
        )
        yield


class RetinaNetModule(pl.LightningModule):
    """Lightning wrapper of ``build_retinanet(config)`` (kept as ``self.model``).

    Args:
        config: a concrete ModelConfig (anchors resolved: see ``model.network.data_settings.resolve_config``),
            or its ``to_dict()`` (as Lightning passes it back from a checkpoint).
        pr_score_thresh: score threshold of precision/recall/F1; default ``config.score_thresh``.
    """

    def __init__(
        self, config: ModelConfig | Mapping[str, Any], pr_score_thresh: float | None = None
    ) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            config = ModelConfig.from_dict(config)
        if config.anchor_sizes == "auto":
            raise ConfigError(
                'RetinaNetModule needs concrete anchors but config.anchor_sizes="auto"; resolve '
                "it first with model.network.data_settings.resolve_config(config, diameters, band_stats)."
            )
        self.config = config
        self.save_hyperparameters({"config": config.to_dict()})
        # channels-last weights: oneDNN (CPU) and tensor-core (CUDA) convolutions run channels-last;
        # measured on 2 CPU threads, resnet18/FPN-128, 8 x 256^2 tiles: 0.76 -> 0.57 s a step
        self.model = build_retinanet(config).to(memory_format=torch.channels_last)
        self.augmentation = build_transform(config.augment)
        thresh = config.score_thresh if pr_score_thresh is None else pr_score_thresh
        max_dets = config.detections_per_img
        self.val_metrics = DetectionMetrics(score_thresh=thresh, max_detections=max_dets)
        self.test_metrics = DetectionMetrics(score_thresh=thresh, max_detections=max_dets)
        self._generator: torch.Generator | None = None

    def forward(self, images: Tensor) -> list[dict[str, Tensor]]:
        """Detections (eval mode) of FloatTensor[B, C, T, T] images in raw units."""
        return self.model(list(images))

    # --- batches -------------------------------------------------------------------------------
    def generator(self, device: torch.device) -> torch.Generator:
        """The augmentation random generator on ``device`` (seeded with config.seed + rank)."""
        if self._generator is None or self._generator.device != device:
            seed = self.config.seed + 7919 * self.global_rank
            self._generator = torch.Generator(device=device).manual_seed(seed)
        return self._generator

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        """Augment training batches on the device; drop degenerate boxes from every batch."""
        images, targets = batch
        trainer = self._trainer
        if trainer is not None and trainer.training:
            images, targets = self.augmentation(images, targets, self.generator(images.device))
        return images, [drop_degenerate(t) for t in targets]

    # --- steps ---------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Sum of the focal classification loss and the box regression loss (one pass)."""
        images, targets = batch
        losses = self.model(list(images), targets)
        loss = losses["classification"] + losses["bbox_regression"]
        size = len(targets)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/epoch_loss", loss, on_step=False, on_epoch=True, batch_size=size)
        self.log("train/loss_classification", losses["classification"], batch_size=size)
        self.log("train/loss_bbox_regression", losses["bbox_regression"], batch_size=size)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Detections of one batch (one eval-mode pass) into the validation metrics."""
        images, targets = batch
        self.val_metrics.update(self.model(list(images)), targets)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        """Detections of one batch into the test metrics."""
        images, targets = batch
        self.test_metrics.update(self.model(list(images)), targets)

    def on_validation_epoch_end(self) -> None:
        """Log ``val/map``, ``val/map_50``, ``val/map_75``, ``val/precision|recall|f1``."""
        self._log_metrics("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        """Log the same metrics under ``test/``."""
        self._log_metrics("test", self.test_metrics)

    def _log_metrics(self, stage: str, metrics: DetectionMetrics) -> None:
        values = metrics.compute()  # already reduced over processes by torchmetrics
        metrics.reset()
        for key, value in values.items():
            # equal on every process: sync_dist's mean changes nothing (and silences a warning)
            self.log(f"{stage}/{key}", value, prog_bar=key == "map_50", sync_dist=True)

    # --- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        """The config's optimiser, and its scheduler stepped every batch."""
        optimizer = build_optimizer(self.parameters(), self.config)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = build_scheduler(optimizer, self.config, total)
        if scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def drop_degenerate(target: dict[str, Tensor]) -> dict[str, Tensor]:
    """The target without boxes narrower or lower than :data:`MIN_BOX_SIDE` pixels."""
    boxes = target["boxes"].reshape(-1, 4)
    keep = (boxes[:, 2] - boxes[:, 0] > MIN_BOX_SIDE) & (boxes[:, 3] - boxes[:, 1] > MIN_BOX_SIDE)
    if bool(keep.all()):
        return {"boxes": boxes, "labels": target["labels"]}
    return {"boxes": boxes[keep], "labels": target["labels"][keep]}


def build_optimizer(params: Iterable[nn.Parameter], config: ModelConfig) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum 0.9, at ``config.lr`` and ``config.weight_decay``.

    The fused implementation (one kernel over all parameters) where every parameter is a float
    tensor on the CPU or a CUDA GPU: torch's default on the CPU updates the parameters one by one,
    several passes each (AdamW's step of the default model, 13 M parameters: 1.75 s per-parameter
    against 0.83 s fused, measured on 2 loaded CPU threads, ``bench/train_step.py``'s machine).
    """
    trainable = [p for p in params if p.requires_grad]
    fused = bool(trainable) and all(
        p.is_floating_point() and p.device.type in FUSED_DEVICES for p in trainable
    )
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            trainable,
            lr=config.lr,
            momentum=0.9,
            nesterov=True,
            weight_decay=config.weight_decay,
            fused=fused or None,
        )
    return torch.optim.AdamW(
        trainable, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: ModelConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Per-step schedule over ``total_steps`` optimiser steps.

    - ``"none"``: constant ``lr``;
    - ``"cosine"``: linear warm-up from ``lr / 100`` over 5 % of the steps (at most 500), then
      cosine decay to 0;
    - ``"onecycle"``: ``OneCycleLR`` peaking at ``lr`` after 10 % of the steps.
    """
    sched = torch.optim.lr_scheduler
    if config.scheduler == "none":
        return None
    if config.scheduler == "onecycle":
        # one spare step: Lightning may step once more than it estimated
        return sched.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=total_steps + 1, pct_start=0.1
        )
    warmup = min(MAX_WARMUP_STEPS, int(WARMUP_FRACTION * total_steps))
    cosine = sched.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup))
    if warmup == 0:
        return cosine
    ramp = sched.LinearLR(optimizer, start_factor=0.01, total_iters=warmup)
    return sched.SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])


@torch.no_grad()
def predict_tiles(
    model: nn.Module | str | Path,
    store: TileStoreLike,
    split: str = "val",
    n: int = 8,
    *,
    device: str = "cpu",
    tta: TTA | None = None,
) -> tuple[Tensor, list[dict[str, Tensor]], list[dict[str, Tensor]]]:
    """Detections of a model on ``n`` tiles of a split (tiles with objects first, spread out).

    Args:
        model: a RetinaNet, a RetinaNetModule, or a checkpoint path (``load_model``).
        store: the tile store.
        split: "train", "val" or "test".
        n: number of tiles.
        device: where the model runs.
        tta: None (one pass), ``"flips"`` or ``"d4"``: the views fused as whole-raster
            prediction fuses them (:func:`model.inference.tta.detect_tiles`), so the scores
            match a threshold chosen for that mode.

    Returns:
        ``(images FloatTensor[n, C, T, T] raw units, predictions, targets)``: per tile
        ``{"boxes" [D, 4], "scores" [D], "labels" [D]}`` and ``{"boxes" [K, 4], "labels" [K]}``.
    """
    if isinstance(model, str | Path):
        from model.network.checkpoint import load_model

        net: nn.Module = load_model(model)[0]
    else:
        net = model.model if isinstance(model, RetinaNetModule) else model
    rows = store.tiles[store.tiles["split"] == split]
    with_boxes = rows[rows["n_boxes"] > 0]
    pool = with_boxes if len(with_boxes) >= n else rows
    picks = np.unique(np.linspace(0, len(pool) - 1, num=min(n, len(pool))).round().astype(int))
    ids = pool["tile_id"].to_numpy(np.int64)[picks]
    transform = getattr(net, "transform", None)
    mean = getattr(transform, "nodata_fill", getattr(transform, "image_mean", None))
    fill = list(mean) if mean is not None else [float(v) for v in store.band_stats["mean"]]
    dataset = TileDataset(store, ids, fill)
    images = torch.stack([dataset.image(i) for i in range(len(dataset))])
    targets = [dataset.target(i) for i in range(len(dataset))]
    net = net.to(device).eval()
    found = detect_tiles(net, images.to(device), tta, float(getattr(net, "nms_thresh", 0.5)))
    preds = [{k: v.cpu() for k, v in p.items()} for p in found]
    return images, preds, targets
