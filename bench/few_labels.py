"""Few-labels benchmark: train on N labelled objects of one region, score on a disjoint region.

For each data set of :mod:`bench.few_labels_data` (a varied synthetic crater field cut for each
``--counts`` N, and the real NEON tree tiles) and each ``--variants`` entry, the project's own
pipeline runs as the notebook does: :func:`tiling.catalog.read_catalogs`,
:func:`tiling.store.build_tile_store` (train raster only, blocks split into train and val),
:func:`model.training.run_grid` (one trial, the notebook's defaults from
:class:`model.parameters.RunParameters` with ``--steps`` optimiser steps, or with ``--steps
auto`` the notebook's own budget, :func:`model.budget.auto_max_steps` of ``--tile-size`` and each
variant's pyramid),
:func:`model.inference.predict_raster` over the whole test raster (score >= 0.05; windows of
the training tile size overlapping by a quarter, as in the notebook, or ``--window`` and
``--window-overlap``), the catalogue's
diameter filter, and :func:`model.evaluate.evaluate_catalog` (box IoU >= 0.5).

Columns: ``AP`` (all-point AP@0.5 of the whole test raster), ``F1`` (best F1 over score
thresholds) and its threshold ``thr``, ``R@P0.7`` (the highest recall at precision >= 0.7, 0 when
precision never reaches 0.7), ``train_s`` (seconds of training, pretraining included) and
``steps`` (detector steps), ``run`` (the run folder: the recipe that trained, e.g.
``augment=copy_paste``); ``thr_val`` (the threshold stored in the checkpoint, chosen on the
validation tiles: what the notebook and ``raster-detect predict`` use) and
``P@val``, ``R@val``, ``F1@val`` of the catalogue at it (the threshold chosen with the row's
views, ``score_thresh_f1@flips`` for a ``+flips`` row); ``F1@val1`` is the F1 of the same
catalogue at the one-pass threshold (what TTA rows got before thresholds per view). Variants:

- ``defaults``: the notebook's defaults (``augment="auto"``: recipe ``copy_paste`` below
  :data:`augment.recipe.AUTO_COPY_PASTE_BELOW` training objects, else ``default``;
  ``stride4="auto"``: :func:`model.network.anchors.auto_stride4`);
- ``old_defaults``: the defaults before both ``"auto"`` (recipe ``default``, no P2);
- ``no_stride4``: the defaults without P2 (those before ``stride4="auto"``);
- ``copy_paste``, ``mosaic``, ``object_mix``: the recipes of :mod:`augment.recipe`
  (:mod:`augment.copy_paste`, :mod:`augment.mosaic`);
- ``pretrain``: self-supervised pretraining of the backbone on the store's train and val tiles
  (:mod:`model.pretrain`), then detector training with the steps that the pretraining's time left,
  so that the total time matches ``defaults`` (at least a quarter of ``--steps``);
- ``tile_norm``: ``input_norm="tile"`` (each window normalised by its own mean and std);
- ``stride4``: the stride-4 pyramid level P2 (``ModelConfig.stride4``, set through the grid), whose
  anchors sit twice as densely for objects of a few pixels;
- ``giou``: the generalised-IoU box loss (``ModelConfig.box_loss``) instead of L1 on offsets;
- ``<variant>+flips`` (``--tta``, default ``flips``): the variant's checkpoint scored with
  test-time augmentation (the notebook's default prediction) at the thresholds its trial chose
  with those views (``run_grid(tta=...)``), no training of its own.

Variants that train alike share one run folder (``runs/<case>/<recipe and changes>``), and a
finished trial is not trained again, so ``defaults`` costs nothing beside the recipe it picks and
a second invocation with more variants only trains the new ones.

Run (budget: ``--steps`` per configuration; the table is printed and written to
``--work/few_labels.csv``)::

    python -m bench.few_labels --steps 300 --pretrain-steps 150 --datasets craters trees \
        --counts 100 300 1000 --variants old_defaults defaults pretrain --tta flips

Times are of this machine under its load at the time; compare rows of one run only.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench.few_labels_data import Case, crater_cases, tree_case, tree_half_cases
from model.budget import auto_max_steps
from model.evaluate import evaluate_catalog
from model.inference import predict_raster
from model.inference.predict import choose_score_thresh
from model.parameters import RunParameters
from model.training import resolve_augment, resolve_stride4, run_grid
from tiling.catalog import filters, read_catalogs
from tiling.store import build_tile_store
from tiling.store import tile_filters as tf

PRECISION_GOAL = 0.7
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "old_defaults": {"augment": "default", "model": {"stride4": False}},
    "no_stride4": {"model": {"stride4": False}},
    "copy_paste": {"augment": "copy_paste"},
    "mosaic": {"augment": "mosaic"},
    "object_mix": {"augment": "object_mix"},
    "pretrain": {"pretrain": True},
    "tile_norm": {"input_norm": "tile"},
    "stride4": {"model": {"stride4": True}},
    "giou": {"model": {"box_loss": "giou"}},
}


def parameters(args: argparse.Namespace, case: Case, steps: int) -> RunParameters:
    """The notebook's parameters for one case: defaults except tiles, budget and split."""
    lo, hi = case.diameters
    return RunParameters(
        tile_size=args.tile_size, overlap=args.tile_size // 8, min_diameter=lo, max_diameter=hi,
        split_fractions=[0.8, 0.2, 0.0], test_rasters=[], steps_per_trial=steps,
        workers=args.workers, seed=args.seed, max_minutes_per_trial=None, columns=case.columns,
        precision=args.precision, engine="local",  # Ray's start per row would add ~10 s, no change
        tta=args.tta,  # the trials' thresholds chosen with the views that score the +<tta> rows
    )  # fmt: skip


def build_store(args: argparse.Namespace, case: Case) -> Any:
    """The tile store of the case's train raster (reused when unchanged)."""
    p = parameters(args, case, args.steps)
    images, datasets = case.folder("train")
    data = read_catalogs(
        images, datasets, columns=p.columns, min_diameter=p.min_diameter,
        max_diameter=p.max_diameter,
    )  # fmt: skip
    return build_tile_store(
        [(data.rasters[n], c) for n, c in data.catalogs.items()], args.work / "tiles",
        tile_size=p.tile_size, overlap=p.overlap, min_visible=p.min_visible, workers=0,
        split=p.split, split_fractions=p.split_fractions, block_size=p.block_size,
        tile_filters=[tf.max_nodata_fraction(p.max_nodata), tf.keep_empty(p.keep_empty)],
        seed=p.seed,
    )  # fmt: skip


def run_key(args: argparse.Namespace, case: Case, variant: dict[str, Any], store: Any) -> str:
    """The folder name of a variant's run: its resolved recipe and other changes.

    Variants that train alike (``defaults`` and the recipe ``"auto"`` picks) share one training.
    """
    changes = {k: v for k, v in variant.items() if k != "model"}
    changes.update(variant.get("model", {}))
    p = parameters(args, case, args.steps)
    changes["augment"] = resolve_augment(changes.get("augment", p.augment), store)
    changes["stride4"] = resolve_stride4(changes.get("stride4", p.stride4), store)
    if not changes["stride4"]:
        del changes["stride4"]  # the folder names of runs before stride4="auto"
    return "-".join(f"{k}={v}" for k, v in sorted(changes.items()))


def budget_steps(args: argparse.Namespace, case: Case, variant: dict[str, Any], store: Any) -> int:
    """``--steps``, or with ``--steps auto`` the notebook's budget for the variant's pyramid."""
    if args.steps != "auto":
        return int(args.steps)
    p = parameters(args, case, args.steps)
    stride4 = variant.get("model", {}).get("stride4", p.stride4)
    has_p2 = bool(resolve_stride4(stride4, store))
    return auto_max_steps(int(store.tile_size), p.batch_size, has_p2)


def train(args: argparse.Namespace, case: Case, name: str, store: Any, step_s: float) -> dict:
    """Train one variant; its checkpoint, detector steps and seconds (pretraining included)."""
    variant = VARIANTS[name]
    out = args.work / "runs" / case.name / run_key(args, case, variant, store)
    steps, pre_s, weights = budget_steps(args, case, variant, store), 0.0, None
    if variant.get("pretrain"):
        from model.pretrain import pretrain_backbone

        config = parameters(args, case, steps).model_config().replace(tile_size=store.tile_size)
        start = time.perf_counter()
        weights = pretrain_backbone(store, config, out / "pretrained.pt", steps=args.pretrain_steps)
        pre_s = time.perf_counter() - start
        if np.isfinite(step_s):  # the defaults' time per step: same total time
            steps = max(steps - round(pre_s / step_s), steps // 4)
    p = parameters(args, case, steps)
    changes = {k: v for k, v in variant.items() if k not in ("pretrain", "model")}
    p = dataclasses.replace(p, **changes, weights=weights)  # RunParameters fields
    model = {k: [v] for k, v in variant.get("model", {}).items()}  # ModelConfig fields
    p = dataclasses.replace(p, grid={**p.grid, **model})
    arguments = p.grid_arguments()
    results = run_grid(store=store, output_dir=out, enable_progress_bar=False, **arguments)
    row = results.iloc[0]
    return {
        "checkpoint": out / "best.ckpt",
        "run": out.name,
        "steps": steps,
        "train_s": float(row["train_time_s"]) + pre_s,
    }


def score(
    args: argparse.Namespace, case: Case, checkpoint: Path, tta: str | None = None
) -> dict[str, float]:
    """AP, best F1 and its threshold, recall at precision 0.7 on the case's test raster.

    Also ``thr_val``, the threshold stored in the checkpoint (F1-best on the validation tiles,
    what the notebook and ``raster-detect predict`` use with or without TTA), and ``P@val``,
    ``R@val``, ``F1@val`` of the catalogue at it: what a user gets without choosing a threshold.
    """
    lo, hi = case.diameters
    images, datasets = case.folder("test")
    truth = read_catalogs(images, datasets, columns=case.columns, min_diameter=lo, max_diameter=hi)
    name, catalog = next(iter(truth.catalogs.items()))
    pred = predict_raster(
        checkpoint, truth.rasters[name], score_thresh=0.05, progress=False,
        precision=args.precision, tta=tta,  # type: ignore[arg-type]
        tile_size=args.window, overlap=args.window_overlap,
    )  # fmt: skip
    pred = pred[(pred["width"] > 0) & (pred["height"] > 0)]  # an untrained model's slivers
    pred = filters.apply_filters(pred, filters.min_diameter(lo), filters.max_diameter(hi))
    metrics = curve_metrics(evaluate_catalog(pred, catalog, iou=0.5).pr_curve, len(catalog))
    # what a user's catalogue holds: the detections at the threshold stored in the checkpoint
    thresh, _ = choose_score_thresh("auto", checkpoint, tta=tta)  # type: ignore[arg-type]
    kept = evaluate_catalog(pred[pred["score"] >= thresh], catalog, iou=0.5).summary
    # the same catalogue at the one-pass threshold: what views got before their own thresholds
    one_pass, _ = choose_score_thresh("auto", checkpoint)
    before = evaluate_catalog(pred[pred["score"] >= one_pass], catalog, iou=0.5).summary
    return {**metrics, "thr_val": thresh, "P@val": kept["precision"], "R@val": kept["recall"],
            "F1@val": kept["f1"], "F1@val1": before["f1"]}  # fmt: skip


def curve_metrics(curve: pd.DataFrame, n_truth: int) -> dict[str, float]:
    """``AP``, ``F1`` (best over thresholds), ``thr`` and ``R@P0.7`` of a P-R curve."""
    from model.evaluate import average_precision

    if curve.empty:
        return {"AP": 0.0, "F1": 0.0, "thr": float("nan"), "R@P0.7": 0.0, "n_test": n_truth}
    p, r = curve["precision"].to_numpy(), curve["recall"].to_numpy()
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    best = int(np.argmax(f1))
    reach = r[p >= PRECISION_GOAL]
    return {
        "AP": average_precision(curve),
        "F1": float(f1[best]),
        "thr": float(curve["score"].iloc[best]),
        "R@P0.7": float(reach.max()) if len(reach) else 0.0,
        "n_test": n_truth,
    }


def cases(args: argparse.Namespace) -> list[Case]:
    """The data sets asked for (written under ``--work``)."""
    found, start = [], time.perf_counter()
    if "craters" in args.datasets:
        found += crater_cases(args.work / "data", list(args.counts))
        print(f"crater field written in {time.perf_counter() - start:.0f} s")
    if "trees" in args.datasets:
        found.append(tree_case(args.work / "data", args.shared_data))
    if "tree_halves" in args.datasets:
        found += tree_half_cases(args.work / "data", args.shared_data)
    return found


def steps_option(text: str) -> int | str:
    """``--steps``: a positive count or ``auto``."""
    if text == "auto":
        return text
    steps = int(text)
    if steps < 1:
        raise argparse.ArgumentTypeError(f"--steps {text}: give a positive count or auto")
    return steps


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--steps", type=steps_option, default=300,
        help="detector optimiser steps, or auto (the notebook's: model.budget.auto_max_steps)",
    )  # fmt: skip
    parser.add_argument("--pretrain-steps", type=int, default=150, help="pretraining steps")
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 300], help="labels N")
    parser.add_argument("--datasets", nargs="+", default=["craters", "trees"])
    parser.add_argument("--variants", nargs="+", default=["defaults", "copy_paste", "pretrain"])
    parser.add_argument("--tile-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes")
    parser.add_argument("--precision", default="auto", help="the notebook's (auto: bf16 on AMX)")
    parser.add_argument(
        "--tta",
        default="flips",
        choices=["none", "flips", "d4"],
        help="also score the defaults' checkpoint with these views (row defaults+<tta>)",
    )
    parser.add_argument(
        "--window", type=int, default=None,
        help="prediction window side in px (default: the checkpoint's tile size, as the notebook)",
    )  # fmt: skip
    parser.add_argument(
        "--window-overlap", type=int, default=None,
        help="px shared by neighbouring prediction windows (default: a quarter of the window)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("runs/few_labels"))
    parser.add_argument("--shared-data", type=Path, default=Path("/work/shared/data"))
    args = parser.parse_args()
    args.variants = sorted(args.variants, key=lambda v: v != "defaults")  # it sets the step time
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    return args


def main() -> None:
    """Run every case x variant and print one table."""
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    settings = {k: v for k, v in vars(args).items() if k not in ("work", "shared_data")}
    print("few-labels benchmark:", settings, f"torch threads {torch.get_num_threads()}")
    rows = []
    for case in cases(args):
        start = time.perf_counter()
        store = build_store(args, case)
        print(f"{case.name}: {case.n_train} labels, store {time.perf_counter() - start:.0f} s")
        step_s = float("nan")
        for name in args.variants:
            trained = train(args, case, name, store, step_s)
            if name == "defaults":
                step_s = trained["train_s"] / trained["steps"]
            start = time.perf_counter()
            metrics = score(args, case, trained["checkpoint"])
            metrics["score_s"] = time.perf_counter() - start
            rows.append({"data": case.name, "N": case.n_train, "variant": name, **metrics,
                         "train_s": trained["train_s"], "steps": trained["steps"],
                         "run": trained["run"]})  # fmt: skip
            print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.3f"), flush=True)
            if args.tta != "none":  # the same checkpoint, TTA views
                start = time.perf_counter()
                metrics = score(args, case, trained["checkpoint"], args.tta)
                metrics["score_s"] = time.perf_counter() - start
                rows.append({**rows[-1], "variant": f"{name}+{args.tta}", **metrics})
                print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.3f"))
    table = pd.DataFrame(rows)
    table.to_csv(args.work / "few_labels.csv", index=False)
    print()
    print(table.to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
