"""Thresholds chosen on validation, the mAP@50 bootstrap interval, and where they are stored."""

import numpy as np
import pandas as pd
import pytest
import torch
from torchmetrics.detection import MeanAveragePrecision

from model.config import ModelConfig
from model.network.checkpoint import read_score_thresholds, write_score_thresholds
from model.training import thresholds as thresholds_mod
from model.training.grid import run_grid
from model.training.thresholds import (
    RankedDetections,
    bootstrap_map_50,
    choose_thresholds,
    greedy_hits,
    map_50,
    rank_detections,
    scores_at,
    validation_report,
)
from tests.model.store_factory import open_store, write_disc_store
from tiling.errors import ConfigError

torch.set_num_threads(2)
FAST = {"max_epochs": 1, "limit_batches": 2, "enable_progress_bar": False}
COLUMNS = ("score_thresh_f1", "score_thresh_p70", "val/f1", "val/map_50_lo", "val/map_50_hi")


def ranked(scores, hits, n_truth, tiles=None):
    """One-label ranked detections over as many tiles as detections (or ``tiles``)."""
    scores, hits = np.asarray(scores, float), np.asarray(hits, bool)
    tiles = np.arange(len(scores)) if tiles is None else np.asarray(tiles)
    n_tiles = int(max(tiles.max(initial=-1) + 1, 1))
    return RankedDetections(
        scores=scores,
        hits=hits,
        labels=np.zeros(len(scores), np.int64),
        tiles=tiles,
        truth_tiles=np.arange(n_truth) % n_tiles,
        truth_labels=np.zeros(n_truth, np.int64),
        n_tiles=n_tiles,
    )


def test_threshold_maximises_f1_and_reports_precision_recall_there():
    # kept prefixes: k=3 gives tp 3 of 4 truths: F1 = 6/7, the best
    chosen = choose_thresholds(ranked([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 1, 0, 0], n_truth=4))
    assert chosen["score_thresh_f1"] == 0.7
    assert chosen["f1"] == pytest.approx(6 / 7)
    assert (chosen["precision"], chosen["recall"]) == pytest.approx((1.0, 0.75))
    assert chosen["score_thresh_p70"] == 0.6  # 3 of 4 = 0.75; 3 of 5 = 0.6 at 0.5


def test_precision_threshold_is_the_lowest_that_reaches_070():
    chosen = choose_thresholds(ranked([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 1, 0], n_truth=5))
    assert chosen["score_thresh_p70"] == 0.6  # 3 of 4 = 0.75; 3 of 5 = 0.6 at 0.5
    assert choose_thresholds(ranked([0.9, 0.8], [0, 1], n_truth=2))["score_thresh_p70"] is None


def test_tied_scores_are_kept_or_dropped_together():
    chosen = choose_thresholds(ranked([0.9, 0.5, 0.5], [1, 0, 1], n_truth=2))
    assert chosen["score_thresh_f1"] == 0.5 and chosen["recall"] == 1.0


def test_nothing_to_choose_from():
    assert choose_thresholds(ranked([], [], n_truth=3))["score_thresh_f1"] is None
    assert choose_thresholds(ranked([0.5], [0], n_truth=0))["f1"] == 0.0


def test_scores_at_a_threshold_count_the_kept_prefix():
    detections = ranked([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 0, 1, 0], n_truth=4)
    at = scores_at(detections, 0.7)  # kept 0.9, 0.8, 0.7: 2 hits of 3, 2 of 4 truths
    assert (at["precision"], at["recall"], at["f1"]) == pytest.approx((2 / 3, 0.5, 4 / 7))
    assert scores_at(detections, 0.95) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert scores_at(ranked([], [], n_truth=0), 0.5)["f1"] == 0.0


def test_greedy_hits_follow_score_and_labels():
    pred = {
        "boxes": torch.tensor([[0.0, 0, 10, 10], [1.0, 0, 11, 10], [20.0, 20, 30, 30]]),
        "scores": torch.tensor([0.5, 0.9, 0.8]),
        "labels": torch.tensor([0, 0, 1]),
    }
    target = {"boxes": torch.tensor([[0.0, 0, 10, 10], [20.0, 20, 30, 30]])}
    target["labels"] = torch.tensor([0, 0])
    # the 0.9 box takes the object first; the 0.8 box has the wrong label
    assert greedy_hits(pred, target).tolist() == [False, True, False]


def random_tiles(rng, n_tiles, per_tile=3):
    preds, targets = [], []
    for _ in range(n_tiles):
        xy = rng.uniform(0, 90, (per_tile, 2))
        truth = np.c_[xy, xy + 10]
        jitter = truth + rng.normal(0, 2.5, truth.shape)
        corner = rng.uniform(0, 90, (1, 2))
        extra = np.c_[corner, corner + 10]
        boxes = np.r_[jitter, extra]
        preds.append(
            {
                "boxes": torch.tensor(boxes, dtype=torch.float32),
                "scores": torch.tensor(rng.uniform(0.05, 1, len(boxes)), dtype=torch.float32),
                "labels": torch.tensor(rng.integers(0, 2, len(boxes))),
            }
        )
        targets.append(
            {
                "boxes": torch.tensor(truth, dtype=torch.float32),
                "labels": torch.tensor(rng.integers(0, 2, per_tile)),
            }
        )
    return preds, targets


def test_map_50_equals_torchmetrics():
    preds, targets = random_tiles(np.random.default_rng(1), n_tiles=12)
    reference = MeanAveragePrecision(iou_type="bbox")
    reference.update(preds, targets)
    expected = float(reference.compute()["map_50"])
    assert map_50(rank_detections(preds, targets))[0] == pytest.approx(expected, abs=1e-6)


def test_interval_holds_the_value_and_narrows_with_more_tiles():
    widths = []
    for n_tiles in (10, 160):
        preds, targets = random_tiles(np.random.default_rng(n_tiles), n_tiles)
        value, low, high = bootstrap_map_50(rank_detections(preds, targets), seed=0)
        assert low <= value <= high and 0 <= low < high <= 1
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


def test_interval_is_seeded():
    ranking = rank_detections(*random_tiles(np.random.default_rng(3), 20))
    assert bootstrap_map_50(ranking, seed=4) == bootstrap_map_50(ranking, seed=4)


def test_thresholds_round_trip_in_a_checkpoint(tmp_path):
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": {}}}, path)
    assert read_score_thresholds(path) == {}
    write_score_thresholds(path, {"score_thresh_f1": np.float64(0.4), "score_thresh_p70": None})
    assert read_score_thresholds(path) == {"score_thresh_f1": 0.4, "score_thresh_p70": None}


def test_a_trial_stores_its_thresholds_and_reports_them(tmp_path):
    store = open_store(write_disc_store(tmp_path / "s", n_tiles=12, tile_size=64))
    base = ModelConfig(batch_size=2, augment="none", lr=1e-3)
    results = run_grid(base, {}, store, tmp_path / "grid", **FAST)
    row = results.iloc[0]
    for column in COLUMNS:
        assert column in results.columns, column
    saved = pd.read_csv(tmp_path / "grid" / "grid_results.csv")
    assert set(COLUMNS) <= set(saved.columns)
    stored = read_score_thresholds(tmp_path / "grid" / "best.ckpt")
    assert set(stored) == {
        "score_thresh_f1", "score_thresh_p70", "score_thresh_f1@flips", "score_thresh_p70@flips"
    }  # fmt: skip
    assert stored["score_thresh_f1@flips"] == row["score_thresh_f1@flips"] or (
        stored["score_thresh_f1@flips"] is None and pd.isna(row["score_thresh_f1@flips"])
    )
    assert stored["score_thresh_f1"] == row["score_thresh_f1"] or (
        stored["score_thresh_f1"] is None and pd.isna(row["score_thresh_f1"])
    )
    assert row["val/map_50_lo"] <= row["val/map_50_hi"] or pd.isna(row["val/map_50_lo"])


def fake_views(monkeypatch, by_split):
    """``view_detections`` replaced: ``by_split[split][mode]`` whatever the checkpoint."""

    def views_of(checkpoint, store, config, device="cpu", split="val", tta=None):
        return {mode: found for mode, found in by_split[split].items() if mode in (None, tta)}

    monkeypatch.setattr(thresholds_mod, "view_detections", views_of)


def empty_checkpoint(path):
    torch.save({"state_dict": {}, "hyper_parameters": {"config": {}}}, path)
    return path


def test_report_scores_test_tiles_at_the_validation_threshold(tmp_path, monkeypatch):
    store = open_store(write_disc_store(tmp_path / "s", n_tiles=12, tile_size=64))
    assert (store.tiles["split"] == "test").any()
    checkpoint = empty_checkpoint(tmp_path / "m.ckpt")
    val = ranked([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 1, 0, 0], n_truth=4)  # F1-best at 0.7
    test = ranked([0.95, 0.75, 0.65, 0.4], [1, 0, 1, 1], n_truth=5)
    fake_views(monkeypatch, {"val": {None: val}, "test": {None: test}})
    report = validation_report(checkpoint, store, ModelConfig(), tta=None)
    assert report["score_thresh_f1"] == 0.7 and "score_thresh_f1@flips" not in report
    # at 0.7 the test keeps 0.95 and 0.75: 1 hit of 2 kept, 1 of 5 truths
    assert (report["test/precision"], report["test/recall"]) == pytest.approx((0.5, 0.2))
    assert report["test/f1"] == pytest.approx(2 / 7)
    assert read_score_thresholds(checkpoint) == {"score_thresh_f1": 0.7, "score_thresh_p70": 0.6}


def test_views_get_thresholds_and_validation_columns_of_their_own(tmp_path, monkeypatch):
    store = open_store(write_disc_store(tmp_path / "s", n_tiles=12, tile_size=64))
    checkpoint = empty_checkpoint(tmp_path / "m.ckpt")
    # fused views average scores down: the same ranking, every score lower
    one = ranked([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 1, 0, 0], n_truth=4)  # F1-best at 0.7
    fused = ranked([0.6, 0.5, 0.45, 0.3, 0.2], [1, 1, 0, 1, 0], n_truth=4)  # F1-best at 0.3
    test = ranked([0.95, 0.75, 0.65], [1, 0, 1], n_truth=3)
    fake_views(monkeypatch, {"val": {None: one, "flips": fused}, "test": {None: test}})
    report = validation_report(checkpoint, store, ModelConfig(), tta="flips")
    assert (report["score_thresh_f1"], report["score_thresh_f1@flips"]) == (0.7, 0.3)
    assert (report["score_thresh_p70"], report["score_thresh_p70@flips"]) == (0.6, 0.3)
    # val/* one pass at 0.7: 3 hits of 3 kept; val/*@flips at 0.3: 3 hits of 4 kept
    assert (report["val/precision"], report["val/recall"]) == pytest.approx((1.0, 0.75))
    assert (report["val/precision@flips"], report["val/recall@flips"]) == pytest.approx(
        (0.75, 0.75)
    )
    # test/* in one pass at 0.7: 0.95 and 0.75 kept, one hit, 1 of 3 truths
    assert (report["test/precision"], report["test/recall"]) == pytest.approx((0.5, 1 / 3))
    stored = read_score_thresholds(checkpoint)
    assert stored == {
        "score_thresh_f1": 0.7, "score_thresh_p70": 0.6,
        "score_thresh_f1@flips": 0.3, "score_thresh_p70@flips": 0.3,
    }  # fmt: skip


def test_one_pass_is_the_identity_view_of_the_same_forward_passes(tmp_path):
    from model.inference.tta import detect_tiles
    from model.network.checkpoint import save_model_checkpoint
    from model.network.factory import build_retinanet
    from model.training.datamodule import TileDataset, collate_tiles, fill_values
    from model.training.thresholds import view_detections

    store = open_store(write_disc_store(tmp_path / "s", n_tiles=12, tile_size=64))
    config = ModelConfig(
        in_channels=1, tile_size=64, anchor_sizes=((8.0,), (16.0,), (32.0,),
        (64.0,), (96.0,)), fpn_channels=32, score_thresh=0.0, batch_size=3,
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_retinanet(config).eval()
    checkpoint = save_model_checkpoint(model, config, tmp_path / "m.ckpt")
    found = view_detections(checkpoint, store, config, split="val", tta="flips")
    assert set(found) == {None, "flips"}
    ids = store.tiles.loc[store.tiles["split"] == "val", "tile_id"].to_numpy()
    dataset = TileDataset(store, ids, fill_values(config, store))
    images, targets = collate_tiles([dataset[i] for i in range(len(dataset))])
    with torch.inference_mode():
        for mode in (None, "flips"):
            expected = rank_detections(detect_tiles(model, images, mode, model.nms_thresh), targets)
            assert len(found[mode].scores) == len(expected.scores) > 0
            np.testing.assert_allclose(found[mode].scores, expected.scores, rtol=1e-5)
            np.testing.assert_array_equal(found[mode].hits, expected.hits)
    assert not np.allclose(found[None].scores[:5], found["flips"].scores[:5])


def test_a_finished_trial_gains_the_thresholds_of_other_views_without_training(tmp_path):
    store = open_store(write_disc_store(tmp_path / "s", n_tiles=12, tile_size=64))
    base = ModelConfig(batch_size=2, augment="none", lr=1e-3)
    first = run_grid(base, {}, store, tmp_path / "grid", tta="flips", **FAST).iloc[0]
    assert "score_thresh_f1@d4" not in first
    flips = read_score_thresholds(tmp_path / "grid" / "best.ckpt")
    assert set(flips) == {
        "score_thresh_f1", "score_thresh_p70", "score_thresh_f1@flips", "score_thresh_p70@flips"
    }  # fmt: skip
    trial_dir = tmp_path / "grid" / "trials" / first["trial"]
    logs = sorted(p.name for p in (trial_dir / "logs").iterdir())
    again = run_grid(base, {}, store, tmp_path / "grid", tta="d4", **FAST).iloc[0]
    assert sorted(p.name for p in (trial_dir / "logs").iterdir()) == logs  # not trained again
    assert again["score_thresh_f1"] == first["score_thresh_f1"] or pd.isna(first["score_thresh_f1"])
    for checkpoint in (tmp_path / "grid" / "best.ckpt", trial_dir / "checkpoints" / "best.ckpt"):
        stored = read_score_thresholds(checkpoint)
        assert {"score_thresh_f1@d4", "score_thresh_p70@d4"} <= set(stored)
        assert {k: stored[k] for k in flips} == flips  # the flips ones kept, unchanged
    saved = pd.read_csv(tmp_path / "grid" / "grid_results.csv")
    thresholds = [c for c in saved.columns if c.startswith("score_thresh_")]
    assert thresholds == [
        "score_thresh_f1", "score_thresh_f1@d4", "score_thresh_f1@flips",
        "score_thresh_p70", "score_thresh_p70@d4", "score_thresh_p70@flips",
    ]  # fmt: skip
    assert saved.columns.get_loc("score_thresh_p70@flips") < saved.columns.get_loc("best_epoch")
    summary = (trial_dir / "summary.json").read_text()
    assert "score_thresh_f1@d4" in summary and "score_thresh_f1@flips" in summary


def test_an_unknown_view_mode_fails_before_training(tmp_path):
    store = open_store(write_disc_store(tmp_path / "s", n_tiles=12, tile_size=64))
    with pytest.raises(ConfigError, match="tta='d8' is not a test-time augmentation"):
        run_grid(ModelConfig(), {}, store, tmp_path / "grid", tta="d8", **FAST)
    assert not (tmp_path / "grid").exists()


def test_a_split_without_tiles_ranks_nothing():
    empty = rank_detections([], [])
    assert (len(empty.scores), len(empty.truth_labels), empty.n_tiles) == (0, 0, 0)
    assert choose_thresholds(empty)["score_thresh_f1"] is None
