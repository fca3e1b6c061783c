"""A grid's trials on Ray Tune (embedded Ray, 2 CPUs): concurrency, failures, ASHA, resume."""

import json

import pandas as pd
import pytest
import torch
from pytorch_lightning.callbacks import Callback

from model.config import ModelConfig
from model.ray_options import RayOptions
from model.training.grid import read_trial_metrics, run_grid
from model.training.ray_trials import ReportValidation, open_store_here
from model.training.results import best_trial
from tests.model.store_factory import open_store, write_disc_store
from tiling.errors import ConfigError

ray = pytest.importorskip("ray")

FAST = {"max_epochs": 2, "limit_batches": 2, "enable_progress_bar": False}


@pytest.fixture(scope="module", autouse=True)
def embedded_ray():
    """One Ray for the module (a start costs seconds); run_grid joins it instead of starting."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


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
