"""The results table of a grid: whether a trial completed its budget, column order, the winner.

A trial is complete when it trained its whole budget of optimiser steps (``budget_steps``) or
was stopped by early stopping (a rule of the budget, decided by the validation metric); one that
the time guard stopped is ``truncated``. :func:`best_trial` compares complete trials only, and
falls back to the truncated ones, with a warning, only when none completed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytorch_lightning as pl

from model.training.trainer import MONITOR, TrainTimer
from tiling.errors import ConfigError, RasterDetectError


def completion(trainer: pl.Trainer, timer: TrainTimer) -> dict[str, Any]:
    """``steps`` trained and ``budget_steps``; ``status="truncated"`` and why when short of it.

    Early stopping (``config.early_stopping_patience``) is part of the budget's rule, decided by
    the validation metric, not by the clock: such a trial counts as complete.
    """
    steps = int(trainer.global_step)
    budget_steps = _budget_steps(trainer, steps)
    values: dict[str, Any] = {"steps": steps, "budget_steps": budget_steps}
    stopped_early = any(c.stopped_epoch > 0 for c in trainer.early_stopping_callbacks)
    if steps >= budget_steps or stopped_early:
        return values
    if timer.fired and timer.limit_s is not None:
        cause = f"time guard of {timer.limit_s / 60:g} min (max_minutes_per_trial)"
    else:
        cause = "training stopped before its budget"
    values.update(status="truncated", error=f"{cause}: {steps} of {budget_steps} steps")
    return values


def _budget_steps(trainer: pl.Trainer, steps: int) -> int:
    """The trial's budget in optimiser steps, as the trainer computes it after ``fit``.

    With a spawning strategy (``ddp_spawn``) the child processes trained and this process never
    set up the data: its batch count is unknown, and the budget is ``max_steps`` when one was set,
    else the steps trained (the trial counts as complete; the guard still marks it).
    """
    if not math.isfinite(trainer.num_training_batches):
        return int(trainer.max_steps) if trainer.max_steps > 0 else steps
    budget = trainer.estimated_stepping_batches
    return int(budget) if math.isfinite(budget) else steps


def order_columns(results: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """The table's columns in order.

    Trial, parameters, status, steps, budget_steps, error, val/*, the score thresholds,
    best_epoch, test/*, then the rest.
    """
    cols = [str(c) for c in results.columns]
    first = ["trial", *params, "status", "steps", "budget_steps", "error"]
    val = sorted(c for c in cols if c.startswith("val/"))
    test = sorted(c for c in cols if c.startswith("test/"))
    thresholds = sorted(c for c in cols if c.startswith("score_thresh_"))  # one pass, then @views
    head = [c for c in [*first, *val, *thresholds, "best_epoch", *test] if c in cols]
    return results[head + [c for c in cols if c not in head]]


def best_trial(results: pd.DataFrame, metric: str = MONITOR) -> pd.Series:
    """The row of the complete trial with the highest ``metric`` (e.g. ``"val/map_50"``).

    Trials cut short by the time guard (``status="truncated"``) trained less than the others and
    are not compared with them; only when no trial completed is the best truncated one returned,
    with a warning that names the cause.

    Raises:
        RasterDetectError: every trial failed: the message lists each trial's own error (its
            first line); or no trial finished (complete or truncated) with a value of ``metric``.
        ConfigError: ``metric`` is not a column of ``results`` although some trial finished.
    """
    failed = results[results["status"] == "failed"] if "status" in results else results.iloc[:0]
    if len(results) and len(failed) == len(results):
        raise RasterDetectError(trials_failed_message(failed))
    if metric not in results.columns:
        metrics = sorted(c for c in results.columns if "/" in str(c))
        raise ConfigError(f"metric={metric!r} is not in the results; use one of {metrics}.")
    scored = results[results[metric].notna()]
    done = scored[scored["status"] == "done"]
    if not done.empty:
        return done.loc[done[metric].astype(float).idxmax()]
    truncated = scored[scored["status"] == "truncated"]
    if truncated.empty:
        raise RasterDetectError(
            f"No finished trial has a value of {metric!r} ({len(results)} trials; see their "
            "'status' and 'error' columns)."
        )
    winner = truncated.loc[truncated[metric].astype(float).idxmax()]
    warnings.warn(
        f"No trial completed its training budget; the best of {len(truncated)} truncated "
        f"trial(s) is used: {winner['trial']} ({winner.get('error', '')}). Its {metric} is not "
        "comparable with a complete trial's: raise max_minutes_per_trial, or lower the budget "
        "(max_steps), and run the grid again with retry_failed=True to resume them.",
        stacklevel=2,
    )
    return winner


def trials_failed_message(failed: pd.DataFrame) -> str:
    """``"Every trial failed (n): "`` and one line per trial: its id and its error's first line."""
    lines = [f"Every trial of the grid failed ({len(failed)}); their errors:"]
    for row in failed.itertuples(index=False):
        error = str(getattr(row, "error", "") or "").strip()
        first = error.splitlines()[0] if error else "(no error recorded; see its error.txt)"
        lines.append(f"  {getattr(row, 'trial', '?')}: {first}")
    return "\n".join(lines)
