import hashlib
import json

import pandas as pd
import pytest
import torch
from pytorch_lightning.callbacks import Callback

from augment.recipe import AUTO_COPY_PASTE_BELOW
from model.config import ModelConfig
from model.network.checkpoint import load_model
from model.run_config import RunConfig
from model.training import grid as grid_mod
from model.training.grid import (
    best_trial,
    expand_grid,
    read_trial_metrics,
    resolve_augment,
    run_grid,
    trial_config,
    trial_id,
)
from tests.model.store_factory import open_store, write_disc_store
from tiling.errors import ConfigError, RasterDetectError
from tiling.geometry.splits import objects_of_split, objects_per_split

torch.set_num_threads(2)
FAST = {
    "max_epochs": 2,
    "limit_batches": 2,
    "enable_progress_bar": False,
    "num_sanity_val_steps": 0,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return open_store(write_disc_store(tmp_path_factory.mktemp("s"), n_tiles=12, tile_size=64))


@pytest.fixture
def base():
    return ModelConfig(batch_size=2, augment="flips", lr=1e-3)


class Interrupt(BaseException):
    """Stands for Ctrl-C / a kernel restart: not an Exception, so the grid must not catch it."""


class StopAfterFirstEpoch(Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            trainer.save_checkpoint(trainer.checkpoint_callback.dirpath + "/last.ckpt")
            raise Interrupt


class FailForLr(Callback):
    def __init__(self, lr):
        self.lr = lr

    def on_train_start(self, trainer, pl_module):
        if pl_module.config.lr == self.lr:
            raise RuntimeError("loss is NaN (simulated)")


def test_expand_grid_is_the_product_in_order():
    combos = expand_grid({"lr": [1, 2], "batch_size": [3, 4, 5]})
    assert len(combos) == 6 and combos[0] == {"lr": 1, "batch_size": 3}
    assert combos[-1] == {"lr": 2, "batch_size": 5}


def test_expand_grid_errors():
    with pytest.raises(ConfigError, match="set from the tile store"):
        expand_grid({"tile_size": [128, 256]})
    with pytest.raises(ConfigError, match=r"grid\['num_workers'\] cannot be searched: .*RunConfig"):
        expand_grid({"num_workers": [0, 2]})
    with pytest.raises(ConfigError, match="non-empty list"):
        expand_grid({"lr": []})
    with pytest.raises(ConfigError, match="non-empty list"):
        expand_grid({"backbone": "resnet18"})


def test_trial_config_takes_the_store_and_resolves(store, base):
    config = trial_config(base, {"lr": 3e-4}, store)
    assert config.lr == 3e-4 and config.classes == store.labels and config.tile_size == 64
    assert config.anchor_sizes != "auto" and config.image_mean == store.band_stats["mean"]
    same = trial_id(config, store="x")
    assert same == trial_id(trial_config(base, {"lr": 3e-4}, store), store="x")
    assert same != trial_id(config, store="y") and same.startswith("t-") and len(same) == 12
    with pytest.raises(ConfigError, match="Unknown ModelConfig key"):
        trial_config(base, {"learning_rate": 1}, store)


def test_trial_id_hashes_a_later_field_only_away_from_its_default(store, base):
    config = trial_config(base, {}, store)
    fields = config.to_dict()
    del fields["box_loss"]  # as a config of the version before box_loss
    before = hashlib.sha1(json.dumps({"config": fields}, sort_keys=True).encode()).hexdigest()
    assert trial_id(config) == "t-" + before[:10]
    assert trial_id(config.replace(box_loss="giou")) != trial_id(config)


def test_trial_config_resolves_stride4_auto_from_the_training_objects(store, base, monkeypatch):
    diameters = objects_of_split(store.tiles, store.boxes, "train")["diameter"]
    monkeypatch.setattr("model.network.anchors.SMALL_OBJECT_PX", float(diameters.max()) + 1)
    small = trial_config(base, {"stride4": "auto"}, store)  # every training object is small
    assert small.stride4 is True and small.n_levels == 6 and len(small.anchor_sizes) == 6
    assert trial_id(small) == trial_id(trial_config(base, {"stride4": True}, store))
    monkeypatch.setattr("model.network.anchors.SMALL_OBJECT_PX", float(diameters.min()))
    assert trial_config(base, {"stride4": "auto"}, store).stride4 is False  # none is


def test_trial_config_resolves_the_step_budget_and_the_trainer_refuses_it_unresolved(store, base):
    auto = trial_config(base.replace(max_steps="auto"), {"stride4": False}, store)
    assert auto.tile_size == 64 and auto.max_steps == 1920  # capped: 64 px tiles of 2
    same = trial_config(base.replace(max_steps=1920), {"stride4": False}, store)
    assert trial_id(auto) == trial_id(same)  # the id names the steps that train
    assert trial_config(base.replace(max_steps="auto"), {"batch_size": 4}, store).max_steps == 1920
    from model.training.trainer import build_trainer

    with pytest.raises(ConfigError, match=r"max_steps='auto' depends on the tile size"):
        build_trainer(base.replace(max_steps="auto"), store.path, enable_progress_bar=False)


def test_trial_config_resolves_augment_auto_from_the_training_objects(store, base, monkeypatch):
    n_train = int(objects_per_split(store.tiles, store.boxes)["train"])
    assert 0 < n_train < AUTO_COPY_PASTE_BELOW
    few = trial_config(base, {"augment": "auto"}, store)
    assert few.augment == "copy_paste"
    assert trial_id(few) == trial_id(trial_config(base, {"augment": "copy_paste"}, store))
    monkeypatch.setattr("augment.recipe.AUTO_COPY_PASTE_BELOW", n_train)  # as many as the limit
    assert trial_config(base, {"augment": "auto"}, store).augment == "default"
    assert resolve_augment("flips", store) == "flips"  # a named recipe is kept as it is


@pytest.mark.slow
def test_grid_writes_trials_results_and_best(store, base, tmp_path):
    out = tmp_path / "grid"
    results = run_grid(base, {"lr": [1e-3, 3e-4]}, store, out, **FAST)
    assert list(results.columns[:6]) == ["trial", "lr", "status", "steps", "budget_steps", "error"]
    assert (results["status"] == "done").all() and len(results) == 2
    for col in (
        "val/map_50",
        "val/map",
        "val/map_75",
        "val/f1",
        "test/map_50",
        "train_time_s",
        "checkpoint",
        "best_epoch",
    ):
        assert col in results.columns, col
    saved = pd.read_csv(out / "grid_results.csv")
    assert saved["trial"].tolist() == results["trial"].tolist()
    for row in results.itertuples():
        folder = out / "trials" / row.trial
        assert (folder / "config.yaml").is_file() and (folder / "metrics.csv").is_file()
        # a complete trial keeps its best weights only: no optimiser state, no last.ckpt
        assert not (folder / "checkpoints" / "last.ckpt").exists()
        best = torch.load(folder / "checkpoints" / "best.ckpt", weights_only=True)
        assert "state_dict" in best and "optimizer_states" not in best
        assert json.loads((folder / "summary.json").read_text())["status"] == "done"
        assert ModelConfig.from_yaml(folder / "config.yaml").lr == row.lr
        metrics = read_trial_metrics(folder)
        assert {"train/loss", "val/map_50", "epoch", "lr-AdamW"} <= set(metrics.columns)
    winner = best_trial(results)
    assert (out / "best.ckpt").is_file() and (out / "best_config.yaml").is_file()
    model, config = load_model(out / "best.ckpt")
    assert config.lr == winner["lr"] and not model.training

    # a second run skips every finished trial, also on other hardware with other workers
    def boom(*args, **kwargs):
        raise AssertionError("finished trial ran again")

    monkey = pytest.MonkeyPatch()
    monkey.setattr(grid_mod, "run_trial", boom)
    other = RunConfig(accelerator="cpu", devices=1, num_workers=2, precision="bf16-mixed")
    again = run_grid(base, {"lr": [1e-3, 3e-4]}, store, out, run=other, **FAST)
    monkey.undo()
    assert again["trial"].tolist() == results["trial"].tolist()
    assert again["val/map_50"].tolist() == pytest.approx(results["val/map_50"].tolist())


@pytest.mark.slow
def test_interrupted_trial_resumes_from_its_last_checkpoint(store, base, tmp_path):
    out = tmp_path / "grid"
    two = {**FAST, "max_epochs": 2}
    with pytest.raises(Interrupt):
        run_grid(base, {}, store, out, callbacks=[StopAfterFirstEpoch()], **two)
    (folder,) = (out / "trials").iterdir()
    assert (folder / "checkpoints" / "last.ckpt").is_file() and not (
        folder / "summary.json"
    ).exists()
    assert "optimizer_states" in torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    results = run_grid(base, {}, store, out, **two)
    assert results.loc[0, "status"] == "done" and results.loc[0, "epochs"] == 2
    metrics = read_trial_metrics(folder)
    assert metrics.dropna(subset=["val/map_50"])["epoch"].tolist() == [0, 1]  # epoch 0 not redone
    assert (folder / "logs" / "run1" / "metrics.csv").is_file()


@pytest.mark.slow
def test_failed_trial_is_recorded_and_others_go_on(store, base, tmp_path):
    out = tmp_path / "grid"
    results = run_grid(base, {"lr": [1e-3, 3e-4]}, store, out, callbacks=[FailForLr(1e-3)], **FAST)
    failed = results[results["lr"] == 1e-3].iloc[0]
    assert failed["status"] == "failed" and "loss is NaN" in failed["error"]
    assert "RuntimeError" in (out / "trials" / failed["trial"] / "error.txt").read_text()
    assert results[results["lr"] == 3e-4].iloc[0]["status"] == "done"
    assert best_trial(results)["lr"] == 3e-4
    # kept as failed by default, run again with retry_failed
    kept = run_grid(base, {"lr": [1e-3, 3e-4]}, store, out, **FAST)
    assert kept["status"].tolist() == results["status"].tolist()
    retried = run_grid(base, {"lr": [1e-3, 3e-4]}, store, out, retry_failed=True, **FAST)
    assert (retried["status"] == "done").all()


def test_best_trial_errors():
    results = pd.DataFrame({"trial": ["a", "b"], "status": ["done", "failed"],
                            "error": ["", "x"], "val/map_50": [float("nan")] * 2})  # fmt: skip
    with pytest.raises(ConfigError, match="metric='val/f2' is not in the results"):
        best_trial(results, "val/f2")
    with pytest.raises(RasterDetectError, match="No finished trial"):
        best_trial(results)


def test_best_trial_when_every_trial_failed_gives_their_errors():
    """The issue's case: no metric columns at all, and each trial's own error, first line."""
    results = pd.DataFrame({
        "trial": ["t-1", "t-2"], "status": ["failed", "failed"],
        "error": ["TilingError: The tile store /s has no 'val' tiles; rebuild it\nTraceback...",
                  "RuntimeError: CUDA out of memory"],
    })  # fmt: skip
    with pytest.raises(RasterDetectError) as info:
        best_trial(results)
    assert str(info.value).splitlines() == [
        "Every trial of the grid failed (2); their errors:",
        "  t-1: TilingError: The tile store /s has no 'val' tiles; rebuild it",
        "  t-2: RuntimeError: CUDA out of memory",
    ]


def test_trainer_has_checkpoints_lr_monitor_loggers_and_optional_early_stopping(tmp_path):
    from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    from model.training.trainer import BestAndLastCheckpoint, build_trainer

    config = ModelConfig(early_stopping_patience=3, max_epochs=7)
    run = RunConfig(accelerator="cpu")
    trainer = build_trainer(config, tmp_path, run=run, limit_batches=3, enable_progress_bar=False)
    kinds = {type(c) for c in trainer.callbacks}
    assert {BestAndLastCheckpoint, LearningRateMonitor, EarlyStopping} <= kinds
    ckpt = trainer.checkpoint_callback
    assert isinstance(ckpt, ModelCheckpoint)
    assert ckpt.monitor == "val/map_50" and ckpt.mode == "max" and ckpt.save_last
    assert (
        trainer.max_epochs == 7
        and trainer.limit_train_batches == 3
        and trainer.log_every_n_steps == 3
    )
    assert isinstance(trainer.loggers[0], CSVLogger)
    assert any(isinstance(lg, TensorBoardLogger) for lg in trainer.loggers)
    quiet = build_trainer(config.replace(early_stopping_patience=None), tmp_path, max_epochs=1)
    assert EarlyStopping not in {type(c) for c in quiet.callbacks} and quiet.max_epochs == 1


@pytest.mark.slow
def test_budget_in_steps_is_honoured_and_its_last_step_validated(store, base, tmp_path):
    out = tmp_path / "grid"
    # epochs of 2 steps (limit_batches), a budget of 3 steps: the last epoch ends after 1 step
    fast = {k: v for k, v in FAST.items() if k != "max_epochs"}
    results = run_grid(base.replace(max_steps=3), {}, store, out, **fast)
    row = results.iloc[0]
    assert row["status"] == "done" and row["steps"] == 3 and row["budget_steps"] == 3
    assert list(results.columns[:5]) == ["trial", "status", "steps", "budget_steps", "error"]
    validated = read_trial_metrics(out / "trials" / row["trial"]).dropna(subset=["val/map_50"])
    assert validated["step"].tolist() == [1, 2]  # after epoch 0 (2 steps) and after step 3


@pytest.mark.slow
def test_time_guard_marks_the_trial_truncated(store, base, tmp_path):
    out = tmp_path / "grid"
    results = run_grid(base, {"lr": [1e-3]}, store, out, max_minutes_per_trial=1e-6, **FAST)
    row = results.iloc[0]
    assert row["status"] == "truncated" and row["steps"] == 1 and row["budget_steps"] == 4
    assert "time guard" in row["error"] and "1 of 4 steps" in row["error"]
    assert pd.notna(row["val/map_50"])  # Lightning validates once more when the guard stops it
    saved = pd.read_csv(out / "grid_results.csv")
    assert saved.loc[0, "status"] == "truncated" and saved.loc[0, "steps"] == 1
    assert (out / "best.ckpt").is_file()  # the best truncated trial, for want of a complete one
    assert (out / "trials" / row["trial"] / "checkpoints" / "last.ckpt").is_file()  # to resume
    with pytest.warns(UserWarning, match=r"No trial completed.*time guard"):
        assert best_trial(results)["trial"] == row["trial"]
    with pytest.raises(ConfigError, match="max_minutes_per_trial=0 must be a positive number"):
        run_grid(base, {}, store, out, max_minutes_per_trial=0, **FAST)


def test_best_trial_takes_complete_trials_over_truncated_ones():
    results = pd.DataFrame(
        {
            "trial": ["short", "full", "broken"],
            "status": ["truncated", "done", "failed"],
            "error": ["time guard of 8 min (max_minutes_per_trial): 3 of 9 steps", "", "x"],
            "val/map_50": [0.9, 0.5, 0.99],
        }
    )
    assert best_trial(results)["trial"] == "full"
    only_short = results.assign(status=["truncated", "failed", "failed"])
    with pytest.warns(UserWarning, match=r"1 truncated trial\(s\) is used: short \(time guard"):
        assert best_trial(only_short)["trial"] == "short"


def test_trainer_takes_the_step_budget(tmp_path):
    from model.training.trainer import ValidateAtLastStep, build_trainer

    config = ModelConfig(max_steps=120, max_epochs=7)
    trainer = build_trainer(config, tmp_path, enable_progress_bar=False)
    assert trainer.max_steps == 120 and trainer.max_epochs == -1
    assert any(isinstance(c, ValidateAtLastStep) for c in trainer.callbacks)
    capped = build_trainer(config, tmp_path, max_epochs=2, enable_progress_bar=False)
    assert capped.max_steps == 120 and capped.max_epochs == 2
