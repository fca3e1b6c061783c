"""Random search: seeded draws from lists and ranges, checked entries, the grid's trial list."""

import math

import pytest

from model.config import ModelConfig
from model.training.grid import run_grid, search_combos
from model.training.search import sample_space
from tests.model.store_factory import open_store, write_disc_store
from tiling.errors import ConfigError

SPACE = {
    "lr": {"loguniform": [1e-4, 1e-2]},
    "focal_gamma": {"uniform": [1.0, 3.0]},
    "fpn_channels": {"randint": [32, 40]},
    "batch_size": [2, 4],
}


def test_draws_are_seeded_in_range_and_rounded():
    draws = sample_space(SPACE, 200, seed=3)
    assert draws == sample_space(SPACE, 200, seed=3) and draws != sample_space(SPACE, 200, seed=4)
    lrs = [d["lr"] for d in draws]
    assert all(1e-4 <= v <= 1e-2 for v in lrs)
    assert all(float(f"{v:.4g}") == v for v in lrs)  # 4 significant digits
    # log-uniform: about half of the draws below the geometric middle 1e-3
    assert 0.35 < sum(v < 1e-3 for v in lrs) / len(lrs) < 0.65
    assert all(1.0 <= d["focal_gamma"] <= 3.0 for d in draws)
    channels = {d["fpn_channels"] for d in draws}
    assert channels <= set(range(32, 41)) and {32, 40} <= channels  # both ends included
    assert all(isinstance(d["fpn_channels"], int) for d in draws)
    assert {d["batch_size"] for d in draws} == {2, 4}


@pytest.mark.parametrize(
    "spec",
    [
        {"loguniform": [0.0, 1.0]},
        {"uniform": [2.0, 1.0]},
        {"normal": [0.0, 1.0]},
        {"uniform": [0.0, math.inf]},
        {"uniform": [0.0, 1.0], "randint": [1, 2]},
        [],
        "1e-3",
    ],
)
def test_bad_entries_name_the_key_and_the_forms(spec):
    with pytest.raises(ConfigError, match=r"search space\['lr'\].*loguniform.*low < high"):
        sample_space({"lr": spec}, 2, seed=0)


def test_combos_of_a_random_search():
    assert search_combos({}, "random", 5, seed=0) == [{}]
    assert len(search_combos({"lr": {"uniform": [0.1, 0.2]}}, "random", 5, seed=0)) == 5
    assert search_combos({"batch_size": [2]}, "random", 5, seed=0) == [{"batch_size": 2}]  # once
    assert search_combos({"lr": [1, 2]}, "grid", 5, seed=0) == [{"lr": 1}, {"lr": 2}]
    with pytest.raises(ConfigError, match=r"grid\['num_workers'\] cannot be searched"):
        search_combos({"num_workers": [0, 2]}, "random", 2, seed=0)
    with pytest.raises(ConfigError, match="search='bayes' must be 'grid' or 'random'"):
        search_combos({"lr": [1]}, "bayes", 2, seed=0)
    with pytest.raises(ConfigError, match="num_samples=0"):
        search_combos({"lr": [1]}, "random", 0, seed=0)


@pytest.mark.slow
def test_run_grid_draws_its_trials(tmp_path):
    store = open_store(write_disc_store(tmp_path / "s", n_tiles=12, tile_size=64))
    base = ModelConfig(batch_size=2, augment="none", lr=1e-3, seed=5)
    space = {"lr": {"loguniform": [1e-4, 1e-2]}}
    fast = {"max_epochs": 1, "limit_batches": 1, "enable_progress_bar": False}
    results = run_grid(base, space, store, tmp_path / "g", search="random", num_samples=2, **fast)
    expected = [d["lr"] for d in sample_space(space, 2, seed=5)]
    assert results["lr"].tolist() == expected and (results["status"] == "done").all()
