"""A grid's trials on Ray Tune: several at once, on this machine or on a Ray cluster.

``run_grid(..., ray=RayOptions(...))`` hands its unfinished trials to :func:`run_on_ray`. Each
becomes one Tune trial of a function trainable that calls the sequential loop's own
:func:`model.training.grid.run_trial` (handed in by the grid) into the same ``trials/<id>/`` folder, so everything the
loop guarantees holds here too: the folder layout, a failing trial recorded while the others go
on, resume (a re-run skips trials whose ``summary.json`` exists and resumes the others from
``last.ckpt``), the thresholds and the results table. Tune adds the scheduling:

- resources per trial (``trial_cpus``, ``trial_gpus``; fractional GPUs let small models share
  one) and a limit on concurrent trials (``max_concurrent_trials``);
- ``scheduler="asha"``: asynchronous successive halving. Every validation reports
  ``val/map_50`` to Tune (:class:`ReportValidation`); a trial whose metric falls in the lower
  part of its rung is stopped. Such a trial gets ``status="stopped"`` and a ``summary.json``
  (its best validation values so far), and is never chosen over a complete trial.

The driver shows one progress bar over the trials, with the latest validation of each
(:class:`TrialProgress`; the trials' own output stays in their worker processes and logs).
Ctrl-C (or a kernel interrupt) stops the search at once, as in the local loop: Tune's own
handler, which would end the trials as if they had finished, is turned off, so the interrupted
trials keep no ``summary.json`` and the next call resumes them from their ``last.ckpt``.

Ray runs embedded (``address=None``: ``ray.init`` on this machine, shut down afterwards) or joins
a running cluster (``address="auto"``, ``"host:6379"``, ``"ray://host:10001"``). On a cluster the
tile store and ``output_dir`` must be on a filesystem that every node mounts at the same path: a
worker that cannot read the store fails its trial with the path and the node's address.

Only the Ray engine imports this module (it imports Ray); the local loop runs without Ray.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from ray import tune
from ray.tune.progress_reporter import ProgressReporter
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from model.config import ModelConfig
from model.ray_options import RayOptions
from model.training.trial_logs import best_row, read_trial_metrics
from tiling.atomic import write_text_atomic
from tiling.errors import ConfigError
from tiling.progress import progress_bar
from tiling.store.interface import TileStoreLike

log = logging.getLogger(__name__)

METRIC = "val/map_50"
RunTrial = Callable[..., dict[str, Any]]  # model.training.grid.run_trial


class ReportValidation(Callback):
    """Report every validation's ``val/map_50`` (and the step) to Tune, for ASHA.

    A trial's own callbacks may include an instance (of a subclass): it then replaces this one.
    """

    def value(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> float | None:
        """The metric to report: the validation's ``val/map_50`` (None when not logged)."""
        value = trainer.callback_metrics.get(METRIC)
        return None if value is None else float(value)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Report after each validation of the fit (not the sanity check)."""
        value = self.value(trainer, pl_module)
        if trainer.sanity_checking or value is None:
            return
        tune.report({METRIC: value, "step": int(trainer.global_step)})


class TrialProgress(tune.Callback):
    """The driver's progress bar over the trials, with the latest validation of each.

    A context manager: the bar is shown inside the ``with`` block (around ``Tuner.fit``).
    """

    def __init__(self, total: int) -> None:
        self.total, self.ended = total, 0
        self.latest: dict[str, str] = {}
        self.bar: Any = None

    def __enter__(self) -> TrialProgress:
        self.bar = progress_bar(total=self.total, unit="trial", desc="trials (Ray)")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def _show(self, trial: Any, text: str) -> None:
        self.latest[str(trial.config.get("trial", trial))] = text
        if self.bar is not None:
            self.bar.set_postfix_str(", ".join(f"{k} {v}" for k, v in self.latest.items()))

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        """A validation (or the final row): show the trial's step and val mAP@50."""
        if result.get("trial_complete"):
            return
        self._show(
            trial, f"step {result.get('step', '?')} val {result.get(METRIC, float('nan')):.3f}"
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A trial ended (done, stopped by ASHA): one more on the bar."""
        self._show(trial, "ended")
        self._count()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A trial's worker died: one more on the bar."""
        self._show(trial, "error")
        self._count()

    def _count(self) -> None:
        self.ended += 1
        if self.bar is not None:
            self.bar.update(1)


#: Tune's settings while our search runs: no SIGINT handler of its own (see
#: :func:`tune_environment`), and its old reporter (silent at ``verbose=0``) instead of the new
#: one, which prints an experiment table whatever the verbosity.
TUNE_ENV = {"TUNE_DISABLE_SIGINT_HANDLER": "1", "RAY_AIR_NEW_OUTPUT": "0"}


@contextlib.contextmanager
def tune_environment() -> Iterator[None]:
    """Tune with :data:`TUNE_ENV` set (the variables are restored after the block).

    Tune's SIGINT handler ends the run "gracefully": the running trials end without a result
    and ``fit`` returns, which would look like trials that stopped. Without it, Ctrl-C raises
    KeyboardInterrupt out of ``fit`` and stops the search as it stops the local loop; leaving
    :func:`~tiling.ray_session.ray_session` shuts Ray down (and the trials' workers with it).
    """
    old = {key: os.environ.get(key) for key in TUNE_ENV}
    os.environ.update(TUNE_ENV)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Silent(ProgressReporter):
    """Tune's progress reporter that reports nothing: :class:`TrialProgress` is the driver's.

    Without a reporter of its own, Tune picks its notebook reporter in a Jupyter kernel, which
    clears the cell's output when it is created (``clear_output``) and so removed every bar
    above it, :class:`TrialProgress` included, even at ``verbose=0``.
    """

    def should_report(self, trials: list, done: bool = False) -> bool:
        """Never."""
        return False

    def report(self, trials: list, done: bool, *sys_info: str) -> None:
        """Nothing (never called: :meth:`should_report` says no)."""


def work_in(folder: str) -> None:
    """Change to the driver's working folder: relative paths as in the notebook.

    Tune starts each trial in a folder of its own; back in the driver's folder, relative paths
    (``runs/latest``, the store, a weights file) mean what they mean to the notebook.

    Raises:
        ConfigError: this node has no such folder (a cluster without a shared filesystem).
    """
    if not Path(folder).is_dir():
        raise ConfigError(
            f"The working folder {folder} of the notebook is not there on node "
            f"{socket.gethostname()}: every Ray node must see the project's folders at the same "
            "paths (a shared filesystem)."
        )
    os.chdir(folder)


def open_store_here(kind: type[TileStoreLike], path: str) -> TileStoreLike:
    """Open the tile store at ``path`` on this node, or say which node cannot read it.

    Raises:
        ConfigError: the store's folder is not there (a cluster without a shared filesystem at
            that path).
    """
    if not Path(path).is_dir():
        raise ConfigError(
            f"The tile store {path} is not readable on node {socket.gethostname()}: every Ray "
            "node must mount the store and output_dir at the same path (a shared filesystem)."
        )
    return kind(path)


def _trainable(
    spec: dict[str, Any],
    jobs: dict[str, Any],
    store: tuple[type[TileStoreLike], str],
    options: dict[str, Any],
    run_trial: RunTrial,
    cwd: str,
) -> None:
    """One Tune trial: ``run_trial`` (the grid's) of job ``spec["trial"]``, in folder ``cwd``."""
    import torch

    job, options = jobs[spec["trial"]], dict(options)
    work_in(cwd)  # Tune starts a trial in a folder of its own: relative paths as the driver's
    torch.set_num_threads(max(1, int(job["threads"])))
    callbacks = list(options.pop("callbacks", ()))
    if not any(isinstance(c, ReportValidation) for c in callbacks):
        callbacks.append(ReportValidation())  # ASHA's rungs and the driver's progress bar
    config = ModelConfig.from_dict(job["config"])
    opened = open_store_here(*store)
    row = run_trial(config, opened, job["trial_dir"], callbacks=callbacks, **options)
    final = {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    # Tune wants its metric in every report; a failed trial has none (-1 ranks it last)
    tune.report({**final, METRIC: final.get(METRIC, -1.0), "trial_complete": 1})


def run_on_ray(
    jobs: Sequence[tuple[Path, ModelConfig]],
    store: TileStoreLike,
    options: dict[str, Any],
    ray: RayOptions,
    run_trial: RunTrial,
) -> dict[str, str]:
    """Run ``jobs`` (trial folder, concrete config) as Tune trials; what Tune said of each.

    ``run_trial`` is :func:`model.training.grid.run_trial` (passed in, so that this module does
    not import the grid that imports it); each Tune trial calls it with ``options``.

    Every trial writes its own ``summary.json`` (as in the sequential loop). A trial that Tune
    stopped (ASHA) or that died without one (its worker killed) gets one here: ``stopped`` with
    its best validation values, or ``failed`` with Tune's error.

    Returns:
        trial id -> ``""`` (finished), ``"stopped"`` or Tune's error text.
    """
    if not jobs:
        return {}
    asha = ray.scheduler == "asha"
    cpus = ray.cpus_per_trial()
    table = {d.name: {"trial_dir": str(d), "config": c.to_dict(), "threads": cpus} for d, c in jobs}
    scheduler = (
        ASHAScheduler(
            time_attr="training_iteration",
            grace_period=ray.grace_validations,
            max_t=10_000,
            reduction_factor=2,
        )
        if asha
        else FIFOScheduler()
    )
    # each worker reopens the store: type(store)(path)
    where = (type(store), str(Path(store.path).resolve()))
    trainable = tune.with_parameters(
        _trainable, jobs=table, store=where, options=options, run_trial=run_trial, cwd=os.getcwd()
    )
    accelerator = getattr(options.get("run"), "accelerator", "auto")
    resources = {"cpu": cpus, "gpu": ray.gpus_per_trial(accelerator)}
    output_dir = Path(jobs[0][0]).parent.parent
    progress = TrialProgress(len(table))
    tuner = tune.Tuner(
        tune.with_resources(trainable, resources),
        param_space={"trial": tune.grid_search(list(table))},
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            scheduler=scheduler,
            max_concurrent_trials=ray.max_concurrent_trials,
            trial_name_creator=lambda t: str(t.config["trial"]),
            trial_dirname_creator=lambda t: str(t.config["trial"]),
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str((output_dir / "ray").resolve()),
            verbose=0,
            callbacks=[progress],
            progress_reporter=Silent(),
        ),
    )
    outcome: dict[str, str] = {}
    with progress, tune_environment():
        grid = tuner.fit()
    for result in (grid[i] for i in range(len(grid))):
        trial = str(result.config["trial"]) if result.config else ""
        finished = bool(result.metrics and result.metrics.get("trial_complete"))
        if result.error is not None:
            outcome[trial] = f"{type(result.error).__name__}: {result.error}"
        elif finished:
            outcome[trial] = ""
        else:
            outcome[trial] = "stopped"
    for trial_dir, _ in jobs:
        _summarise_unfinished(trial_dir, outcome.get(trial_dir.name, "no result from Tune"))
    return outcome


def _summarise_unfinished(trial_dir: Path, outcome: str) -> None:
    """Write ``summary.json`` for a trial that ended without one (stopped or died)."""
    if (trial_dir / "summary.json").is_file() or outcome == "":
        return
    metrics = read_trial_metrics(trial_dir)
    best = trial_dir / "checkpoints" / "best.ckpt"
    row: dict[str, Any] = {"trial": trial_dir.name, **best_row(metrics)}
    if outcome == "stopped":
        steps = int(metrics["step"].max()) if "step" in metrics and len(metrics) else 0
        row.update(status="stopped", error=f"stopped by ASHA after step {steps}", steps=steps)
    else:
        row.update(status="failed", error=outcome)
    row.update(checkpoint=str(best) if best.is_file() else "", trial_dir=str(trial_dir))
    write_text_atomic(trial_dir / "summary.json", json.dumps(row, indent=2, default=str))
