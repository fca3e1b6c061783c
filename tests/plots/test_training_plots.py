import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from plots.training import plot_detections, plot_grid_heatmap, plot_training_curves
from tiling.errors import ConfigError


def results_table():
    rows = []
    for lr in (1e-4, 3e-4):
        for bs in (4, 8):
            for seed in (0, 1):
                rows.append(
                    {
                        "trial": f"t{lr}{bs}{seed}",
                        "lr": lr,
                        "batch_size": bs,
                        "seed": seed,
                        "status": "done",
                        "val/map_50": lr * 1000 + bs / 100 + seed / 1000,
                    }
                )
    rows.append(
        {
            "trial": "bad",
            "lr": 1e-4,
            "batch_size": 4,
            "seed": 2,
            "status": "failed",
            "val/map_50": 9.0,
        }
    )
    return pd.DataFrame(rows)


def test_grid_heatmap_shows_the_best_over_other_parameters():
    fig = plot_grid_heatmap(results_table(), x="lr", y="batch_size")
    assert isinstance(fig, Figure)
    texts = sorted(float(t.get_text()) for t in fig.axes[0].texts)
    # best over seed, failed trial ignored
    assert texts == pytest.approx(sorted([0.141, 0.181, 0.341, 0.381]), abs=1e-3)
    with pytest.raises(ConfigError, match=r"column\(s\) \['momentum'\] not in the results"):
        plot_grid_heatmap(results_table(), x="momentum", y="lr")


def test_grid_heatmap_flags_truncated_cells_and_prefers_complete_trials():
    table = results_table()
    cut = table["lr"].eq(3e-4) & table["batch_size"].eq(8)
    table.loc[cut, "status"] = "truncated"  # the whole cell: shown, flagged
    better = {"trial": "x", "lr": 1e-4, "batch_size": 8, "seed": 3, "status": "truncated"}
    table = pd.concat([table, pd.DataFrame([{**better, "val/map_50": 0.99}])], ignore_index=True)
    fig = plot_grid_heatmap(table, x="lr", y="batch_size")
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["0.141", "0.181", "0.341", "0.381*"]  # 0.99 (truncated) loses to 0.181
    assert "1 cut short (time guard): not comparable" in fig.axes[0].get_title()
    table.loc[table["trial"] == "x", "status"] = "stopped"  # ASHA on Ray: the same rule
    title = plot_grid_heatmap(table, x="lr", y="batch_size").axes[0].get_title()
    assert "1 cut short (ASHA or time guard)" in title


def write_trial(folder, epochs, offset):
    logs = folder / "logs" / "run0"
    logs.mkdir(parents=True)
    rows = []
    for e in range(epochs):
        rows.append({"epoch": e, "step": e * 2, "train/loss": 2.0 - e * 0.3 + offset})
        rows.append({"epoch": e, "step": e * 2 + 1, "train/epoch_loss": 1.9 - e * 0.3 + offset})
        rows.append({"epoch": e, "step": e * 2 + 1, "val/map_50": 0.1 * e + offset})
    pd.DataFrame(rows).to_csv(logs / "metrics.csv", index=False)
    return folder


def test_training_curves_from_folders_and_from_results(tmp_path):
    a = write_trial(tmp_path / "a", 3, 0.0)
    b = write_trial(tmp_path / "b", 2, 0.1)
    fig = plot_training_curves([a, b])
    loss_ax, map_ax = fig.axes[:2]
    assert len(loss_ax.lines) == 2 and len(map_ax.lines) == 2
    assert list(map_ax.lines[0].get_ydata()) == pytest.approx([0.0, 0.1, 0.2])
    assert list(loss_ax.lines[0].get_ydata()) == pytest.approx([1.9, 1.6, 1.3])
    table = pd.DataFrame({"trial": ["a", "b"], "trial_dir": [str(a), str(b)]})
    fig = plot_training_curves(table)
    assert [line.get_label() for line in fig.axes[1].lines] == ["a", "b"]
    with pytest.raises(ConfigError, match="no 'trial_dir' column"):
        plot_training_curves(pd.DataFrame({"trial": ["a"]}))


@pytest.mark.parametrize("bands", [1, 3])
def test_plot_detections_draws_truth_and_predictions_above_threshold(bands):
    images = torch.rand(3, bands, 32, 32) * 1000
    targets = [{"boxes": torch.tensor([[2.0, 2.0, 10.0, 10.0]]), "labels": torch.tensor([0])}] * 3
    preds = [
        {
            "boxes": torch.tensor([[2.0, 2.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]),
            "scores": torch.tensor([0.9, 0.2]),
            "labels": torch.tensor([0, 1]),
        }
    ] * 3
    fig = plot_detections(images, preds, targets, ["crater", "rock"], score_thresh=0.5, ncols=2)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 3
    assert all(len(ax.patches) == 2 for ax in shown)  # 1 truth + 1 prediction >= 0.5
    assert "crater 0.90" in [t.get_text() for t in shown[0].texts]
    fig = plot_detections(
        images, preds, targets, ["crater", "rock"], score_thresh=0.1, circles=False
    )
    assert len(next(ax for ax in fig.axes if ax.images).patches) == 3


def test_grid_heatmap_shows_the_bootstrap_interval_under_each_value():
    table = results_table()
    table["val/map_50_lo"] = table["val/map_50"] - 0.05
    table["val/map_50_hi"] = table["val/map_50"] + 0.02
    table.loc[table["lr"].eq(3e-4) & table["batch_size"].eq(8), "val/map_50_lo"] = None
    fig = plot_grid_heatmap(table, x="lr", y="batch_size")
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["0.141\n[0.09, 0.16]", "0.181\n[0.13, 0.20]", "0.341\n[0.29, 0.36]", "0.381"]
