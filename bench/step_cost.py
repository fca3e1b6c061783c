"""Training-step cost by tile size and pyramid: what a step of 128, 256 or 512 px tiles costs.

The step budget of a trial (``steps_per_trial``) is counted in optimiser steps, so its time
depends on the tile size and on the stride-4 level (P2). This benchmark times one bare training
step (``bench.train_step.bare_step``: forward with targets, backward, AdamW step) of
``--batch-size`` tiles of random pixels with two boxes each, for every ``--tiles`` size with and
without P2, and prints each median against the 256 px, P3-P7 step
measured in the same run (the default ``tile_size``), and the steps that would cost the time of
480 default steps. The cases run in turn, one step of each per round (A B C ... A B C ...), so a
shared machine's load falls on all of them alike.

    python -m bench.step_cost                       # 128 256 512 px, with and without P2
    python -m bench.step_cost --tiles 128 256 --rounds 8 --warmup 2

Options: ``--batch-size 8 --fpn 128 --threads 2 --precision 32``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from bench.train_step import bare_step
from model.config import ModelConfig
from model.network.data_settings import resolve_config

Step = Callable[[], None]
#: The default tile side (px) and step budget the ratios are taken against.
BASE_TILE, BASE_STEPS = 256, 480


def case_step(tile: int, stride4: bool, batch: int, fpn: int, precision: str) -> Step:
    """A closure running one training step on a fixed batch of ``batch`` random tiles of ``tile`` px."""
    config = ModelConfig(tile_size=tile, stride4=stride4, fpn_channels=fpn, batch_size=batch)
    config = resolve_config(config, np.geomspace(6.0, 80.0, 64))
    generator = torch.Generator().manual_seed(tile)
    images = torch.rand(batch, 3, tile, tile, generator=generator)
    return bare_step(config, images, precision)


def main(argv: list[str] | None = None) -> None:
    """Time every case in rounds and print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--rounds", type=int, default=6, help="measured steps per case")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--fpn", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="32")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tiles = sorted(set(args.tiles) | {BASE_TILE})
    cases = {
        (tile, p2): case_step(tile, p2, args.batch_size, args.fpn, args.precision)
        for tile in tiles
        for p2 in (False, True)
    }
    times: dict[tuple[int, bool], list[float]] = {key: [] for key in cases}
    for round_ in range(args.warmup + args.rounds):
        for key, step in cases.items():
            start = time.perf_counter()
            step()
            if round_ >= args.warmup:
                times[key].append(time.perf_counter() - start)
    base = statistics.median(times[(BASE_TILE, False)])
    print(
        f"batch {args.batch_size}, fpn {args.fpn}, {args.threads} threads, precision "
        f"{args.precision}; medians of {args.rounds} steps; against {BASE_TILE} px P3-P7"
    )
    print(
        "| tile px | P2 | s / step | / base step | pixels / base | steps costing "
        f"{BASE_STEPS} base steps |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for (tile, p2), values in times.items():
        median = statistics.median(values)
        print(
            f"| {tile} | {'yes' if p2 else 'no'} | {median:.3f} | {median / base:.2f} | "
            f"{(tile / BASE_TILE) ** 2:.2f} | {BASE_STEPS * base / median:.0f} |"
        )


if __name__ == "__main__":
    main()
