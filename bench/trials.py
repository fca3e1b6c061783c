"""Benchmark: the same grid of trials one after another, and on Ray Tune several at once.

Builds (once, in ``bench/out/``) a tile store of the small synthetic crater data set at
``--tile-size``, then runs the same ``--trials``-trial grid (learning rates spread over a decade)
twice in this one process, each into a fresh folder:

- **sequential**: ``run_grid`` without Ray, torch using ``--threads`` threads (the notebook's
  default engine);
- **ray**: ``run_grid(ray=RayOptions(trial_cpus=..., max_concurrent_trials=...))`` on an
  embedded Ray started for the run (its start-up is inside the timing, as a user pays it).

Every trial trains ``--steps`` optimiser steps of ``--batch-size`` tiles with validation and the
test pass, as the notebook does. Prints both wall times and their ratio (same machine, same load
pattern), and the trials' val mAP@50 side by side (the same seeds: equal within thread-count
noise). On a GPU machine, ``--gpus 0.25 --concurrent 4`` packs four trials on one GPU::

    .venv/bin/python -m bench.trials                                   # 4 trials, 2 at once, CPU
    .venv/bin/python -m bench.trials --gpus 0.25 --concurrent 4 --cpus 4 --accelerator gpu
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).parent / "out"


def build_store(tile_size: int) -> Any:
    """The small synthetic crater store at ``tile_size`` (built once)."""
    from tiling.catalog import read_catalog
    from tiling.store import build_tile_store
    from tiling.synthetic import generate_dataset

    pairs = generate_dataset(OUT / "synthetic", small=True)
    sources = [(raster, read_catalog(csv, raster)) for raster, csv in pairs]
    return build_tile_store(sources, OUT / "stores", tile_size=tile_size, workers=2)


def run(args: argparse.Namespace, store: Any, folder: Path, ray: Any) -> tuple[float, Any]:
    """Wall seconds and results of the grid into a fresh ``folder``."""
    from model.config import ModelConfig
    from model.run_config import RunConfig
    from model.training.grid import run_grid

    shutil.rmtree(folder, ignore_errors=True)
    base = ModelConfig(batch_size=args.batch_size, max_steps=args.steps, lr=1e-3)
    lrs = np.geomspace(3e-4, 3e-3, args.trials).round(6).tolist()
    run_config = RunConfig(accelerator=args.accelerator, num_workers=0)
    start = time.perf_counter()
    results = run_grid(
        base,
        {"lr": lrs},
        store,
        folder,
        run=run_config,
        ray=ray,
        enable_progress_bar=False,
        data_options={"samples_per_epoch": args.batch_size * max(1, args.steps // 2)},
    )
    return time.perf_counter() - start, results


def main() -> None:
    """Parse the options, run both ways, print the table."""
    import torch

    from model.ray_options import RayOptions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--steps", type=int, default=24, help="optimiser steps per trial")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--tile-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="torch threads, sequential run")
    parser.add_argument("--cpus", type=float, default=1.0, help="CPUs per Ray trial")
    parser.add_argument("--gpus", type=float, default=0.0, help="GPUs per Ray trial")
    parser.add_argument("--concurrent", type=int, default=2, help="Ray trials at once")
    parser.add_argument("--accelerator", default="cpu")
    args = parser.parse_args()

    store = build_store(args.tile_size)
    torch.set_num_threads(args.threads)
    seq_s, seq = run(args, store, OUT / "trials_seq", None)
    ray = RayOptions(
        trial_cpus=args.cpus, trial_gpus=args.gpus, max_concurrent_trials=args.concurrent
    )
    ray_s, par = run(args, store, OUT / "trials_ray", ray)
    print(
        f"{args.trials} trials x {args.steps} steps (batch {args.batch_size}, tile "
        f"{args.tile_size}), {args.accelerator}"
    )
    print(f"sequential ({args.threads} threads)            {seq_s:8.1f} s")
    print(
        f"ray ({args.concurrent} at once, {args.cpus:g} CPU {args.gpus:g} GPU each) {ray_s:8.1f} s"
    )
    print(f"speed-up (sequential / ray)          {seq_s / ray_s:8.2f}x")
    table = seq[["lr", "status", "val/map_50"]].merge(
        par[["lr", "status", "val/map_50"]], on="lr", suffixes=(" seq", " ray")
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
