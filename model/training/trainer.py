"""The Lightning ``Trainer`` of one run, built from a ModelConfig.

Hardware comes from a :class:`~model.run_config.RunConfig` (``accelerator``, ``devices``,
``strategy``, ``num_nodes``, ``precision``), so several GPUs or nodes use Lightning's DDP unchanged
(``strategy="ddp"``; in a notebook ``"ddp_notebook"``). Everything a run writes goes under one folder::

    <run_dir>/logs/<version>/metrics.csv       CSV log (always), one version per (re)start
    <run_dir>/tensorboard/<version>/           TensorBoard events (when tensorboard imports)
    <run_dir>/checkpoints/best.ckpt            best validation mAP@50 (``val/map_50``, max)
    <run_dir>/checkpoints/last.ckpt            the latest epoch (to resume from)
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
)
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from model.config import ModelConfig
from model.run_config import RunConfig
from model.training.progress_bar import ProgressBar


class TrainTimer(Callback):
    """Training time in seconds, summed over restarts (kept in the checkpoints)."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self._start: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the clock."""
        self._start = time.perf_counter()

    def total(self) -> float:
        """Seconds trained, this run included."""
        extra = 0.0 if self._start is None else time.perf_counter() - self._start
        return self.elapsed + extra

    def state_dict(self) -> dict[str, float]:
        """Saved in every checkpoint."""
        return {"elapsed": self.total()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restored when resuming."""
        self.elapsed = float(state_dict.get("elapsed", 0.0))


MONITOR = "val/map_50"  # the metric that picks the best checkpoint
MONITOR_MODE = "max"


def build_callbacks(config: ModelConfig, checkpoint_dir: str | Path) -> list[Callback]:
    """Best (by ``val/map_50``) and last checkpoints, learning-rate logging, early stopping.

    Early stopping is added when ``config.early_stopping_patience`` is set (epochs without
    improvement of ``val/map_50``).
    """
    callbacks: list[Callback] = [
        ModelCheckpoint(
            dirpath=str(checkpoint_dir),
            filename="best",
            monitor=MONITOR,
            mode=MONITOR_MODE,
            save_top_k=1,
            save_last=True,
            auto_insert_metric_name=False,
        ),
        LearningRateMonitor(logging_interval="step"),
    ]
    if config.early_stopping_patience is not None:
        callbacks.append(
            EarlyStopping(
                monitor=MONITOR, mode=MONITOR_MODE, patience=config.early_stopping_patience
            )
        )
    return callbacks


def build_loggers(run_dir: str | Path, version: str = "run0") -> list[Logger]:
    """A CSVLogger in ``run_dir/logs/<version>`` and, when installed, TensorBoard beside it."""
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="logs", version=version)]
    if importlib.util.find_spec("tensorboard") is not None:
        loggers.append(
            TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=version)
        )
    return loggers


def build_trainer(
    config: ModelConfig,
    run_dir: str | Path,
    *,
    run: RunConfig | None = None,
    max_epochs: int | None = None,
    limit_batches: int | float | None = None,
    version: str = "run0",
    enable_progress_bar: bool = True,
    log_every_n_steps: int = 5,
    callbacks: Sequence[Callback] = (),
    **trainer_kwargs: Any,
) -> pl.Trainer:
    """A Trainer for ``config`` writing logs and checkpoints under ``run_dir``.

    Args:
        config: epochs and early stopping.
        run_dir: the run's folder (layout in the module docstring).
        run: hardware (accelerator, devices, strategy, num_nodes, precision); default
            ``RunConfig()``.
        max_epochs: overrides ``config.max_epochs``.
        limit_batches: batches per epoch for training, validation and test (an int, or a
            fraction of each loader); None = all.
        version: name of this (re)start's log folder.
        enable_progress_bar: Lightning's TQDM bars, as widgets in JupyterLab and text elsewhere
            (:class:`model.training.progress_bar.ProgressBar`; turn off in tests).
        log_every_n_steps: logging interval of the per-step losses (at most ``limit_batches``).
        callbacks: extra callbacks after the standard ones.
        **trainer_kwargs: anything else for ``pl.Trainer`` (e.g. ``fast_dev_run``,
            ``num_sanity_val_steps``, ``gradient_clip_val``); they override the defaults.

    Returns:
        The trainer (``trainer.checkpoint_callback`` is the best/last ModelCheckpoint).
    """
    run_dir, run = Path(run_dir), run or RunConfig()
    options: dict[str, Any] = {
        "max_epochs": config.max_epochs if max_epochs is None else max_epochs,
        "accelerator": run.accelerator,
        "devices": run.devices,
        "strategy": run.strategy,
        "num_nodes": run.num_nodes,
        "precision": run.trainer_precision,
        "default_root_dir": str(run_dir),
        "logger": build_loggers(run_dir, version),
        "callbacks": [
            *build_callbacks(config, run_dir / "checkpoints"),
            *_progress_bar(enable_progress_bar, callbacks),
            *callbacks,
        ],
        "enable_progress_bar": enable_progress_bar,
        "log_every_n_steps": log_every_n_steps,
        "enable_model_summary": False,
    }
    if isinstance(limit_batches, int):
        options["log_every_n_steps"] = max(1, min(log_every_n_steps, limit_batches))
    if limit_batches is not None:
        options.update(
            limit_train_batches=limit_batches,
            limit_val_batches=limit_batches,
            limit_test_batches=limit_batches,
        )
    options.update(trainer_kwargs)
    return pl.Trainer(**options)


def _progress_bar(enabled: bool, callbacks: Sequence[Callback]) -> list[Callback]:
    """The project's progress bar, unless bars are off or ``callbacks`` bring their own."""
    if not enabled or any(isinstance(c, pl.callbacks.ProgressBar) for c in callbacks):
        return []
    return [ProgressBar()]
