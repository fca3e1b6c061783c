from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch

from model.config import ModelConfig
from model.network.data_settings import resolve_config
from model.training.datamodule import TileDataModule
from model.training.metrics import DetectionMetrics, MatchCounts, map_backend, match_detections
from model.training.module import (
    RetinaNetModule,
    build_optimizer,
    build_scheduler,
    drop_degenerate,
    predict_tiles,
)
from tests.model.store_factory import open_store, write_disc_store
from tiling.errors import ConfigError

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return open_store(write_disc_store(tmp_path_factory.mktemp("s"), n_tiles=12, tile_size=64))


@pytest.fixture(scope="module")
def config(store):
    base = ModelConfig(classes=store.labels, tile_size=64, batch_size=4, augment="flips")
    return resolve_config(base, store.boxes["diameter"].to_numpy(), store.band_stats)


# --- metrics ------------------------------------------------------------------------------------
def boxes(*rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def test_match_is_optimal_where_greedy_is_not():
    # detection 0 (highest score) overlaps both objects; greedy gives it object 0 (best IoU) and
    # detection 1, which overlaps object 0 only, stays unmatched. The optimum matches both.
    truth = boxes([0, 0, 10, 10], [4, 0, 14, 10])
    pred = boxes([1, 0, 11, 10], [-1, 0, 9, 10])
    p_hit, t_hit = match_detections(
        pred, torch.zeros(2, dtype=torch.long), truth, torch.zeros(2, dtype=torch.long)
    )
    assert p_hit.tolist() == [True, True] and t_hit.tolist() == [True, True]


def test_match_respects_labels_and_iou_threshold():
    truth = boxes([0, 0, 10, 10], [20, 20, 30, 30])
    pred = boxes([0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50])
    labels_t = torch.tensor([0, 1])
    p_hit, t_hit = match_detections(pred, torch.tensor([0, 0, 0]), truth, labels_t)
    assert p_hit.tolist() == [True, False, False] and t_hit.tolist() == [True, False]
    shifted = boxes([6, 0, 16, 10])  # IoU 4/16 = 0.25
    assert not match_detections(shifted, torch.tensor([0]), truth[:1], labels_t[:1])[0].any()
    empty = match_detections(boxes(), torch.zeros(0, dtype=torch.long), truth, labels_t)
    assert empty[0].numel() == 0 and not empty[1].any()


def test_match_counts_precision_recall_f1():
    metric = MatchCounts(score_thresh=0.5)
    preds = [
        {
            "boxes": boxes([0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]),
            "scores": torch.tensor([0.9, 0.8, 0.1]),
            "labels": torch.tensor([0, 0, 0]),
        },
    ]
    targets = [{"boxes": boxes([0, 0, 10, 10], [20, 20, 30, 30]), "labels": torch.tensor([0, 0])}]
    metric.update(preds, targets)
    out = metric.compute()
    assert out["precision"].item() == pytest.approx(0.5)
    assert out["recall"].item() == pytest.approx(0.5)
    assert out["f1"].item() == pytest.approx(0.5)
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert MatchCounts().compute()["f1"].item() == 0.0
    with pytest.raises(ConfigError, match="score threshold in"):
        MatchCounts(score_thresh=1.5)


def test_detection_metrics_perfect_and_missed():
    assert map_backend() in ("faster_coco_eval", "pycocotools")
    metrics = DetectionMetrics(score_thresh=0.5)
    truth = {"boxes": boxes([0, 0, 10, 10], [20, 20, 32, 32]), "labels": torch.tensor([0, 1])}
    perfect = {**truth, "scores": torch.tensor([0.9, 0.8])}
    metrics.update([perfect], [truth])
    out = metrics.compute()
    assert out["map_50"] == pytest.approx(1.0) and out["f1"] == pytest.approx(1.0)
    metrics.reset()
    metrics.update(
        [{"boxes": boxes(), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}],
        [truth],
    )
    out = metrics.compute()
    assert out["map_50"] == 0.0 and out["recall"] == 0.0


# --- module ------------------------------------------------------------------------------------
def test_module_needs_concrete_anchors(store):
    with pytest.raises(ConfigError, match='anchor_sizes="auto"'):
        RetinaNetModule(ModelConfig(classes=store.labels, tile_size=64))


def test_module_saves_its_config_and_accepts_the_dict(config):
    module = RetinaNetModule(config)
    assert module.hparams["config"] == config.to_dict()
    again = RetinaNetModule(config.to_dict())
    assert again.config == config


def test_augmentation_runs_only_while_training(config, store):
    module = RetinaNetModule(config.replace(augment="d4"))
    dm = TileDataModule(store, config)
    images, targets = next(iter(dm.val_dataloader()))
    module._trainer = SimpleNamespace(training=False, global_rank=0)
    same, _ = module.on_after_batch_transfer((images.clone(), targets), 0)
    assert torch.equal(same, images)
    module._trainer = SimpleNamespace(training=True, global_rank=0)
    changed = [module.on_after_batch_transfer((images.clone(), targets), 0)[0] for _ in range(4)]
    assert any(not torch.equal(c, images) for c in changed)
    module._trainer = None


def test_drop_degenerate_boxes():
    target = {
        "boxes": boxes([0, 0, 5, 5], [3, 3, 3, 8], [1, 1, 4, 1.001]),
        "labels": torch.tensor([0, 1, 2]),
    }
    out = drop_degenerate(target)
    assert out["labels"].tolist() == [0]


def test_schedulers(config):
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = build_optimizer(params, config.replace(lr=1e-2))
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["fused"]  # one kernel on the CPU
    sched = build_scheduler(opt, config.replace(lr=1e-2), 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-2) and lrs[-1] < 1e-3
    sgd = build_optimizer(params, config.replace(optimizer="sgd", scheduler="onecycle"))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["fused"]
    int_param = [torch.nn.Parameter(torch.zeros(1, dtype=torch.int64), requires_grad=False)]
    assert build_optimizer(params + int_param, config).defaults["fused"]  # frozen ones skipped
    assert build_scheduler(sgd, config.replace(scheduler="onecycle"), 10) is not None
    assert build_scheduler(sgd, config.replace(scheduler="none"), 10) is None


def test_fast_dev_run_trains_validates_and_tests(config, store, tmp_path):
    pl.seed_everything(0)
    module = RetinaNetModule(config)
    dm = TileDataModule(store, config)
    trainer = pl.Trainer(
        fast_dev_run=2,
        accelerator="cpu",
        enable_progress_bar=False,
        logger=False,
        default_root_dir=tmp_path,
    )
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    trainer.fit(module, datamodule=dm)
    logged = trainer.callback_metrics
    for key in (
        "train/loss",
        "train/loss_classification",
        "train/loss_bbox_regression",
        "val/map_50",
        "val/f1",
    ):
        assert key in logged, key
    assert torch.isfinite(logged["train/loss"])
    after = module.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    out = trainer.test(module, datamodule=dm, verbose=False)[0]
    assert set(out) == {
        f"test/{k}" for k in ("map", "map_50", "map_75", "precision", "recall", "f1")
    }


def test_predict_tiles_returns_images_predictions_and_targets(config, store):
    module = RetinaNetModule(config)
    images, preds, targets = predict_tiles(module, store, split="val", n=2)
    assert images.shape == (2, 1, 64, 64)
    assert len(preds) == len(targets) == 2
    assert set(preds[0]) == {"boxes", "scores", "labels"}
    assert all(len(t["boxes"]) > 0 for t in targets)  # tiles with objects first
