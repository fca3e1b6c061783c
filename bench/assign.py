"""Benchmark: assign 1,000,000 objects to the tiles of a 100,000-tile grid.

Prints the time of ``tiling.geometry.assign.assign_boxes`` and, for comparison, the time of a naive
objects x tiles broadcast measured on a subset of objects it can afford, extrapolated linearly to
the full catalogue (its cost is proportional to objects x tiles, so linear in objects for a fixed
grid; its memory would be objects x tiles x 4 bytes per intermediate, which is also printed).

Run: ``.venv/bin/python -m bench.assign [--objects 1000000] [--tiles 100000] [--subset 400]``
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from tiling.geometry.assign import assign_boxes
from tiling.geometry.grid import boxes_from_catalog, tile_grid


def power_law_diameters(
    n: int, d_min: float, d_max: float, slope: float, gen: torch.Generator
) -> torch.Tensor:
    """Diameters with N(>D) proportional to D^-slope between d_min and d_max (inverse CDF)."""
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    a, b = d_min**-slope, d_max**-slope
    return (a - u * (a - b)) ** (-1 / slope)


def naive_assign(
    boxes: torch.Tensor, offsets: torch.Tensor, tile: int, min_visible: float
) -> torch.Tensor:
    """Objects x tiles broadcast: clip every box to every tile, then filter."""
    origin = offsets.flip(1).repeat(1, 2).to(boxes.dtype)  # [M, 4]
    clipped = (boxes[:, None, :] - origin[None]).clamp(0, tile)  # [N, M, 4]
    area = (clipped[..., 2] - clipped[..., 0]) * (clipped[..., 3] - clipped[..., 1])
    full = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[:, None]
    keep = (area > 0) & (area / full >= min_visible)
    return keep.nonzero()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--tiles", type=int, default=100_000)
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--subset", type=int, default=400, help="objects for the naive baseline")
    args = parser.parse_args()

    side_tiles = math.isqrt(args.tiles)
    stride = args.tile_size - args.overlap
    side = stride * (side_tiles - 1) + args.tile_size
    offsets = tile_grid(side, side, args.tile_size, args.overlap)
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(args.objects, 2, generator=gen, dtype=torch.float64) * side
    boxes = boxes_from_catalog(xy, power_law_diameters(args.objects, 5, 150, 2.0, gen)).float()
    print(
        f"threads={torch.get_num_threads()} raster={side}x{side} px, tiles={len(offsets):,}, "
        f"objects={args.objects:,}"
    )

    assign_boxes(boxes[:1000], offsets, args.tile_size)  # warm-up
    t0 = time.perf_counter()
    got = assign_boxes(boxes, offsets, args.tile_size, 0.5)
    t_fast = time.perf_counter() - t0
    print(f"assign_boxes: {t_fast:.3f} s, {len(got.tile):,} pairs kept")

    sub = boxes[: args.subset]
    t0 = time.perf_counter()
    naive = naive_assign(sub, offsets, args.tile_size, 0.5)
    t_naive_sub = time.perf_counter() - t0
    t_naive = t_naive_sub * args.objects / args.subset
    check = assign_boxes(sub, offsets, args.tile_size, 0.5)
    same = sorted(zip(check.obj.tolist(), check.tile.tolist(), strict=True)) == sorted(
        map(tuple, naive.tolist())
    )
    print(
        f"naive broadcast: {t_naive_sub:.3f} s for {args.subset} objects "
        f"(same pairs as assign_boxes: {same}); extrapolated to {args.objects:,} objects: "
        f"{t_naive:.0f} s and {args.objects * len(offsets) * 16 / 2**40:.1f} TiB for the "
        f"[N, M, 4] float32 intermediate"
    )
    print(f"ratio naive/assign_boxes (extrapolated): {t_naive / t_fast:,.0f}x")


if __name__ == "__main__":
    main()
