"""Benchmark: tile a >= 1 GB GeoTIFF into a tile store; throughput against the raw read ceiling.

Builds once (cached in ``bench/out/``) a ``size x size x 3`` uint8 GeoTIFF, tiled 512 x 512,
DEFLATE-compressed (ZLEVEL 1, no predictor), written block row by block row from numpy noise on a
gradient (about half compressible). Then, in one process, prints:

- the raw ceiling: the same raster read once by ``rasterio`` block windows in one process (a
  child, so that its block cache does not stay in this one), MB/s;
- ``tiling.store.build_tile_store`` with 1 and 2 workers (MB/s of raster covered = raster bytes /
  wall time of the whole build: grid, assignment, strip reads, writes, statistics, tables);
- the ratios tiler / raw, and the peak memory of the whole process tree (main + workers), as the
  sum of RSS and the sum of PSS (shared pages split between processes; the fairer figure), sampled
  with psutil every 0.1 s in one more run of each (sampling PSS costs about 9 ms of CPU per
  process, a fifth of a core, so the timed runs go without it).

Each figure is the median of ``--repeat`` runs (default 3; every run is printed). On this
machine (a small VM) the first build after the machine idled can take twice as long as the next:
the tiles written are new page-cache memory, and memory the guest has not touched lately is slow
to hand out; the median keeps one such run from deciding the figure.

Run: ``.venv/bin/python -m bench.tiling [--size 20000] [--tile-size 256] [--overlap 32]
[--repeat 3]``
(``--size 4096`` for a quick run). Stores go to ``bench/out/stores-<pid>`` and are deleted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psutil

if TYPE_CHECKING:  # pandas is imported in main() only: spawned workers re-import this module
    import pandas as pd

OUT = Path(__file__).parent / "out"
BLOCK = 512


def write_bench_raster(path: Path, size: int) -> None:
    """Write the 3-band uint8 bench raster block row by block row (tmp name, then rename)."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff", "height": size, "width": size, "count": 3, "dtype": "uint8",
        "crs": "EPSG:32617", "transform": Affine(0.5, 0, 500000, 0, -0.5, 4000000),
        "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate",
        "zlevel": 1, "bigtiff": "yes",
    }  # fmt: skip
    tmp = path.with_suffix(".tmp.tif")
    rng = np.random.default_rng(0)
    ramp = (np.arange(size) * 200 // size).astype(np.uint8)
    with rasterio.open(tmp, "w", **profile) as ds:
        for row in range(0, size, BLOCK):
            h = min(BLOCK, size - row)
            noise = rng.integers(0, 48, size=(3, h, size), dtype=np.uint8)
            ds.write(noise + ramp[None, None, :], window=Window(0, row, size, h))
    tmp.rename(path)


class TreeMemory:
    """Samples RSS and PSS of this process and all its children in a background thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval, self.peak_rss, self.peak_pss = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        rss = pss = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss, pss = rss + info.rss, pss + info.pss
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def __str__(self) -> str:
        return f"RSS {self.peak_rss / 2**30:.2f} GiB, PSS {self.peak_pss / 2**30:.2f} GiB"


def raw_read(path: Path) -> float:
    """Seconds to read every block window of ``path`` once, in this process."""
    import rasterio

    t0 = time.perf_counter()
    with rasterio.open(path) as ds:
        for _, window in ds.block_windows(1):
            ds.read(window=window)
    return time.perf_counter() - t0


def tiler(path: Path, catalog: pd.DataFrame, workers: int, args: argparse.Namespace) -> float:
    """Seconds of one complete ``build_tile_store`` (the store is deleted afterwards)."""
    from tiling.store import build_tile_store

    out = OUT / f"stores-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    store = build_tile_store(
        [(path, catalog)], out, tile_size=args.tile_size, overlap=args.overlap, workers=workers,
        split="raster", split_fractions=(1.0, 0.0, 0.0),  # every tile is read: no block straddlers
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    gb = sum(f.stat().st_size for f in store.path.glob("tiles_*.npy")) / 1e9
    print(f"    store: {len(store):,} tiles, {len(store.boxes):,} boxes, {gb:.2f} GB of tiles")
    shutil.rmtree(out)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="raster side in pixels")
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each measurement; the median is reported"
    )
    args = parser.parse_args()
    import pandas as pd

    from tiling.sources import configure_gdal

    configure_gdal()  # GDAL's block cache capped before the first read, as in the notebook

    os.environ.setdefault("TQDM_DISABLE", "1")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"tiling_{args.size}.tif"
    if not path.exists():
        t0 = time.perf_counter()
        write_bench_raster(path, args.size)
        print(f"wrote {path} in {time.perf_counter() - t0:.0f} s")
    mb = args.size * args.size * 3 / 1e6
    rng = np.random.default_rng(0)
    catalog = pd.DataFrame(
        {
            "x": rng.uniform(0, args.size, args.objects),
            "y": rng.uniform(0, args.size, args.objects),
            "diameter": rng.uniform(4, 40, args.objects),
            "label": rng.choice(["a", "b"], args.objects),
        }
    )
    print(
        f"raster {args.size}x{args.size}x3 uint8 = {mb:,.0f} MB uncompressed, file "
        f"{path.stat().st_size / 1e6:,.0f} MB (tiled {BLOCK}, deflate zlevel 1); tile "
        f"{args.tile_size}, overlap {args.overlap}; cpus={os.cpu_count()}, "
        f"load avg {os.getloadavg()[0]:.1f}"
    )
    # the raw reads run in a child process, so that their GDAL block cache does not stay in this
    # one and count in the tiler's memory
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, context) as child:
        child.submit(raw_read, path).result()  # warm the page cache so every run reads memory
        raw_runs = [child.submit(raw_read, path).result() for _ in range(args.repeat)]
        with TreeMemory() as mem:
            child.submit(raw_read, path).result()
    raw = float(np.median(raw_runs))
    print(
        f"raw ceiling (rasterio block windows, 1 process): {mb / raw:7.0f} MB/s ({_runs(raw_runs)})"
    )
    print(f"    peak tree memory: {mem}")
    for workers in (1, 2):
        runs = [tiler(path, catalog, workers, args) for _ in range(args.repeat)]
        with TreeMemory() as mem:
            tiler(path, catalog, workers, args)
        seconds = float(np.median(runs))
        print(
            f"tiler, {workers} worker(s): {mb / seconds:7.0f} MB/s ({_runs(runs)}), "
            f"ratio to raw {raw / seconds:.2f}"
        )
        print(f"    peak tree memory: {mem}")


def _runs(seconds: list[float]) -> str:
    """``median 2.4 s of 3 runs: 2.4, 2.5, 4.1``."""
    listed = ", ".join(f"{s:.2f}" for s in seconds)
    return f"median {np.median(seconds):.2f} s of {len(seconds)}: {listed}"


if __name__ == "__main__":
    main()
