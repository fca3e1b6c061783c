"""Benchmark: ``pwrite`` into a ``.npy`` whose blocks are reserved, against a sparse one.

The tile store's readers write tiles with ``os.pwrite`` into ``.npy`` files that
:func:`tiling.store.npyfile.new_npy` creates with ``posix_fallocate``. This prints the write speed
(GB/s) of ``--gb`` of 16 MB writes into a file made by ``new_npy`` and into a sparse file made by
``numpy.lib.format.open_memmap`` alone, alternating the two ``--repeat`` times in one process
(the first write of a process is often slow on a VM: fresh memory), then the medians and their
ratio. Files go to ``bench/out`` (the disk the stores use) and are deleted.

Run: ``.venv/bin/python -m bench.npy_write [--gb 1.6] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from tiling.store.npyfile import new_npy, npy_header

OUT = Path(__file__).parent / "out"
CHUNK = 16 * 2**20


def write_seconds(path: Path, n_chunks: int, reserve: bool) -> float:
    """Seconds to ``pwrite`` ``n_chunks`` chunks into a new ``.npy`` at ``path`` (then deleted)."""
    shape = (n_chunks, CHUNK)
    if reserve:
        new_npy(path, np.dtype("uint8"), shape)
    else:
        del_me = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
        del del_me
    header = npy_header(path)[0]
    data = np.full(CHUNK, 7, dtype=np.uint8)
    fd = os.open(path, os.O_WRONLY)
    try:
        t0 = time.perf_counter()
        for i in range(n_chunks):
            os.pwrite(fd, data, header + i * CHUNK)
        seconds = time.perf_counter() - t0
    finally:
        os.close(fd)
        path.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.6, help="bytes written per file, in GB")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    n_chunks = max(1, int(args.gb * 1e9 // CHUNK))
    gb = n_chunks * CHUNK / 1e9
    runs: dict[str, list[float]] = {"reserved": [], "sparse": []}
    for _ in range(args.repeat):
        for kind in runs:
            seconds = write_seconds(
                OUT / f"npy_write-{os.getpid()}.npy", n_chunks, kind == "reserved"
            )
            runs[kind].append(gb / seconds)
    for kind, speeds in runs.items():
        listed = ", ".join(f"{s:.1f}" for s in speeds)
        print(f"{kind:8s}: median {np.median(speeds):.1f} GB/s of {len(speeds)} ({listed})")
    print(f"ratio reserved / sparse: {np.median(runs['reserved']) / np.median(runs['sparse']):.2f}")


if __name__ == "__main__":
    main()
