"""The Lightning ``Trainer`` of one run, built from a ModelConfig.

Hardware comes from a :class:`~model.run_config.RunConfig` (``accelerator``, ``devices``,
``strategy``, ``num_nodes``, ``precision``), so several GPUs or nodes use Lightning's DDP unchanged
(``strategy="ddp"``; in a notebook ``"ddp_notebook"``). Everything a run writes goes under one folder::

    <run_dir>/logs/<version>/metrics.csv       CSV log (always), one version per (re)start
    <run_dir>/tensorboard/<version>/           TensorBoard events (when tensorboard imports)
    <run_dir>/checkpoints/best.ckpt            best validation mAP@50 (``val/map_50``, max); weights
    <run_dir>/checkpoints/last.ckpt            the latest validation with the optimiser (to resume)
"""

from __future__ import annotations

import importlib.util
import logging
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
from tiling.errors import ConfigError

log = logging.getLogger(__name__)


class TrainTimer(Callback):
    """Training time in seconds, summed over restarts (kept in the checkpoints), and a time guard.

    The guard is a safety net, not a budget: a trial's budget is its number of optimiser steps
    (``max_steps``). When ``limit_s`` is set and this run (start or restart) has trained that
    long, the timer stops training after the current step (Lightning then validates once more)
    and sets ``fired``; the grid marks such a trial ``truncated``. A restart gets the full time
    again, so a truncated trial can be resumed to its budget.

    Args:
        limit_s: the most seconds of training of one run; None = no guard.
    """

    def __init__(self, limit_s: float | None = None) -> None:
        self.elapsed = 0.0
        self.limit_s = limit_s
        self.fired = False
        self._start: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the clock."""
        self._start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Stop training when this run's time is up (the guard)."""
        if self.limit_s is None or self.fired or self.run_seconds() < self.limit_s:
            return
        self.fired = True
        trainer.should_stop = True
        log.warning(
            "time guard: training stopped after %d optimiser steps (%.0f s, limit %.0f s)",
            trainer.global_step,
            self.run_seconds(),
            self.limit_s,
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Stop the clock (the time after training is not training time)."""
        self.elapsed = self.total()
        self._start = None

    def run_seconds(self) -> float:
        """Seconds trained in this run (start or restart) so far; 0 once it has ended."""
        return 0.0 if self._start is None else time.perf_counter() - self._start

    def total(self) -> float:
        """Seconds trained over every run, this one included."""
        return self.elapsed + self.run_seconds()

    def state_dict(self) -> dict[str, float]:
        """Saved in every checkpoint."""
        return {"elapsed": self.total()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restored when resuming."""
        self.elapsed = float(state_dict.get("elapsed", 0.0))


class ValidateAtLastStep(Callback):
    """Validate after the last optimiser step of ``max_steps`` even when it ends an epoch early.

    Lightning validates at epoch ends; a budget of steps that is not a whole number of epochs
    would otherwise leave its last steps unvalidated (and out of ``best.ckpt``). Asking the
    trainer to stop at that step makes Lightning run the validation loop first.
    """

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Request the stop (and so the validation) at the budget's last step."""
        if 0 < trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True


class BestAndLastCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint writing ``best.ckpt`` without the optimiser and ``last.ckpt`` with it.

    Only ``last.ckpt`` is ever resumed from; the best checkpoint is read for testing and
    prediction, which need the weights, hyperparameters and stored thresholds. Without Adam's
    two moments and the scheduler a ResNet-18 checkpoint is about a third of the size (53 MB
    instead of 159 MB with ``fpn_channels=128``).
    """

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        """Save ``filepath``: weights only unless it is the last checkpoint."""
        self.save_weights_only = Path(filepath).stem != self.CHECKPOINT_NAME_LAST
        super()._save_checkpoint(trainer, filepath)


MONITOR = "val/map_50"  # the metric that picks the best checkpoint
MONITOR_MODE = "max"


def build_callbacks(config: ModelConfig, checkpoint_dir: str | Path) -> list[Callback]:
    """Checkpoints (best by ``val/map_50``, last), learning rate, validation at the last step.

    Early stopping is added when ``config.early_stopping_patience`` is set (epochs without
    improvement of ``val/map_50``).
    """
    callbacks: list[Callback] = [
        BestAndLastCheckpoint(
            dirpath=str(checkpoint_dir),
            filename="best",
            monitor=MONITOR,
            mode=MONITOR_MODE,
            save_top_k=1,
            save_last=True,
            auto_insert_metric_name=False,
        ),
        LearningRateMonitor(logging_interval="step"),
        ValidateAtLastStep(),
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
    max_steps: int | None = None,
    limit_batches: int | float | None = None,
    version: str = "run0",
    enable_progress_bar: bool = True,
    log_every_n_steps: int = 5,
    callbacks: Sequence[Callback] = (),
    **trainer_kwargs: Any,
) -> pl.Trainer:
    """A Trainer for ``config`` writing logs and checkpoints under ``run_dir``.

    Args:
        config: the budget (``max_steps`` optimiser steps when set, epochs then unbounded; else
            ``max_epochs``) and early stopping.
        run_dir: the run's folder (layout in the module docstring).
        run: hardware (accelerator, devices, strategy, num_nodes, precision; ``"auto"``
            precision resolved by :func:`model.precision.resolve_precision`); default
            ``RunConfig()``.
        max_epochs: overrides ``config.max_epochs`` (with a step budget too: whichever ends first).
        max_steps: overrides ``config.max_steps``.
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
    steps = config.max_steps if max_steps is None else max_steps
    if steps == "auto":
        raise ConfigError(
            "max_steps='auto' depends on the tile size, batch size and pyramid: resolve the config "
            "first (model.network.data_settings.resolve_config; a trial of run_grid does so), or "
            "give max_steps a number of optimiser steps"
        )
    epochs = max_epochs if max_epochs is not None else (-1 if steps else config.max_epochs)
    options: dict[str, Any] = {
        "max_epochs": epochs,
        "max_steps": steps or -1,
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
