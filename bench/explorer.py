"""Benchmark: open a 20,000² raster in the explorer, then pan and zoom; time and peak memory.

Builds once (cached in ``bench/out/explorer/``) a ``size x size`` uint16 crater field with its
catalogue (:func:`tiling.synthetic.generate_crater_field`: tiled 512, deflate, about 110,000
craters at 20,000²), and a copy with GDAL overviews (2, 4, ... 64, average), as a
cloud-optimised GeoTIFF would have. Then, for each file, in a child process of its own (so that
one's memory does not count against the other), prints:

- the baseline of the same run: decoding the whole raster once by 512-row strips (the I/O a
  decimated read of a raster without overviews cannot avoid), seconds;
- ``open``: ``RasterExplorer(raster, truth=catalogue, pred=detections)`` (the kept overview, the
  stretch, the hover text of every object), seconds and the ratio to the baseline;
- ``pan/zoom``: ``--views`` calls of ``explorer.update`` over random views whose width runs from
  300 px to the whole raster (what a ``RangesUpdate`` from the browser triggers), median and
  maximum seconds per view;
- peak memory: resident set size sampled every 0.05 s by a thread (``psutil``), after the imports
  (the floor), after the open and over the whole run, and ``ru_maxrss``.

The detections are the catalogue with every third crater moved by a few pixels and scored, so that
the overlay holds true positives, false positives and misses as in the notebook.

Run: ``.venv/bin/python -m bench.explorer [--size 20000] [--views 40]`` (``--size 4000`` for a
quick run). Absolute figures vary by 1.5x between machines and more when other work shares the
cores; the ratio to the baseline, measured in the same process, varies less.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

OUT = Path(__file__).parent / "out" / "explorer"
SCREEN = (860, 600)


def paths(size: int) -> tuple[Path, Path, Path]:
    """The bench raster, its copy with overviews and its catalogue."""
    name = f"craters_{size}"
    return OUT / f"{name}.tif", OUT / f"{name}_overviews.tif", OUT / f"{name}.csv"


def build(size: int) -> tuple[Path, Path, Path]:
    """The bench raster, its copy with overviews and its catalogue (built once, then cached)."""
    import rasterio
    from rasterio.enums import Resampling

    from tiling.synthetic import generate_crater_field

    plain, pyramid, csv = paths(size)
    if not plain.exists() or not csv.exists():
        generate_crater_field(plain, csv, height=size, width=size, seed=7)
    if not pyramid.exists():
        tmp = pyramid.with_suffix(".tmp.tif")
        tmp.write_bytes(plain.read_bytes())
        with rasterio.open(tmp, "r+") as ds:
            factors = [2**k for k in range(1, 7) if size // 2**k >= 256]
            ds.build_overviews(factors, Resampling.average)
        tmp.rename(pyramid)
    return plain, pyramid, csv


class PeakRss:
    """Highest resident set size of this process, sampled by a daemon thread."""

    def __init__(self, interval: float = 0.05) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def take(self) -> float:
        """Peak so far in MiB (now included)."""
        self.peak = max(self.peak, self.process.memory_info().rss)
        return self.peak / 2**20

    def stop(self) -> None:
        """End the sampling thread."""
        self._stop.set()
        self._thread.join()


def decode_seconds(path: Path) -> float:
    """Seconds to decode the whole raster once, 512 rows at a time (the baseline)."""
    from tiling.sources import Window, open_raster

    start = time.perf_counter()
    with open_raster(path) as src:
        for row in range(0, src.height, 512):
            src.read(Window(row, 0, min(512, src.height - row), src.width))
    return time.perf_counter() - start


def random_views(size: int, n: int, seed: int = 0) -> list[tuple[float, float, float, float]]:
    """``n`` views ``(x0, x1, y0, y1)`` with widths log-uniform from 300 px to the raster."""
    rng = np.random.default_rng(seed)
    aspect = SCREEN[1] / SCREEN[0]
    views = []
    for width in np.exp(rng.uniform(np.log(300), np.log(size), n)):
        height = width * aspect
        x0, y0 = rng.uniform(0, size - width), rng.uniform(0, max(size - height, 1))
        views.append((x0, x0 + width, y0, y0 + height))
    return views


def one(path: Path, csv: Path, n_views: int) -> None:
    """Open ``path`` in the explorer and pan/zoom; print the figures (runs in a child)."""
    import pandas as pd

    from plots.explorer import RasterExplorer

    rss = PeakRss()
    floor = rss.take()
    baseline = decode_seconds(path)
    truth = pd.read_csv(csv)
    rng = np.random.default_rng(1)
    pred = truth.iloc[::3].assign(score=rng.uniform(0.3, 1.0, len(truth.iloc[::3])))
    pred = pred.assign(
        x=pred["x"] + rng.normal(0, 2, len(pred)) * (rng.uniform(size=len(pred)) < 0.8)
    )
    start = time.perf_counter()
    explorer = RasterExplorer(path, truth=truth, pred=pred, size=SCREEN)
    opened = time.perf_counter() - start
    after_open = rss.take()
    times = []
    for view in random_views(explorer.view.shape[0], n_views):
        t = time.perf_counter()
        explorer.update(*view)
        times.append(time.perf_counter() - t)
    rss.stop()
    print(
        f"{path.name}: baseline decode {baseline:.2f} s; open {opened:.2f} s "
        f"({opened / baseline:.2f}x baseline); pan/zoom {len(times)} views: median "
        f"{np.median(times):.3f} s, max {max(times):.3f} s; peak RSS after imports {floor:.0f} "
        f"MiB, after open {after_open:.0f} MiB, whole run {rss.take():.0f} MiB "
        f"(ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB); "
        f"{len(truth)} catalogue objects, {len(pred)} detections"
    )


def main() -> None:
    """Build the rasters, then measure each in a child process."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--views", type=int, default=40)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from tiling.sources import configure_gdal

    configure_gdal()  # GDAL's block cache capped (256 MB), as the notebook and the CLI do
    if args.one:
        one(args.one, args.csv, args.views)
        return
    if args.build:
        OUT.mkdir(parents=True, exist_ok=True)
        build(args.size)
        return
    start = time.perf_counter()  # built in a child: a child's ru_maxrss starts at its parent's
    build_command = [sys.executable, "-m", "bench.explorer", "--build", "--size", str(args.size)]
    subprocess.run(build_command, check=True)
    plain, pyramid, csv = paths(args.size)
    print(f"rasters ready in {time.perf_counter() - start:.0f} s: {plain}, {pyramid}", flush=True)
    for path in (plain, pyramid):
        command = [sys.executable, "-m", "bench.explorer", "--one", str(path), "--csv", str(csv)]
        subprocess.run([*command, "--views", str(args.views)], check=True)


if __name__ == "__main__":
    main()
