"""All of ``main.ipynb``'s parameters as one checked set: what ``raster-detect train`` reads.

A run file is YAML with any of the notebook's parameter names (``tile_size: 128``, ``grid: {lr:
[1e-3, 3e-4]}``); missing names keep the notebook's defaults, unknown names and bad values are
errors naming the file and the key. :class:`RunParameters` extends the data and tiling set
(:class:`~tiling.store.parameters.StoreParameters`) with augmentation, training and prediction,
applies the notebook's ``smoke`` settings (:data:`SMOKE`), and gives the keywords the notebook
passes to :func:`~model.training.grid.run_grid` (:meth:`RunParameters.grid_arguments`). Tests hold
the names, the defaults, the smoke settings and those keywords equal to the notebook's.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, get_args

import yaml

from model.config import Backbone, InputNorm, InputStretch, ModelConfig, Norm, Scheduler
from model.ray_options import RayOptions
from model.run_config import Accelerator, Precision, RunConfig
from model.training.search import RANGES
from tiling import options as o
from tiling.errors import ConfigError
from tiling.parameters import from_mapping, param, to_mapping
from tiling.store.parameters import StoreParameters

#: What ``smoke=True`` changes (the notebook's smoke cell): one short trial on small tiles.
SMOKE: dict[str, Any] = {
    "tile_size": 128,
    "overlap": 16,
    "grid": {"lr": [1e-3, 3e-4], "focal_gamma": [2.0]},
    "steps_per_trial": 2,
    "samples_per_epoch": 8,
    "batch_size": 4,
    "max_minutes_per_trial": None,
}
#: Batches per epoch of a smoke run (the notebook's ``limit_batches=2 if smoke else None``).
SMOKE_BATCHES = 2


def grid_values(raw: Any) -> Any:
    """The values of one grid parameter: a non-empty list, or a range of a random search.

    A range is one ``{"loguniform"|"uniform"|"randint": [low, high]}``, checked when the search
    draws its trials (:func:`model.training.search.sample_space`).
    """
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in RANGES:
        return raw
    values = o.list_of(lambda value: value)(raw)
    if not values:
        raise argparse.ArgumentTypeError(f"{raw!r} is empty; give a list of values, e.g. [1, 2]")
    return values


@dataclasses.dataclass(frozen=True)
class RunParameters(StoreParameters):
    """Every parameter of the notebook (see ``raster-detect train --help``)."""

    # fmt: off
    output_dir: str = param("runs/latest", "this run's figures, tables, checkpoints and catalogues", o.text)
    threads: int = param(2, "torch threads; a fixed count gives the same results on any number of cores (0: all)", o.non_negative_int)
    smoke: bool = param(False, "tiny settings for CI: one short trial on few tiles (overrides other values)", o.flag)
    # --- augmentation and training
    augment: str = param("auto", "augmentation recipe: auto (copy_paste below 1500 training objects, else default) | none | flips | d4 | default | copy_paste | mosaic | object_mix", o.text)
    empty_weight: float = param(0.1, "sampling weight of an empty tile relative to one with objects", o.non_negative_float)
    backbone: Backbone = param("resnet18", "resnet18 | resnet34 | resnet50 | mobilenet_v3_large", o.choice(*get_args(Backbone)))
    input_stretch: InputStretch = param("none", "model input stretch: none | linear | asinh | log | zscale (HDR data)", o.choice(*get_args(InputStretch)))
    input_norm: InputNorm = param("dataset", "model input normalisation: dataset (the training tiles' mean and std) | tile (each window's own mean and std: rasters of other brightness or contrast than the training ones)", o.choice(*get_args(InputNorm)))
    norm: Norm = param("group", "group (GroupNorm in backbone and heads) | batch", o.choice(*get_args(Norm)))
    fpn_channels: int = param(128, "channels of the FPN and heads (torchvision uses 256)", o.positive_int)
    stride4: bool | str = param("auto", "stride-4 pyramid level (P2) for small objects: true | false | auto (on below 1500 training objects when a fifth of them are under 12 px; ~2x the time per step)", o.or_auto(o.flag))
    weights: str | None = param(None, "local weights file (state dict or checkpoint); null trains from scratch", o.optional(o.text))
    batch_size: int = param(8, "tiles per batch", o.positive_int)
    steps_per_trial: int | str = param("auto", "optimiser steps of every trial (batch_size tiles each); auto: at least 480, and for smaller tiles the pixels of 480 steps of 8 tiles of 256 px (1920 at 128 px, 960 with stride4)", o.or_auto(o.positive_int))
    samples_per_epoch: int = param(960, "training tiles drawn between two validations (content-weighted, with replacement)", o.positive_int)
    lr: float = param(1e-3, "learning rate (a grid over lr replaces it)", o.positive_float)
    scheduler: Scheduler = param("onecycle", "learning-rate schedule: none | cosine | onecycle", o.choice(*get_args(Scheduler)))
    grid: dict[str, list[Any]] = param({"lr": [1e-3]}, "hyperparameter grid: ModelConfig field -> values (each trial: steps_per_trial)", o.mapping(o.text, grid_values))
    search: str = param("grid", "grid (every combination of the lists) | random (num_samples draws; ranges such as {loguniform: [1e-4, 3e-3]} allowed)", o.choice("grid", "random"))
    num_samples: int = param(8, "trials of a random search", o.positive_int)
    select: str = param("val", "how trials are compared: val (the validation blocks) | kfold (mean over folds spatial folds of the train and val blocks, the best trained again: folds + 1 trainings per trial, for small data sets)", o.choice("val", "kfold"))
    folds: int = param(3, "spatial folds of the kfold selection", o.positive_int)
    max_minutes_per_trial: float | None = param(60.0, "guard only: a trial still training after this stops, marked truncated (null: none)", o.optional(o.positive_float), unit="minutes")
    accelerator: Accelerator = param("auto", "auto | cpu | gpu | cuda | mps", o.choice(*get_args(Accelerator)))
    precision: Precision = param("auto", "auto (bf16 on CPUs with AMX/AVX-512 BF16 and on bf16 GPUs, else 32) | 32 | 16-mixed | bf16-mixed", o.choice(*get_args(Precision)))
    pretrain_steps: int = param(0, "self-supervised pretraining steps of the backbone on the train and val tiles before the grid (0: off; off in smoke runs)", o.non_negative_int)
    engine: str = param("ray", "where the trials run: ray (Ray Tune, embedded on this machine unless ray_address is set; the four below) | local (one after another in this process, without Ray)", o.choice("ray", "local"))
    trial_cpus: float | str = param(2.0, "CPUs per trial on Ray (its torch threads, as threads is for the local engine); auto: the largest node's cores shared by max_concurrent_trials", o.or_auto(o.positive_float))
    trial_gpus: float | str = param("auto", "GPUs per trial on Ray; auto: 1 when Ray has a GPU and accelerator is not cpu, else 0; 0.25: four trials share a GPU", o.or_auto(o.non_negative_float))
    max_concurrent_trials: int = param(1, "trials running at once on Ray", o.positive_int)
    tune_scheduler: str = param("fifo", "fifo (every trial to its budget) | asha (stop trials trailing at a validation)", o.choice("fifo", "asha"))
    # --- prediction (the notebook's section 6; raster-detect predict takes them as options)
    predict_name: str = param("", "raster (file stem) to run the best model over; '' takes the first test raster", o.text)
    score_thresh: float | str = param("auto", "detections scoring below this are left out of the catalogue; auto: the F1-best on validation, stored in the checkpoint", o.or_auto(o.probability))
    tta: str = param("flips", "test-time augmentation of whole-raster prediction: none | flips (4 views) | d4 (8 views)", o.choice("none", "flips", "d4"))
    # fmt: on

    @classmethod
    def from_yaml(cls, path: str | Path, **changes: Any) -> RunParameters:
        """Read a run file (YAML, any subset of the parameters), then apply ``changes``.

        Raises:
            ConfigError: unreadable YAML, an unknown name or a bad value (naming file and key).
        """
        try:
            data = o.read_yaml(path)
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read the run file {path}: {err}") from err
        params = from_mapping(cls, {} if data is None else data, str(path))
        return dataclasses.replace(params, **changes)

    def to_yaml(self) -> str:
        """The parameters as YAML text (every name, in the notebook's order)."""
        return yaml.safe_dump(to_mapping(self), sort_keys=False, default_flow_style=None)

    def resolved(self) -> RunParameters:
        """These parameters with the :data:`SMOKE` settings applied when ``smoke`` is set."""
        return dataclasses.replace(self, **SMOKE) if self.smoke else self

    def model_config(self) -> ModelConfig:
        """The grid's base config (the notebook's section 4)."""
        return ModelConfig(
            backbone=self.backbone,
            norm=self.norm,
            input_stretch=self.input_stretch,
            input_norm=self.input_norm,
            fpn_channels=self.fpn_channels,
            stride4=self.stride4,  # type: ignore[arg-type]  # checked: True, False or "auto"
            weights=self.weights,
            batch_size=self.batch_size,
            max_steps=self.steps_per_trial,  # type: ignore[arg-type]  # checked: a count or "auto"
            lr=self.lr,
            scheduler=self.scheduler,
            augment=self.augment,
            seed=self.seed,
        )

    def pretrain_arguments(self) -> dict[str, Any]:
        """Keywords of :func:`~model.pretrain.pretrain_backbone` other than the store and file.

        ``steps`` is 0 (no pretraining) in a smoke run.
        """
        config = ModelConfig(
            backbone=self.backbone,
            norm=self.norm,
            input_stretch=self.input_stretch,
            input_norm=self.input_norm,
            fpn_channels=self.fpn_channels,
            stride4=self.stride4,  # type: ignore[arg-type]  # checked: True, False or "auto"
            weights=self.weights,
            seed=self.seed,
        )
        return {"config": config, "steps": 0 if self.smoke else self.pretrain_steps}

    def run_config(self) -> RunConfig:
        """The hardware and loader workers (the notebook's ``run = RunConfig(...)``)."""
        return RunConfig(
            accelerator=self.accelerator, precision=self.precision, num_workers=min(self.workers, 2)
        )

    def grid_arguments(self) -> dict[str, Any]:
        """Keywords of :func:`~model.training.grid.run_grid` other than the store and folder."""
        minutes = self.max_minutes_per_trial
        return {
            "base": self.model_config(),
            "grid": self.grid,
            "run": self.run_config(),
            "limit_batches": SMOKE_BATCHES if self.smoke else None,
            "data_options": {
                "samples_per_epoch": self.samples_per_epoch,
                "empty_weight": self.empty_weight,
            },
            "max_minutes_per_trial": minutes,
            "ray": self.ray_options(),
            "search": self.search,
            "num_samples": self.num_samples,
            "select": self.select,
            "folds": self.folds,
            "tta": None if self.tta == "none" else self.tta,
        }

    def ray_options(self) -> RayOptions | None:
        """Where the trials run: None here (``engine="local"``), else the Ray settings."""
        if self.engine != "ray":
            return None
        return RayOptions(
            address=self.ray_address,
            trial_cpus=self.trial_cpus,  # type: ignore[arg-type]  # a float or "auto", checked
            trial_gpus=self.trial_gpus,  # type: ignore[arg-type]  # a float or "auto", checked
            max_concurrent_trials=self.max_concurrent_trials,
            scheduler=self.tune_scheduler,  # type: ignore[arg-type]
        )
