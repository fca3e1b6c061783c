"""What a trial logged: its CSV log folders, their rows merged, the best validation row.

Read by the grid (a trial's summary), by Ray's driver (a stopped trial's summary) and by the
plots (learning curves). Layout: ``trials/<id>/logs/run<k>/metrics.csv`` per (re)start and
``logs/run<k>_test/`` for its test pass (:mod:`model.training.grid`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from model.training.trainer import MONITOR


def log_versions(trial_dir: str | Path) -> list[Path]:
    """The CSV log folders ``logs/run<k>`` and ``logs/run<k>_test`` of a trial, in run order."""
    found = []
    for folder in Path(trial_dir).glob("logs/run*"):
        match = re.fullmatch(r"run(\d+)(_test)?", folder.name)
        if match and folder.is_dir():
            found.append((int(match[1]), bool(match[2]), folder))
    return [folder for *_, folder in sorted(found)]


def read_trial_metrics(trial_dir: str | Path) -> pd.DataFrame:
    """Every logged row of a trial: its CSV logs merged in run order, else ``metrics.csv``."""
    trial_dir = Path(trial_dir)
    parts = [f / "metrics.csv" for f in log_versions(trial_dir) if (f / "metrics.csv").is_file()]
    if not parts:
        merged = trial_dir / "metrics.csv"
        return pd.read_csv(merged) if merged.is_file() else pd.DataFrame()
    return pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)


def best_row(metrics: pd.DataFrame, metric: str = MONITOR) -> dict[str, float]:
    """The validation values (``val/*``, ``epoch``) of the epoch where ``metric`` was highest."""
    if metric not in metrics or metrics[metric].notna().sum() == 0:
        return {}
    row = metrics.loc[metrics[metric].idxmax()]
    out = {k: float(v) for k, v in row.items() if str(k).startswith("val/") and pd.notna(v)}
    out["best_epoch"] = float(row["epoch"]) if "epoch" in row else float("nan")
    return out
