"""Training: the data module, the Lightning module, the Trainer, metrics and the grid search."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiling.lazy import lazy_namespace

if TYPE_CHECKING:
    from model.training.datamodule import TileDataModule, TileDataset, collate_tiles
    from model.training.grid import (
        expand_grid,
        read_trial_metrics,
        resolve_augment,
        resolve_stride4,
        run_grid,
        run_trial,
        trial_config,
        trial_id,
    )
    from model.training.metrics import DetectionMetrics
    from model.training.module import RetinaNetModule, predict_tiles
    from model.training.results import best_trial
    from model.training.trainer import MONITOR, build_trainer

__all__ = [
    "MONITOR",
    "DetectionMetrics",
    "RetinaNetModule",
    "TileDataModule",
    "TileDataset",
    "best_trial",
    "build_trainer",
    "collate_tiles",
    "expand_grid",
    "predict_tiles",
    "read_trial_metrics",
    "resolve_augment",
    "resolve_stride4",
    "run_grid",
    "run_trial",
    "trial_config",
    "trial_id",
]
__getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "model.training.datamodule": (
            "TileDataModule",
            "TileDataset",
            "collate_tiles",
        ),
        "model.training.module": (
            "RetinaNetModule",
            "predict_tiles",
        ),
        "model.training.trainer": (
            "MONITOR",
            "build_trainer",
        ),
        "model.training.metrics": ("DetectionMetrics",),
        "model.training.results": ("best_trial",),
        "model.training.grid": (
            "expand_grid",
            "read_trial_metrics",
            "resolve_augment",
            "resolve_stride4",
            "run_grid",
            "run_trial",
            "trial_config",
            "trial_id",
        ),
    },
)
