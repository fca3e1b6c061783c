"""GPU checks: a convergence sweep at a fixed number of training images, and predict_raster speed.

Sweep (default data set, notebook defaults): generates the synthetic crater data, builds the tile
store (256 px, overlap 32, spatial blocks, crater_field_b held out for test), then trains one
trial per config through ``model.training.grid.run_grid`` with ``samples_per_epoch`` tiles per epoch and
prints the best val/map_50, the per-epoch val/map_50 curve and the training time of each.

    python -m bench.gpu_check sweep --out /tmp/gc [--small] [--epochs 8] [--samples 480]
                                    [--configs base group lr3e-3 ...] [--budget SECONDS]
    python -m bench.gpu_check predict --size 4096 --device cuda [--backbones resnet18 resnet50]

``--store-only`` builds the store and prints its path (for ``bench.train_step --store``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from tiling.sources import configure_gdal

CONFIGS: dict[str, dict[str, Any]] = {
    "base": {},
    "group": {"norm": "group"},
    "lr3e-3": {"lr": 3e-3},
    "mobilenet": {"backbone": "mobilenet_v3_large"},
    "fpn256": {"fpn_channels": 256},
    "epochs16": {"max_epochs": 16},
    # follow-ups: "max_epochs" means twice --epochs; "_trainer" holds pl.Trainer keywords
    "group_e16": {"norm": "group", "max_epochs": 16},
    "lr3e-4": {"lr": 3e-4},
    "clip1": {"_trainer": {"gradient_clip_val": 1.0}},
    "group_lr3e-3": {"norm": "group", "lr": 3e-3},
}


def build_store(out: Path, small: bool, workers: int, tile: int = 256, overlap: int = 32) -> Any:
    from tiling.catalog import filters, pair_files, read_catalog
    from tiling.sources import open_raster
    from tiling.store import build_tile_store
    from tiling.store import tile_filters as tf
    from tiling.synthetic import generate_dataset

    data = out / ("data_small" if small else "data")
    t0 = time.perf_counter()
    if not (data / "images").is_dir():
        generate_dataset(data, small=small, seed=0)
    t1 = time.perf_counter()
    sources = []
    for pair in pair_files(data / "images", data / "datasets"):
        raw = read_catalog(pair.catalog, pair.raster)
        with open_raster(pair.raster) as src:
            inside = filters.within_raster(src.height, src.width)
        clean = filters.apply_filters(
            raw, inside, filters.min_diameter(8.0), filters.max_diameter(120.0),
            filters.drop_duplicates(),
        )  # fmt: skip
        sources.append((pair.raster, clean))
    store = build_tile_store(
        sources, out / ("tiles_small" if small else "tiles"), tile_size=tile, overlap=overlap,
        workers=workers, split="blocks", test_rasters=["crater_field_b"],
        tile_filters=[tf.max_nodata_fraction(0.5), tf.keep_empty(0.25)], seed=0,
    )  # fmt: skip
    t2 = time.perf_counter()
    counts = store.tiles["split"].value_counts().to_dict()
    print(f"data {t1 - t0:.1f} s, store {t2 - t1:.1f} s: {store.path} tiles {counts} "
          f"boxes {len(store.boxes)}", flush=True)  # fmt: skip
    return store


def curve(trial_dir: str) -> list[float]:
    from model.training.grid import read_trial_metrics

    metrics = read_trial_metrics(trial_dir)
    if "val/map_50" not in metrics:
        return []
    val = metrics[metrics["val/map_50"].notna()]
    if "epoch" in val:
        val = val.groupby("epoch")["val/map_50"].last()
    return [round(float(v), 4) for v in val.to_numpy()]


def sweep(args: argparse.Namespace) -> None:
    import torch

    from model.config import ModelConfig
    from model.run_config import RunConfig
    from model.training.grid import run_grid

    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    store = build_store(out, args.small, args.workers, args.tile_size, args.overlap)
    if args.store_only:
        return
    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    base = ModelConfig(
        backbone="resnet18", fpn_channels=128, lr=1e-3, scheduler="onecycle",
        batch_size=args.batch_size, max_epochs=args.epochs, augment="default", seed=0,
    )  # fmt: skip
    run = RunConfig(accelerator=accelerator, num_workers=args.workers, precision=args.precision)
    data_options = {"samples_per_epoch": args.samples, "empty_weight": 0.1}
    limit = {"limit_batches": args.limit} if args.limit else {}
    start, rows = time.perf_counter(), []
    for name in args.configs:
        params = dict(CONFIGS[name])
        if "max_epochs" in params:
            params["max_epochs"] = 2 * args.epochs
        trainer_kwargs = params.pop("_trainer", {})
        elapsed = time.perf_counter() - start
        epochs = params.get("max_epochs", args.epochs)
        per_epoch = sum(r["wall_s"] for r in rows) / max(1, sum(r["epochs"] for r in rows))
        if args.budget and rows and elapsed + per_epoch * epochs > args.budget:
            print(f"[{name}] skipped: {elapsed:.0f} s + ~{per_epoch * epochs:.0f} s would pass "
                  f"the budget of {args.budget:.0f} s", flush=True)  # fmt: skip
            continue
        t0 = time.perf_counter()
        results = run_grid(
            base.replace(**params), {}, store, out / "sweep" / name, run=run,
            enable_progress_bar=False, data_options=data_options, **limit, **trainer_kwargs,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        r = results.iloc[0].to_dict()
        row = {
            "config": name, "params": {**params, **trainer_kwargs}, "status": r.get("status"),
            "error": r.get("error", ""), "best_val_map_50": r.get("val/map_50"),
            "best_epoch": r.get("best_epoch"), "test_map_50": r.get("test/map_50"),
            "train_time_s": r.get("train_time_s"), "wall_s": round(wall, 1), "epochs": epochs,
            "curve": curve(str(r["trial_dir"])),
        }  # fmt: skip
        rows.append(row)
        print("RESULT " + json.dumps(row, default=str), flush=True)
        if args.results:
            Path(args.results).write_text(json.dumps(rows, indent=1, default=str))
    print(f"\n{'config':10s} {'best mAP50':>10s} {'ep':>3s} {'test':>6s} {'train s':>8s} "
          f"{'wall s':>7s}  curve")  # fmt: skip
    for r in rows:
        print(f"{r['config']:10s} {_f(r['best_val_map_50']):>10s} {_f(r['best_epoch'], 0):>3s} "
              f"{_f(r['test_map_50']):>6s} {_f(r['train_time_s'], 1):>8s} {r['wall_s']:7.1f}  "
              f"{r['curve']} {r['status']} {r['error'] or ''}")  # fmt: skip


def _f(v: Any, digits: int = 3) -> str:
    try:
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return "-"


def predict(args: argparse.Namespace) -> None:
    import torch

    from bench.predict import write_raster
    from model.config import ModelConfig
    from model.inference.predict import predict_raster
    from model.network.factory import build_retinanet

    path = str(write_raster(args.size))
    mpix = args.size**2 / 1e6
    print(f"raster {path}: {mpix:.1f} MP, device {args.device}", flush=True)
    for backbone in args.backbones:
        torch.manual_seed(0)
        cfg = ModelConfig(backbone=backbone, in_channels=1, tile_size=512, image_mean=[1000.0],
                          image_std=[200.0], anchor_sizes=((16,), (32,), (64,), (128,), (256,)),
                          detections_per_img=100)  # fmt: skip
        model = build_retinanet(cfg).eval()
        for run in range(args.repeats):
            if args.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            frame = predict_raster(model, path, tile_size=512, overlap=64,
                                   batch_size=args.batch_size, workers=args.workers,
                                   score_thresh=0.0, progress=False, device=args.device)  # fmt: skip
            if args.device == "cuda":
                torch.cuda.synchronize()
            s = time.perf_counter() - t0
            print(f"predict_raster {backbone} run {run} ({'cold' if run == 0 else 'warm'}): "
                  f"{mpix / s:7.3f} MP/s  {s:6.2f} s  boxes {len(frame)}  batch "
                  f"{args.batch_size} workers {args.workers}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sweep")
    s.add_argument("--out", default=str(Path(__file__).parent / "out" / "gpu_check"))
    s.add_argument("--small", action="store_true", help="small synthetic data (tests)")
    s.add_argument("--store-only", action="store_true")
    s.add_argument("--tile-size", type=int, default=256)
    s.add_argument("--overlap", type=int, default=32)
    s.add_argument("--epochs", type=int, default=8)
    s.add_argument("--samples", type=int, default=480, help="training tiles per epoch")
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--workers", type=int, default=4)
    s.add_argument("--precision", default="32")
    s.add_argument("--limit", type=int, default=0, help="batches per epoch (0: all)")
    s.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    s.add_argument(
        "--budget",
        type=float,
        default=0,
        help="seconds for the sweep: skip a config whose estimated end passes it",
    )
    s.add_argument("--results", help="JSON file of the rows, rewritten after each config")
    p = sub.add_parser("predict")
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--device", default="cuda")
    p.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50"])
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    configure_gdal()  # as the notebook and the command line do
    {"sweep": sweep, "predict": predict}[args.cmd](args)


if __name__ == "__main__":
    main()
