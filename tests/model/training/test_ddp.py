"""Two CPU processes with DDP (ddp_spawn, gloo) train one trial of the grid."""

import pytest
import torch

from model.config import ModelConfig
from model.network.checkpoint import load_model
from model.run_config import RunConfig
from model.training.grid import read_trial_metrics, run_grid
from tests.model.store_factory import open_store, write_disc_store

RESOLVED = ("classes", "tile_size", "in_channels", "anchor_sizes", "image_mean", "image_std")


@pytest.mark.slow
def test_grid_trial_runs_on_two_cpu_processes(tmp_path):
    torch.set_num_threads(1)
    splits = ["train"] * 8 + ["val"] * 4  # no test split: one spawn fewer
    store = open_store(write_disc_store(tmp_path / "store", n_tiles=12, splits=splits))
    base = ModelConfig(batch_size=2, augment="flips")
    results = run_grid(
        base,
        {},
        store,
        tmp_path / "grid",
        run=RunConfig(accelerator="cpu", devices=2, strategy="ddp_spawn"),
        max_epochs=1,
        limit_batches=2,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
    )
    row = results.iloc[0]
    assert row["status"] == "done", row["error"]
    assert 0.0 <= row["val/map_50"] <= 1.0
    metrics = read_trial_metrics(row["trial_dir"])
    assert metrics["train/loss"].notna().any()
    _model, config = load_model(row["checkpoint"])
    assert config == base.replace(**{k: getattr(config, k) for k in RESOLVED})
    assert not {"devices", "strategy"} & set(config.to_dict())  # run settings stay out
    assert (tmp_path / "grid" / "best.ckpt").is_file()
