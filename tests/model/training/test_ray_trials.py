"""A grid's trials on Ray Tune (embedded Ray, 2 CPUs): concurrency, failures, ASHA, resume."""

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import ray
import torch
from pytorch_lightning.callbacks import Callback

from model.config import ModelConfig
from model.ray_options import RayOptions
from model.training.grid import read_trial_metrics, run_grid
from model.training.ray_trials import (
    ReportValidation,
    TrialProgress,
    open_store_here,
    tune_environment,
    work_in,
)
from model.training.results import best_trial
from model.training.trial_logs import log_versions
from tests.model.store_factory import open_store, write_disc_store
from tiling.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]

FAST = {"max_epochs": 2, "limit_batches": 2, "enable_progress_bar": False}


pytestmark = pytest.mark.usefixtures("embedded_ray")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return open_store(write_disc_store(tmp_path_factory.mktemp("s"), n_tiles=12, tile_size=64))


@pytest.fixture
def base():
    return ModelConfig(batch_size=2, augment="flips", lr=1e-3)


class FailForLr(Callback):
    def __init__(self, lr):
        self.lr = lr

    def on_train_start(self, trainer, pl_module):
        if pl_module.config.lr == self.lr:
            raise RuntimeError("loss is NaN (simulated)")


class FixedReport(ReportValidation):
    """Reports val/map_50 by learning rate: 0.9 for 1e-3, 0.1 otherwise."""

    def value(self, trainer, pl_module):
        return 0.9 if pl_module.config.lr == 1e-3 else 0.1


def last_loss(trial_dir):
    metrics = read_trial_metrics(trial_dir)
    return metrics["train/loss"].dropna().to_numpy()


@pytest.mark.slow
def test_concurrent_trials_match_sequential_ones(store, base, tmp_path):
    grid = {"lr": [1e-3, 3e-4]}
    torch.set_num_threads(1)  # as each Ray trial (trial_cpus=1)
    alone = run_grid(base, grid, store, tmp_path / "seq", **FAST)
    options = RayOptions(trial_cpus=1, max_concurrent_trials=2)
    both = run_grid(base, grid, store, tmp_path / "ray", ray=options, **FAST)
    assert both["trial"].tolist() == alone["trial"].tolist()  # same ids, same order
    assert (both["status"] == "done").all()
    for seq, par in zip(alone["trial_dir"], both["trial_dir"], strict=True):
        assert last_loss(par) == pytest.approx(last_loss(seq), rel=1e-4)
    saved = pd.read_csv(tmp_path / "ray" / "grid_results.csv")
    assert saved["trial"].tolist() == both["trial"].tolist()
    assert (tmp_path / "ray" / "best.ckpt").is_file()


@pytest.mark.slow
def test_failing_trial_is_recorded_while_the_other_finishes(store, base, tmp_path):
    options = RayOptions(trial_cpus=1, max_concurrent_trials=2)
    results = run_grid(
        base,
        {"lr": [1e-3, 3e-4]},
        store,
        tmp_path,
        ray=options,
        callbacks=[FailForLr(1e-3)],
        **FAST,
    )
    failed = results[results["lr"] == 1e-3].iloc[0]
    assert failed["status"] == "failed" and "loss is NaN" in failed["error"]
    assert results[results["lr"] == 3e-4].iloc[0]["status"] == "done"
    assert best_trial(results)["lr"] == 3e-4


@pytest.mark.slow
def test_asha_stops_the_trailing_trial(store, base, tmp_path):
    # one at a time: the good trial (lr 1e-3) records 0.9 at every rung, then the other reports
    # 0.1 at its first validation and is stopped there
    options = RayOptions(trial_cpus=2, max_concurrent_trials=1, scheduler="asha")
    four = {**FAST, "max_epochs": 4, "limit_batches": 1}
    results = run_grid(
        base, {"lr": [1e-3, 3e-4]}, store, tmp_path, ray=options, callbacks=[FixedReport()], **four
    )
    good, bad = (results[results["lr"] == lr].iloc[0] for lr in (1e-3, 3e-4))
    assert good["status"] == "done" and good["epochs"] == 4
    assert bad["status"] == "stopped" and "ASHA" in bad["error"]
    assert bad["steps"] < 4
    summary = json.loads((tmp_path / "trials" / bad["trial"] / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert best_trial(results)["trial"] == good["trial"]


@pytest.mark.slow
def test_a_second_search_runs_only_the_unfinished_trials(store, base, tmp_path):
    options = RayOptions(trial_cpus=1, max_concurrent_trials=2)
    first = run_grid(base, {"lr": [1e-3]}, store, tmp_path, ray=options, **FAST)
    done_dir = tmp_path / "trials" / first.loc[0, "trial"]
    stamp = (done_dir / "summary.json").stat().st_mtime_ns
    again = run_grid(base, {"lr": [1e-3, 3e-4]}, store, tmp_path, ray=options, **FAST)
    assert (again["status"] == "done").all() and len(again) == 2
    assert (done_dir / "summary.json").stat().st_mtime_ns == stamp  # not trained again


def test_a_node_without_the_store_names_the_path(tmp_path, store):
    with pytest.raises(ConfigError, match=r"not readable on node .*shared filesystem"):
        open_store_here(type(store), str(tmp_path / "missing"))


def test_options_are_checked():
    with pytest.raises(ConfigError, match="trial_cpus=0"):
        RayOptions(trial_cpus=0)
    with pytest.raises(ConfigError, match="max_concurrent_trials=0"):
        RayOptions(max_concurrent_trials=0)
    with pytest.raises(ConfigError, match="scheduler='hyperband'"):
        RayOptions(scheduler="hyperband")  # type: ignore[arg-type]


DRIVER = '''
import signal, sys, time
# a pytest-xdist worker ignores SIGINT, and an ignored signal stays ignored in its children:
# give this driver Python's Ctrl-C back
signal.signal(signal.SIGINT, signal.default_int_handler)
from pytorch_lightning.callbacks import Callback
from model.config import ModelConfig
from model.ray_options import RayOptions
from model.training.grid import run_grid
from tiling.store import TileStore


class Slow(Callback):
    """The long trial (12 steps) sleeps 0.5 s a step: time to stop the driver mid-trial."""

    def on_train_batch_end(self, trainer, pl_module, *args):
        if pl_module.config.max_steps == 12:
            time.sleep(0.5)


base = ModelConfig(batch_size=2, augment="flips", lr=1e-3)
run_grid(base, {"max_steps": [4, 12]}, TileStore(sys.argv[1]), sys.argv[2], limit_batches=2,
         enable_progress_bar=False, callbacks=[Slow()],
         ray=RayOptions(trial_cpus=1, max_concurrent_trials=1, num_cpus=2))
'''


def wait_for(condition, seconds, proc):
    deadline = time.monotonic() + seconds
    while not condition():
        if proc.poll() is not None:
            tail = proc.communicate()[1].decode()[-3000:]
            raise AssertionError(f"the driver ended early ({proc.returncode}):\n{tail}")
        assert time.monotonic() < deadline, "the driver did not get there in time"
        time.sleep(0.2)


def tree_state(folder):
    return sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())


def settled(folder, quiet_s, within_s):
    """Wait until nothing under ``folder`` changed for ``quiet_s`` (fail after ``within_s``)."""
    deadline, state, since = time.monotonic() + within_s, tree_state(folder), time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, f"{folder} is still being written to"
        time.sleep(0.5)
        now = tree_state(folder)
        if now != state:
            state, since = now, time.monotonic()


CTRL_C = pytest.param(
    signal.SIGINT,
    marks=pytest.mark.skipif(
        os.environ.get("RAY_CTRL_C_TEST") != "1",
        reason="a third embedded Ray in the suite; RAY_CTRL_C_TEST=1 runs it (README)",
    ),
)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, CTRL_C])
def test_a_search_whose_driver_is_stopped_resumes(store, base, tmp_path, stop):
    """Kill the driver while the second trial trains; the next call finishes the search."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store.path), str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its Ray processes in its group, to clean up after
    )
    try:

        def mid_search():
            summaries = list(out.glob("trials/*/summary.json"))
            lasts = list(out.glob("trials/*/checkpoints/last.ckpt"))
            return len(summaries) == 1 and any(
                not (p.parents[1] / "summary.json").exists() for p in lasts
            )

        wait_for(mid_search, 300, proc)  # a deadline, not a timing: generous for loaded machines
        proc.send_signal(stop)  # the driver alone, as a kill or Ctrl-C would
        _, err = proc.communicate(timeout=60)
        settled(out / "trials", quiet_s=3, within_s=30)  # the trial's worker dies with it
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # Ray agents a killed driver leaves behind
    if stop == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # KeyboardInterrupt out of the search, not Tune's "graceful" end
        # an uncaught KeyboardInterrupt ends Python with SIGINT (returncode -2)
        assert proc.returncode == -signal.SIGINT and b"KeyboardInterrupt" in err
    (done,) = (p.parent for p in out.glob("trials/*/summary.json"))
    (cut,) = (p for p in out.glob("trials/*") if p != done and p.is_dir())
    assert (cut / "checkpoints" / "last.ckpt").is_file()
    stamp = (done / "summary.json").stat().st_mtime_ns

    results = run_grid(
        base,
        {"max_steps": [4, 12]},
        store,
        out,
        limit_batches=2,
        enable_progress_bar=False,
        ray=RayOptions(trial_cpus=1, max_concurrent_trials=1),
    )
    assert (results["status"] == "done").all()
    assert results.set_index("max_steps")["steps"].to_dict() == {4: 4, 12: 12}
    assert (done / "summary.json").stat().st_mtime_ns == stamp  # not trained again
    runs = sorted(p.name for p in log_versions(cut) if not p.name.endswith("_test"))
    assert runs == ["run0", "run1"]  # the second run resumed from last.ckpt
    resumed = pd.read_csv(cut / "logs" / "run1" / "metrics.csv")
    assert resumed["step"].min() > 0


class FakeTrial:
    def __init__(self, name):
        self.config = {"trial": name}


def test_progress_counts_ended_trials_and_shows_the_latest_validation():
    with TrialProgress(2) as progress:
        progress.on_trial_result(0, [], FakeTrial("t-a"), {"step": 120, "val/map_50": 0.61})
        assert progress.latest == {"t-a": "step 120 val 0.610"}
        progress.on_trial_result(0, [], FakeTrial("t-a"), {"trial_complete": 1})
        progress.on_trial_complete(0, [], FakeTrial("t-a"))
        progress.on_trial_error(0, [], FakeTrial("t-b"))
        assert progress.ended == 2
        assert progress.latest == {"t-a": "ended", "t-b": "error"}


def test_tune_runs_without_its_sigint_handler(monkeypatch):
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")
    monkeypatch.delenv("TUNE_DISABLE_SIGINT_HANDLER", raising=False)
    with tune_environment():
        assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
    assert "TUNE_DISABLE_SIGINT_HANDLER" not in os.environ
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1"


def test_gpus_per_trial(monkeypatch):
    assert RayOptions(trial_gpus=0.25).gpus_per_trial("cpu") == 0.25  # as given
    assert RayOptions().gpus_per_trial("cpu") == 0.0
    assert RayOptions().gpus_per_trial("auto") == 0.0  # this Ray has no GPU
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0, "GPU": 2.0})
    assert RayOptions().gpus_per_trial("auto") == 1.0
    assert RayOptions().gpus_per_trial("cuda:1") == 1.0
    assert RayOptions().gpus_per_trial("cpu") == 0.0
    assert RayOptions().gpus_per_trial("mps") == 0.0
    with pytest.raises(ConfigError, match="trial_gpus=-1"):
        RayOptions(trial_gpus=-1)


def test_cpus_per_trial(monkeypatch):
    assert RayOptions(trial_cpus=1.5).cpus_per_trial() == 1.5  # as given
    assert RayOptions().cpus_per_trial() == 2.0  # the default, as the local loop's threads
    auto = functools.partial(RayOptions, trial_cpus="auto")
    assert auto().cpus_per_trial() == 2.0  # this Ray's 2 CPUs, one trial at a time
    assert auto(max_concurrent_trials=2).cpus_per_trial() == 1.0
    assert auto(max_concurrent_trials=3).cpus_per_trial() == 1.0  # at least one
    nodes = [
        {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 1.0}},
        {"Alive": True, "Resources": {"CPU": 4.0}},
        {"Alive": False, "Resources": {"CPU": 64.0}},  # a dead node offers nothing
    ]
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    assert auto().cpus_per_trial() == 16.0  # never more than one node has
    assert auto(max_concurrent_trials=3).cpus_per_trial() == 5.0
    with pytest.raises(ConfigError, match="trial_cpus='many'"):
        RayOptions(trial_cpus="many")  # type: ignore[arg-type]


@pytest.mark.slow
def test_relative_paths_mean_what_they_mean_to_the_driver(store, base, tmp_path, monkeypatch):
    # Tune starts each trial in a folder of its own; the notebook's paths are relative
    monkeypatch.chdir(tmp_path)
    options = RayOptions(trial_cpus="auto")  # all of this Ray's CPUs for the trial
    results = run_grid(base, {"lr": [1e-3]}, store, "runs/latest", ray=options, **FAST)
    assert results.loc[0, "status"] == "done", results.loc[0, "error"]
    trial = tmp_path / "runs" / "latest" / "trials" / results.loc[0, "trial"]
    assert (trial / "summary.json").is_file()
    assert (tmp_path / "runs" / "latest" / "best.ckpt").is_file()


def test_a_node_without_the_working_folder_names_it(tmp_path):
    with pytest.raises(
        ConfigError, match=r"working folder .*missing of the notebook is not there on node"
    ):
        work_in(str(tmp_path / "missing"))
