"""Grid search over ModelConfig fields: one resumable trial per combination, one results table.

Layout under ``output_dir``::

    grid_results.csv                  one row per trial, rewritten (temp + rename) after each
    best.ckpt, best_config.yaml       copies of the winner's best checkpoint and config
    trials/<id>/config.yaml           the trial's concrete config (anchors, mean/std resolved)
    trials/<id>/metrics.csv           every logged value (merged over restarts)
    trials/<id>/summary.json          the trial's row of grid_results.csv (written last)
    trials/<id>/checkpoints/          best.ckpt (by val/map_50, weights) and, while the trial is
                                      unfinished or truncated, last.ckpt (to resume from)
    trials/<id>/logs/run<k>/          CSV log of the k-th (re)start; tensorboard/ beside it
    trials/<id>/error.txt             the traceback of a failed trial

Every trial of a grid gets the same budget of work: ``max_steps`` optimiser steps (the config's,
``"auto"`` resolved per trial by :func:`model.budget.auto_max_steps`; else ``max_epochs``
epochs), never a time. ``max_minutes_per_trial`` is only a guard: a trial it
stops is ``truncated`` (its ``steps`` fall short of ``budget_steps``), flagged in the table and
chosen as the best only when no trial completed. With the same seed and inputs the table is the
same on a fast and a slow machine (within floating-point noise); only ``train_time_s`` differs.

The trial id is a short hash of everything that defines the trial (its concrete config, the
store and the epoch/batch limits; not the hardware and workers of the ``RunConfig``), so the same
call finds its trials again, on any machine. Running
:func:`run_grid` again skips trials whose ``summary.json`` exists, resumes an interrupted trial
from its ``last.ckpt``, and records a failing trial's error without stopping the others
(KeyboardInterrupt and SystemExit still stop everything).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import signal
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
from lightning_fabric.utilities.rank_zero import rank_zero_only
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.multiprocessing.spawn import ProcessException

from augment.recipe import AUTO, auto_recipe
from model.config import ModelConfig
from model.inference.tta import TTA, views
from model.network.anchors import auto_stride4
from model.network.checkpoint import threshold_key
from model.network.data_settings import resolve_config
from model.ray_options import RayOptions
from model.run_config import RUN_FIELDS, RunConfig
from model.training.datamodule import TileDataModule
from model.training.module import RetinaNetModule, hook_warning_silenced
from model.training.results import best_trial, completion, order_columns
from model.training.search import sample_space
from model.training.thresholds import trial_columns
from model.training.trainer import TrainTimer, build_trainer
from model.training.trial_logs import best_row, log_versions, read_trial_metrics
from tiling.atomic import copy_atomic, write_text_atomic
from tiling.errors import ConfigError, RasterDetectError
from tiling.geometry.splits import objects_of_split, objects_per_split
from tiling.store.interface import TileStoreLike

log = logging.getLogger(__name__)

# What a failing trial may raise (recorded, the grid goes on). KeyboardInterrupt/SystemExit are
# not among them; ProcessException is a failure inside a ddp_spawn worker.
TRIAL_ERRORS = (
    RuntimeError,
    ValueError,
    ArithmeticError,
    AssertionError,
    LookupError,
    MemoryError,
    OSError,
    ProcessException,
)
STORE_FIELDS = ("classes", "tile_size")  # set from the store, not searchable


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The product of the grid's lists, in order: ``{"lr": [1, 2], "bs": [3]}`` -> 2 dicts."""
    for key, values in grid.items():
        check_searchable(key)
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ConfigError(
                f"grid[{key!r}]={values!r} must be a non-empty list of values, e.g. [1e-4, 3e-4]."
            )
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def check_searchable(key: str) -> None:
    """Refuse a grid key that is not a model setting (a run setting, or one the store sets)."""
    if key in RUN_FIELDS:
        raise ConfigError(
            f"grid[{key!r}] cannot be searched: {key} is a run setting (RunConfig), not part "
            "of the model; pass run=RunConfig(...) to run_grid and run the grid once per value."
        )
    if key in STORE_FIELDS:
        raise ConfigError(
            f"grid[{key!r}] cannot be searched: {key} is set from the tile store; build one "
            "store per tile size and run one grid on each."
        )


def search_combos(
    grid: Mapping[str, Any], search: str, num_samples: int, seed: int
) -> list[dict[str, Any]]:
    """The trials' parameters: the grid's product, or ``num_samples`` seeded random draws.

    ``{}`` gives one trial of the base config. Repeated draws are run once.
    """
    if not grid:
        return [{}]
    if search == "grid":
        return expand_grid(grid)
    if search != "random":
        raise ConfigError(f"search={search!r} must be 'grid' or 'random'.")
    for key in grid:
        check_searchable(key)
    unique: dict[str, dict[str, Any]] = {}
    for draw in sample_space(grid, num_samples, seed):
        unique.setdefault(json.dumps(draw, sort_keys=True), draw)
    return list(unique.values())


def trial_config(base: ModelConfig, params: Mapping[str, Any], store: TileStoreLike) -> ModelConfig:
    """``base`` with ``params``, the store's classes and tile size, anchors and mean/std resolved.

    ``augment="auto"`` becomes :func:`augment.recipe.auto_recipe` of the objects on the store's
    training tiles (before the trial id is taken, so the id names the recipe that trains).
    """
    config = base.replace(**params, classes=list(store.labels), tile_size=int(store.tile_size))
    config = config.replace(
        augment=resolve_augment(config.augment, store),
        stride4=resolve_stride4(config.stride4, store),
    )
    diameters = store.boxes["diameter"].to_numpy(np.float64) if len(store.boxes) else None
    return resolve_config(config, diameters, store.band_stats)


def resolve_augment(recipe: Any, store: TileStoreLike) -> Any:
    """``recipe``, or the named recipe that ``"auto"`` stands for with this store.

    That is :func:`augment.recipe.auto_recipe` of the distinct objects on the training tiles.
    """
    if recipe != AUTO:
        return recipe
    n_train = int(objects_per_split(store.tiles, store.boxes)["train"])
    chosen = auto_recipe(n_train)
    log.info("augment='auto' resolved to %r (%d training objects)", chosen, n_train)
    return chosen


def resolve_stride4(value: Any, store: TileStoreLike) -> Any:
    """``value``, or what ``"auto"`` stands for with this store.

    That is :func:`model.network.anchors.auto_stride4` of the diameters (tile px) of the distinct
    objects on the training tiles.
    """
    if value != AUTO:
        return value
    train = objects_of_split(store.tiles, store.boxes, "train")
    chosen = auto_stride4(train["diameter"].to_numpy(np.float64))
    log.info("stride4='auto' resolved to %s (%d training objects)", chosen, len(train))
    return chosen


# ModelConfig fields added after trial ids were first written: left out of the id while they hold
# their default, so that a run folder of an earlier version resumes and reuses its finished trials.
LATER_FIELDS: dict[str, Any] = {"box_loss": "l1"}


def trial_id(config: ModelConfig, **extra: Any) -> str:
    """``t-`` + 10 hex digits of a SHA-1 over the config and ``extra`` (stable across runs).

    A field of :data:`LATER_FIELDS` at its default value is not hashed (ids of earlier versions).
    """
    fields = config.to_dict()
    for name, default in LATER_FIELDS.items():
        if fields.get(name) == default:
            del fields[name]
    text = json.dumps({"config": fields, **extra}, sort_keys=True, default=str)
    return "t-" + hashlib.sha1(text.encode()).hexdigest()[:10]


@contextlib.contextmanager
def sigint_restored() -> Iterator[None]:
    """Give Ctrl-C its handler back after Lightning's graceful shutdown (which ignores SIGINT).

    Without it, a notebook kernel could not be interrupted again after one Ctrl-C in training.
    """
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield
    finally:
        if main and handler is not None:
            signal.signal(signal.SIGINT, handler)


def _is_rank_zero() -> bool:
    return getattr(rank_zero_only, "rank", 0) == 0


def _fit_and_test(
    config: ModelConfig, store: TileStoreLike, trial_dir: Path, options: dict[str, Any]
) -> dict[str, Any]:
    """Train (resuming from last.ckpt), test the best checkpoint; the summary values.

    The test runs in a Trainer of its own that logs to ``logs/run<k>_test`` (a logger reopened
    in a ddp_spawn worker would rewrite the training log's header).
    """
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = RetinaNetModule(config)
    data = TileDataModule(store, config, run=options.get("run"), **options.pop("data_options", {}))
    last = trial_dir / "checkpoints" / "last.ckpt"
    runs = [f for f in log_versions(trial_dir) if not f.name.endswith("_test")]
    version = f"run{len(runs)}"
    timer = TrainTimer(options.pop("guard_s", None))
    callbacks = [timer, *options.pop("callbacks", ())]
    trainer = build_trainer(config, trial_dir, version=version, callbacks=callbacks, **options)
    with sigint_restored(), hook_warning_silenced():
        trainer.fit(
            module,
            datamodule=data,
            ckpt_path=str(last) if last.is_file() else None,
            weights_only=True,  # our own checkpoints hold tensors and plain containers only
        )
    ckpt = trainer.checkpoint_callback
    best = ckpt.best_model_path if isinstance(ckpt, ModelCheckpoint) else ""
    best = best or (str(last) if last.is_file() else "")
    values: dict[str, Any] = {"epochs": trainer.current_epoch, "train_time_s": timer.total()}
    values.update(completion(trainer, timer))
    if values.get("status") != "truncated" and best != str(last) and _is_rank_zero():
        last.unlink(missing_ok=True)  # a complete trial is never resumed: 3x its weights on disk
    if data.has_split("test") and best:
        tester = build_trainer(config, trial_dir, version=f"{version}_test", **options)
        with sigint_restored(), hook_warning_silenced():
            tested = tester.test(module, datamodule=data, ckpt_path=best, weights_only=True)
        values.update(tested[0])
    values["checkpoint"] = best
    return values


def run_trial(
    config: ModelConfig, store: TileStoreLike, trial_dir: str | Path, **options: Any
) -> dict[str, Any]:
    """Run one trial into ``trial_dir``; its summary row (status ``done``, ``truncated``, ``failed``).

    Args:
        config: the concrete config (see :func:`trial_config`).
        store: the tile store.
        trial_dir: the trial's folder (created).
        **options: for :func:`model.training.trainer.build_trainer` (``max_epochs``, ``limit_batches``,
            ``enable_progress_bar``, Trainer keywords), plus ``data_options`` (a dict for
            :class:`~model.training.datamodule.TileDataModule`), ``guard_s`` (the time
            guard of :class:`~model.training.trainer.TrainTimer`, seconds) and ``tta`` (the
            views whose score thresholds are chosen on validation, default ``"flips"``).
    """
    tta = options.pop("tta", "flips")
    trial_dir = Path(trial_dir)
    (trial_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    if _is_rank_zero():
        config.to_yaml(trial_dir / "config.yaml")
    row: dict[str, Any] = {"trial": trial_dir.name, "status": "done", "error": ""}
    try:
        row.update(_fit_and_test(config, store, trial_dir, dict(options)))
    except TRIAL_ERRORS as err:
        log.exception("trial %s failed", trial_dir.name)
        row.update(status="failed", error=f"{type(err).__name__}: {err}")
        if _is_rank_zero():
            write_text_atomic(trial_dir / "error.txt", traceback.format_exc())
    metrics = read_trial_metrics(trial_dir)
    row.update(best_row(metrics))
    if row["status"] != "failed" and _is_rank_zero():  # thresholds, P/R/F1 there, mAP interval
        run = options.get("run") or RunConfig()
        row.update(trial_columns(row.get("checkpoint"), store, config, run.accelerator, tta))
    row["trial_dir"] = str(trial_dir)
    if _is_rank_zero():
        if len(metrics):
            metrics.to_csv(trial_dir / "metrics.csv", index=False)
        write_text_atomic(trial_dir / "summary.json", json.dumps(row, indent=2, default=str))
    return row


def run_grid(
    base: ModelConfig,
    grid: Mapping[str, Sequence[Any]],
    store: TileStoreLike | str | Path,
    output_dir: str | Path,
    *,
    run: RunConfig | None = None,
    max_epochs: int | None = None,
    limit_batches: int | float | None = None,
    retry_failed: bool = False,
    max_minutes_per_trial: float | None = None,
    enable_progress_bar: bool = True,
    data_options: Mapping[str, Any] | None = None,
    ray: RayOptions | None = None,
    search: str = "grid",
    num_samples: int = 8,
    select: str = "val",
    folds: int = 3,
    tta: TTA | None = "flips",
    **trainer_kwargs: Any,
) -> pd.DataFrame:
    """Train one trial per combination of the grid's values; return the results table.

    Args:
        base: the config every trial starts from.
        grid: ModelConfig field -> list of values, e.g. ``{"lr": [1e-4, 3e-4]}``; ``{}`` runs
            ``base`` alone.
        store: the tile store (a TileStore, or a path to open with it).
        output_dir: where the trials and tables go (layout in the module docstring).
        run: hardware and loader workers (default ``RunConfig()``); not part of a trial's id, so
            a finished trial is not trained again on other hardware or with other workers.
        max_epochs: overrides the config's ``max_epochs`` (e.g. a smoke run).
        limit_batches: batches per epoch for train/val/test (int or fraction); None = all.
        retry_failed: run failed and truncated trials again (default: keep their rows); a
            truncated trial resumes from its ``last.ckpt`` with the guard's full time.
        max_minutes_per_trial: the time guard: a run of a trial that trains this long stops
            and is marked ``truncated`` (None: no guard). Not a budget: size the budget with
            ``max_steps`` so that the guard never fires.
        enable_progress_bar: Lightning's progress bar during training.
        data_options: keywords for TileDataModule (``samples_per_epoch``, ``empty_weight``...).
        search: ``grid`` (every combination of the lists) or ``random``: ``num_samples``
            trials drawn, seeded by ``base.seed``, from lists and ranges such as
            ``{"lr": {"loguniform": [1e-4, 3e-3]}}`` (:mod:`model.training.search`).
        num_samples: the number of random trials.
        ray: run the unfinished trials on Ray Tune (several at once, ASHA, a cluster:
            :mod:`model.training.ray_trials`); None runs them here, one after another.
        select: how trials are compared: ``"val"`` on the store's validation tiles, or
            ``"kfold"``: each trial trained on ``folds`` spatial folds of the train and val
            blocks and ranked by its mean validation mAP@50, the best trained again on the
            store's own split (:mod:`model.training.kfold`; ``folds + 1`` trainings per
            trial: for small data sets).
        folds: the number of folds of ``select="kfold"``.
        tta: the test-time views of the predictions to come (None, ``"flips"``, ``"d4"``): each
            trial's score thresholds are chosen on validation in one pass and with these views
            (:mod:`model.training.thresholds`); not part of a trial's id.
        **trainer_kwargs: extra ``pl.Trainer`` keywords.

    Returns:
        One row per trial: ``trial``, the grid's parameters, ``status`` (``done``,
        ``truncated`` or ``failed``), ``steps`` (optimiser steps trained), ``budget_steps``,
        ``error`` (also why a trial was truncated), the best ``val/*`` metrics and
        ``best_epoch``, ``test/*`` of the best checkpoint, ``epochs``, ``train_time_s``,
        ``score_thresh_f1``/``_p70``, ``val/map_50_lo``/``_hi`` and ``val/precision|recall|f1``
        at ``score_thresh_f1`` (:mod:`model.training.thresholds`),
        ``checkpoint``, ``trial_dir``. Also written to
        ``output_dir/grid_results.csv`` after each trial; the winner's checkpoint and config are
        copied to ``output_dir/best.ckpt`` and ``best_config.yaml``.
    """
    if max_minutes_per_trial is not None and not max_minutes_per_trial > 0:
        raise ConfigError(
            f"max_minutes_per_trial={max_minutes_per_trial!r} must be a positive number of "
            "minutes, or None for no time guard."
        )
    store = _open_store(store)
    output_dir = Path(output_dir)
    if select not in ("val", "kfold"):
        raise ConfigError(f"select={select!r} must be 'val' or 'kfold'.")
    views(tta)  # an unknown test-time augmentation fails before any training
    if select == "kfold":
        from model.training.kfold import run_kfold

        # one recipe and pyramid for every fold and the final training: "auto" reads the store's
        # own split
        base = base.replace(
            augment=resolve_augment(base.augment, store),
            stride4=resolve_stride4(base.stride4, store),
        )

        arguments = dict(
            run=run, max_epochs=max_epochs, limit_batches=limit_batches, retry_failed=retry_failed,
            max_minutes_per_trial=max_minutes_per_trial, enable_progress_bar=enable_progress_bar,
            data_options=data_options, ray=ray, search=search, num_samples=num_samples, tta=tta,
        )  # fmt: skip
        return run_kfold(
            run_grid, base, grid, store, output_dir, folds, **arguments, **trainer_kwargs
        )
    combos = search_combos(grid, search, num_samples, base.seed)
    configs = [trial_config(base, params, store) for params in combos]  # fail fast on bad values
    extra = {"store": Path(store.path).name, "max_epochs": max_epochs, "limit": limit_batches}
    options = {
        "run": run or RunConfig(),
        "max_epochs": max_epochs,
        "limit_batches": limit_batches,
        "enable_progress_bar": enable_progress_bar,
        "data_options": dict(data_options or {}),
        "guard_s": None if max_minutes_per_trial is None else 60.0 * max_minutes_per_trial,
        "tta": tta,
        **trainer_kwargs,
    }
    dirs = [output_dir / "trials" / trial_id(config, **extra) for config in configs]
    if ray is not None:
        _run_on_ray(dirs, configs, store, options, ray, retry_failed)
        retry_failed = False  # every trial has its summary now
    rows = []
    for k, (params, config, trial_dir) in enumerate(zip(combos, configs, dirs, strict=True), 1):
        row = _finished(trial_dir, retry_failed)
        if row is not None:
            row = _with_view_thresholds(row, config, store, options)
        if row is None:
            log.info("trial %d/%d %s: %s", k, len(combos), trial_dir.name, params)
            row = run_trial(config, store, trial_dir, **options)
        rows.append({"trial": row["trial"], **_plain(params), **row})
        if _is_rank_zero():
            output_dir.mkdir(parents=True, exist_ok=True)
            table = order_columns(pd.DataFrame(rows), list(grid))
            write_text_atomic(output_dir / "grid_results.csv", table.to_csv(index=False))
    results = order_columns(pd.DataFrame(rows), list(grid))
    if _is_rank_zero():
        _copy_best(results, output_dir)
    return results


def _run_on_ray(
    dirs: Sequence[Path],
    configs: Sequence[ModelConfig],
    store: TileStoreLike,
    options: dict[str, Any],
    ray: RayOptions,
    retry_failed: bool,
) -> None:
    """The trials without a summary (or to retry), as Tune trials (they write their summaries)."""
    from model.training.ray_trials import run_on_ray
    from tiling.ray_session import ray_session

    jobs = [
        (d, c) for d, c in zip(dirs, configs, strict=True) if _finished(d, retry_failed) is None
    ]
    if jobs:
        with ray_session(ray.address, ray.num_cpus):
            run_on_ray(jobs, store, options, ray, run_trial)


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """Grid values as table cells (lists and tuples as their JSON text)."""
    return {
        k: json.dumps(v) if isinstance(v, list | tuple | dict) else v for k, v in params.items()
    }


def _finished(trial_dir: Path, retry_failed: bool) -> dict[str, Any] | None:
    """The saved summary of a trial that need not run again, else None."""
    summary = trial_dir / "summary.json"
    if not summary.is_file():
        return None
    row = json.loads(summary.read_text())
    if row.get("status") in ("failed", "truncated") and retry_failed:
        summary.unlink()
        return None
    log.info("trial %s already %s; skipped", trial_dir.name, row.get("status"))
    return row


def _with_view_thresholds(
    row: dict[str, Any], config: ModelConfig, store: TileStoreLike, options: Mapping[str, Any]
) -> dict[str, Any]:
    """A finished trial's row, its thresholds for ``options["tta"]``'s views measured if missing.

    A trial trained in a run with other views (or before thresholds per view) holds none for
    these; they cost one pass of its checkpoint over the validation tiles per view (and one over
    the test tiles), not a training. The summary is rewritten with the new columns.
    """
    tta = options.get("tta", "flips")
    checkpoint = row.get("checkpoint")
    if row.get("status") == "failed" or not checkpoint or not Path(str(checkpoint)).is_file():
        return row
    if not _is_rank_zero() or threshold_key("score_thresh_f1", tta) in row:  # the summary's
        return row  # columns are the checkpoint's thresholds: no need to load it
    log.info("trial %s: score thresholds chosen with tta=%s", row.get("trial"), tta)
    run = options.get("run") or RunConfig()
    row = {**row, **trial_columns(checkpoint, store, config, run.accelerator, tta)}
    write_text_atomic(
        Path(row["trial_dir"]) / "summary.json", json.dumps(row, indent=2, default=str)
    )
    return row


def _open_store(store: TileStoreLike | str | Path) -> TileStoreLike:
    """A TileStore from a path; any other object is returned as is."""
    if isinstance(store, str | Path):
        from tiling.store import TileStore

        return TileStore(store)
    return store


def _copy_best(results: pd.DataFrame, output_dir: Path) -> None:
    """Copy the winner's best checkpoint and config to output_dir (when a trial has a score)."""
    try:
        winner = best_trial(results)
    except RasterDetectError:  # no trial has a score (ConfigError: no metric column at all)
        return
    checkpoint = Path(str(winner["checkpoint"]))
    if checkpoint.is_file():
        copy_atomic(checkpoint, output_dir / "best.ckpt")
        copy_atomic(Path(winner["trial_dir"]) / "config.yaml", output_dir / "best_config.yaml")
