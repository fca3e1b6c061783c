"""``pretrain_backbone``: SimSiam on a tile store's unlabelled pixels; a weights file for the grid.

The tiles come from the store's ``train`` and ``val`` splits by default. The objective sees no
label, so pretraining on validation pixels leaks no label into the trial selection, and it gives
the encoder the most pixels a small data set has; the ``test`` split stays out, so the test
score remains that of pixels the network never saw, like a new raster's.

The weights file holds the detector's ``backbone.*`` tensors (ResNet body and FPN) under their
detector names, so :func:`model.network.factory.load_weights` loads every backbone tensor of a
detector of the same ``backbone``, ``norm``, ``fpn_channels``, ``stride4`` and ``in_channels``
(``ModelConfig.weights``), and leaves the heads at their initialisation.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from model.config import ModelConfig
from model.network.factory import build_retinanet
from model.pretrain.simsiam import SimSiam, view_transform
from model.training.datamodule import fill_values
from model.training.grid import trial_config
from tiling.atomic import atomic_write
from tiling.errors import ConfigError
from tiling.store.interface import TileStoreLike

log = logging.getLogger(__name__)
PREFIX = "backbone."


def pretrain_backbone(
    store: TileStoreLike,
    config: ModelConfig,
    path: str | Path,
    *,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    splits: Sequence[str] = ("train", "val"),
) -> Path | None:
    """Train the backbone and FPN of ``config``'s detector with SimSiam; save their weights.

    Args:
        store: the tile store (its band statistics normalise the input as in detection).
        config: the grid's base config (``backbone``, ``norm``, ``fpn_channels``, ``stride4``,
            ``input_stretch``, ``seed``; the tile size and bands are the store's).
        path: the weights file to write (atomically).
        steps: optimiser steps; 0 skips pretraining and returns None.
        batch_size: tiles per step (two views each); at least 2 (batch norm in the projector).
        lr: AdamW learning rate (cosine decay over the steps).
        splits: the store splits whose tiles are used.

    Returns:
        ``path``, or None when ``steps`` is 0.

    Raises:
        ConfigError: a negative step count, a batch below 2, or no tile in ``splits``.
    """
    if steps < 0 or batch_size < 2:
        raise ConfigError(
            f"pretraining needs steps >= 0 and batch_size >= 2, got steps={steps}, "
            f"batch_size={batch_size}; set pretrain_steps to 0 to skip it"
        )
    if steps == 0:
        return None
    ids = np.concatenate([np.zeros(0, np.int64), *(store.split_ids(s) for s in splits)])
    if len(ids) == 0:
        raise ConfigError(f"the tile store {store} has no tile in the splits {list(splits)}")
    detector_config = concrete(config, store).replace(weights=None)
    torch.manual_seed(config.seed)  # the initialisation, as a trial seeds it
    detector = build_retinanet(detector_config)
    model = SimSiam(detector).to(memory_format=torch.channels_last)
    model.train()
    start = time.perf_counter()
    fill = torch.tensor(fill_values(detector_config, store))[:, None]
    losses = fit(model, Tiles(store, ids, fill), steps, batch_size, lr, config.seed)
    log.info(
        "pretrained %d steps on %d tiles in %.0f s: SimSiam loss %.3f -> %.3f",
        steps, len(ids), time.perf_counter() - start, losses[0], losses[-1],
    )  # fmt: skip
    save_backbone(detector, Path(path))
    return Path(path)


def concrete(config: ModelConfig, store: TileStoreLike) -> ModelConfig:
    """``config`` as a trial of the grid sees it (:func:`trial_config`).

    The store's tile size and classes, anchors from its diameters, band mean/std and stretch
    from its statistics.
    """
    return trial_config(config, {}, store)


@dataclasses.dataclass(frozen=True)
class Tiles:
    """The tiles that pretraining draws from: ``store`` tiles ``ids``, nodata filled."""

    store: TileStoreLike
    ids: np.ndarray
    fill: torch.Tensor  # [C, 1] raw value per band written where a pixel is nodata

    def batch(self, picks: list[int]) -> torch.Tensor:
        """Tiles ``ids[picks]`` as ``FloatTensor[B, C, T, T]`` in raw units."""
        images = []
        for i in picks:
            image = torch.from_numpy(self.store.image(int(self.ids[i]))).float()
            mask = torch.from_numpy(self.store.nodata_mask(int(self.ids[i])))
            image[:, mask] = self.fill
            images.append(image)
        return torch.stack(images)


def fit(
    model: SimSiam,
    tiles: Tiles,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> list[float]:
    """The optimisation loop; the loss of every step."""
    generator = torch.Generator().manual_seed(seed)
    views = view_transform()
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps))
    )
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}
    losses = []
    for _ in range(steps):
        picks = torch.randint(len(tiles.ids), (batch_size,), generator=generator).tolist()
        images = tiles.batch(picks)
        view_a, _ = views(images, [empty] * batch_size, generator)
        view_b, _ = views(images, [empty] * batch_size, generator)
        loss = model(view_a, view_b)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
    return losses


def save_backbone(detector: torch.nn.Module, path: Path) -> None:
    """Write the detector's ``backbone.*`` tensors (contiguous copies) to ``path``."""
    state = {
        key: value.detach().contiguous().clone()
        for key, value in detector.state_dict().items()
        if key.startswith(PREFIX)
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save({"state_dict": state}, tmp))
