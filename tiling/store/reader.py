"""Parallel strip reads: cut tiles out of a raster strip by strip, straight into ``.npy`` files.

The main process plans the work (which tiles, where each one goes in the output array) and never
reads pixels when ``workers > 0``. Each task is a few consecutive *strips*: a strip is the window
of one tile row (height ``T``) spanning the columns of its tiles, cut into column chunks of at most
``max_strip_bytes`` for very wide rasters. A worker opens the raster itself once
(:func:`tiling.sources.open_raster`, kept in the process's :class:`ReaderState`; handles do not
pickle, so workers receive paths and windows only and the pool is ``spawn``-safe), reads one strip
at a time, cuts it into tiles and writes them with ``os.pwrite`` into the output ``.npy`` (created
by the caller, :func:`tiling.store.format.create_tile_array`) at precomputed rows. Writing through the file rather than a
shared mapping keeps each worker's resident memory at about one strip, whatever the raster size;
GDAL's block cache in a worker is capped by ``GDAL_CACHEMAX`` (:data:`WORKER_GDAL_CACHE_MB`).

The cut is ``Tensor.unfold``'s numpy twin: ``sliding_window_view(strip, T, axis=2)[..., ::stride,
:]`` is the same strided view ``[C, T, n, T]`` as ``torch.from_numpy(strip).unfold(2, T,
stride)`` (a test checks they are equal); the last column, snapped to the raster edge, is its own
slice. Workers deliberately do not import torch: ``import torch`` costs about 1.7 s and 500 MB of
private memory per process (measured here), which would put two workers and the main process over
the 1.5 GB memory budget and add seconds of start-up. Pixels are copied, never converted, so
16-bit data stay bit-exact. A pixel is *nodata* when every band equals the raster's nodata value
or is not finite (:mod:`tiling.sources.nodata`); each task returns the nodata fraction of its tiles.

Tasks go to the workers in lanes (:mod:`tiling.store.lanes`), each lane pinned to its own process
(:class:`tiling.store.workers.LanePool`): one task in flight per worker, the next of its lane
submitted when it finishes, so each worker reads on down its own part of the raster and its row
buffer continues from one task to the next. A killed worker (out of memory, ``kill -9``) ends the
build with a :class:`TilingError`; workers end when the parent process dies.

Workers are *spawned*: each imports the parent's main module again (not its ``if __name__ ==
"__main__"`` block), as ``multiprocessing`` does. A notebook's is light; a script that imports
torch at the top makes every worker import it too (about 1 s more per build, measured here).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tiling.errors import TilingError
from tiling.progress import progress_bar
from tiling.sources import RasterSource, Window, open_raster
from tiling.sources.nodata import nodata_pixels
from tiling.store.format import create_tile_array
from tiling.store.lanes import Lanes
from tiling.store.npyfile import npy_header
from tiling.store.space import reraise, unallocated_bytes
from tiling.store.workers import LanePool

if TYPE_CHECKING:  # pandas is not imported by worker processes
    import pandas as pd

log = logging.getLogger(__name__)

#: Start method of the worker processes (tests may switch to "fork" to inject faults).
MP_CONTEXT = "spawn"
#: GDAL block cache of each worker process, in MB. A worker decodes each block once and copies
#: it out, so the cache only has to hold one read's blocks; on the bench raster 128 -> 32 MB kept
#: the speed (within run-to-run noise) and took 0.19 GiB off the two workers' PSS.
WORKER_GDAL_CACHE_MB = 32
#: Reads end on multiples of this many rows (a multiple of the usual 128/256/512 block heights).
READ_ROWS = 512


@dataclass(frozen=True)
class Strip:
    """One window of a tile row and the tiles to cut from it.

    Attributes:
        row: the tile row's pixel offset (window top).
        col: window left edge (the first tile's column offset).
        width: window width in pixels.
        cols: column offsets (raster pixels) of the tiles to cut, increasing.
        dest: rows of the output array that receive those tiles.
    """

    row: int
    col: int
    width: int
    cols: tuple[int, ...]
    dest: tuple[int, ...]


@dataclass(frozen=True)
class Task:
    """A few consecutive strips of one raster, for one worker call (picklable: paths only)."""

    raster: str
    out: str
    header: int
    tile_size: int
    stride: int
    nodata: float | None
    strips: tuple[Strip, ...]


@dataclass(frozen=True)
class RasterJob:
    """The tiles of one raster to write into one ``.npy`` file.

    Attributes:
        raster: raster path.
        out: ``.npy`` path, already created with shape ``[len(offsets), C, T, T]``.
        offsets: ``int64[n, 2]`` ``(row, col)`` of the tiles, in row-major order; tile ``i``
            goes to row ``i`` of ``out``.
        tile_size: ``T``.
        overlap: tile overlap in pixels (the grid's stride is ``T - overlap``).
        nodata: the raster's nodata value or ``None``.
    """

    raster: str
    out: str
    offsets: np.ndarray
    tile_size: int
    overlap: int
    nodata: float | None


def plan_tasks(job: RasterJob, *, max_strip_bytes: int, rows_per_task: int) -> list[Task]:
    """Group a raster's tiles into strips (one tile row of one column chunk) and into tasks.

    Column chunks are the same for every tile row (so a worker can keep reading down one chunk):
    the tile columns are split greedily so that a worker's row buffer of the chunk (at most
    ``2 T + READ_ROWS`` rows) holds at most ``max_strip_bytes``. A task is ``rows_per_task``
    consecutive tile rows of one chunk.

    Args:
        job: the raster's tiles.
        max_strip_bytes: cap on a worker's row buffer (at least one tile wide).
        rows_per_task: tile rows per task.
    """
    if len(job.offsets) == 0:
        return []
    size = job.tile_size
    header, shape, dtype = npy_header(job.out)
    buffer_rows = 2 * size + READ_ROWS
    max_width = max(size, max_strip_bytes // (shape[1] * dtype.itemsize * buffer_rows))
    offsets = np.asarray(job.offsets)
    dest = np.arange(len(offsets))
    tasks = []
    for c0, c1 in _column_chunks(np.unique(offsets[:, 1]), size, max_width):
        sel = (offsets[:, 1] >= c0) & (offsets[:, 1] <= c1)
        rows, cols, rows_dest = offsets[sel, 0], offsets[sel, 1], dest[sel]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        strips = [
            Strip(int(rows[lo]), int(c0), int(c1) + size - int(c0),
                  tuple(cols[lo:hi].tolist()), tuple(rows_dest[lo:hi].tolist()))
            for lo, hi in zip(starts, np.r_[starts[1:], len(rows)], strict=True)
        ]  # fmt: skip
        tasks += [
            Task(job.raster, job.out, header, size, size - job.overlap, job.nodata,
                 tuple(strips[i : i + rows_per_task]))
            for i in range(0, len(strips), rows_per_task)
        ]  # fmt: skip
    return tasks


def _column_chunks(cols: np.ndarray, size: int, max_width: int) -> list[tuple[int, int]]:
    """Greedy ``(first col, last col)`` groups of sorted tile columns spanning <= ``max_width``."""
    out, i = [], 0
    while i < len(cols):
        j = i + int(np.searchsorted(cols[i:], cols[i] + max_width - size, side="right"))
        out.append((int(cols[i]), int(cols[j - 1])))
        i = j
    return out


class RowBuffer:
    """Rows ``[top, top + n)`` of one column window of a raster, read in aligned chunks.

    Reading every tile row's window directly would decode each compressed block row about
    ``T / stride + 1`` times (GDAL does not keep them cached for these reads: measured 119 MB/s
    against 315 MB/s for block-aligned reads). Instead, reads go down the raster in chunks that
    end on multiples of :data:`READ_ROWS` rows, and the rows still needed by the next tile row are
    kept, so each block row is decoded about once.

    The rows live in one buffer of ``READ_ROWS + T`` rows allocated once: kept rows move to its
    front (fewer than ``T`` rows) and new chunks are decoded straight behind them
    (:meth:`RasterSource.read_into`). Concatenating a fresh array per chunk instead cost 2.6 of
    the 6.4 s of a 20,000^2 x 3 build (copies plus the page faults of new allocations).
    """

    def __init__(self, raster: str, col: int, width: int) -> None:
        self.key, self.col, self.width = (raster, col, width), col, width
        self.top, self.n = 0, 0
        self.buf = np.empty((0, 0, 0))
        self.nbytes_read = 0

    def strip(self, src: RasterSource, row: int, size: int) -> np.ndarray:
        """``ndarray[C, size, width]`` (a view) of the rows ``[row, row + size)``."""
        end = row + size
        if self.buf.shape[:2] != (src.count, READ_ROWS + size) or self.buf.dtype != src.dtype:
            self.buf = np.empty((src.count, READ_ROWS + size, self.width), src.dtype)
            self.n = 0
        have = self.top + self.n
        if self.n == 0 or not self.top <= row <= have:  # nothing usable held: start afresh
            self.top, self.n, have = row, 0, row
        if end > have:
            stop = min(src.height, -(-end // READ_ROWS) * READ_ROWS)
            keep = have - row  # rows [row, have) are kept, moved to the front (< size rows)
            if keep and row > self.top:
                self.buf[:, :keep] = self.buf[:, row - self.top : self.n]
            new = self.buf[:, keep : keep + stop - have]
            src.read_into(Window(have, self.col, stop - have, self.width), new)
            self.top, self.n = row, keep + stop - have
            self.nbytes_read += new.nbytes
        return self.buf[:, row - self.top : end - self.top]


def cut_strip(
    strip: np.ndarray,
    cols: Sequence[int],
    size: int,
    stride: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Cut tiles at local column offsets ``cols`` out of a strip.

    Args:
        strip: ``ndarray[C, T, W]``.
        cols: column offsets inside the strip (``0`` is its left edge); those that are multiples
            of ``stride`` come from the unfolded view (window ``j`` starts at ``j * stride``), the
            others (the snapped last column) are sliced.
        size: tile side ``T``; ``stride``: the grid's stride.
        out: a C-contiguous buffer of at least the result's bytes to write into (reused across
            strips by the workers, which saves the page faults of a fresh allocation each time).

    Returns:
        ``ndarray[len(cols), C, T, T]``, same dtype as ``strip``, C-contiguous (a view of
        ``out`` when given).
    """
    cols_a = np.asarray(cols, dtype=np.int64)
    regular = np.flatnonzero(cols_a % stride == 0)
    windows = sliding_window_view(strip, size, axis=2)[:, :, ::stride]  # [C, T, n, T]
    shape = (len(cols_a), strip.shape[0], size, size)
    if out is None:
        out = np.empty(shape, dtype=strip.dtype)
    else:
        out = out.reshape(-1).view(np.uint8)[: int(np.prod(shape)) * strip.itemsize]
        out = out.view(strip.dtype).reshape(shape)
    first = cols_a[regular] // stride
    # runs of consecutive tiles and windows: one transposed block copy each (no gather copy)
    breaks = np.flatnonzero((np.diff(regular) != 1) | (np.diff(first) != 1)) + 1
    for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(regular)], strict=True):
        if hi > lo:
            j = int(first[lo])
            out[regular[lo] : regular[hi - 1] + 1] = windows[:, :, j : j + hi - lo].transpose(
                2, 0, 1, 3
            )
    for k in np.flatnonzero(cols_a % stride != 0):
        out[k] = strip[:, :, cols_a[k] : cols_a[k] + size]
    return out


def _tile_fractions(mask: np.ndarray, cols: Sequence[int], size: int) -> np.ndarray:
    """Fraction of True pixels of ``mask[T, W]`` in each tile at local ``cols``."""
    cum = np.concatenate([[0], np.cumsum(mask.sum(axis=0))])
    c = np.asarray(cols)
    return ((cum[c + size] - cum[c]) / (size * size)).astype(np.float32)


class ReaderState:
    """What one reading process keeps between tasks: open rasters and files, buffers.

    Built once per worker process by the pool initializer (:class:`tiling.store.workers.LanePool`),
    or once per :func:`read_tiles` call when reading in this process. A lane's tasks all run in
    the same process, so the :class:`RowBuffer` of one task is the one the next task continues.
    """

    def __init__(self) -> None:
        self.rasters: dict[str, RasterSource] = {}
        self.files: dict[str, int] = {}
        self.scratch = np.empty(0, dtype=np.uint8)
        self.rows: RowBuffer | None = None

    def raster(self, path: str) -> RasterSource:
        """The raster at ``path``, opened once."""
        if path not in self.rasters:
            self.rasters[path] = open_raster(path)
        return self.rasters[path]

    def file(self, path: str) -> int:
        """A write descriptor of ``path``, opened once."""
        if path not in self.files:
            self.files[path] = os.open(path, os.O_WRONLY)
        return self.files[path]

    def scratch_bytes(self, nbytes: int) -> np.ndarray:
        """A byte buffer of at least ``nbytes``, reused across strips."""
        if self.scratch.nbytes < nbytes:
            self.scratch = np.empty(nbytes, dtype=np.uint8)
        return self.scratch

    def row_buffer(self, raster: str, col: int, width: int) -> RowBuffer:
        """The row buffer of a column window: the last one when it is the same window."""
        if self.rows is None or self.rows.key != (raster, col, width):
            self.rows = RowBuffer(raster, col, width)
        return self.rows

    def run(self, task: Task) -> tuple[list[int], np.ndarray, int]:
        """Read, cut and write one task's strips.

        Returns:
            ``(dest rows, nodata fractions float32[n], bytes read)``.
        """
        src, fd = self.raster(task.raster), self.file(task.out)
        first = task.strips[0]
        rows = self.row_buffer(task.raster, first.col, first.width)
        dest: list[int] = []
        fractions, before = [], rows.nbytes_read
        size = task.tile_size
        for s in task.strips:
            strip = rows.strip(src, s.row, size)
            local = [c - s.col for c in s.cols]
            need = len(local) * strip[:, :, :size].nbytes
            tiles = cut_strip(strip, local, size, task.stride, self.scratch_bytes(need))
            try:
                _write_rows(fd, task.header, s.dest, tiles)
            except OSError as err:  # a full disk where blocks could not be reserved: name the file
                reraise(Path(task.out), err, unallocated_bytes(fd))
            fractions.append(_tile_fractions(nodata_pixels(strip, task.nodata), local, size))
            dest.extend(s.dest)
        return dest, np.concatenate(fractions), rows.nbytes_read - before

    def close(self) -> None:
        """Close the rasters and files this state opened; drop the buffers."""
        while self.rasters:
            self.rasters.popitem()[1].close()
        while self.files:
            os.close(self.files.popitem()[1])
        self.scratch, self.rows = np.empty(0, dtype=np.uint8), None


def _write_rows(fd: int, header: int, dest: Sequence[int], tiles: np.ndarray) -> None:
    """``pwrite`` tiles ``[n, C, T, T]`` to rows ``dest`` (split into runs of consecutive rows)."""
    row_bytes = tiles[0].nbytes
    d = np.asarray(dest)
    breaks = np.flatnonzero(np.diff(d) != 1) + 1
    for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(d)], strict=True):
        data = tiles[lo:hi].data.cast("B")  # a C-contiguous run of rows
        offset, done = header + int(d[lo]) * row_bytes, 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], offset + done)


def read_tiles(
    jobs: Sequence[RasterJob],
    workers: int = 2,
    *,
    max_strip_bytes: int = 64 * 2**20,
    rows_per_task: int | None = None,
    progress: bool = True,
) -> list[np.ndarray]:
    """Write every job's tiles into its ``.npy`` file, with ``workers`` processes.

    Args:
        jobs: one per raster; each ``out`` file must exist with the right shape and dtype.
        workers: worker processes; ``0`` runs in this process.
        max_strip_bytes: cap on a worker's row buffer (wide rasters are read in column chunks).
        rows_per_task: tile rows per task (default 4). Tasks go to the workers in lanes
            (:mod:`tiling.store.lanes`), so a worker's next task usually continues its last one.
        progress: show a tqdm bar (tiles done, MB/s read).

    Returns:
        Per job, ``float32[n]`` nodata fraction of each tile (row order of ``out``).

    Raises:
        TilingError: a worker process died (killed, out of memory).
    """
    if workers < 0:
        raise TilingError(f"workers={workers} must be >= 0 (0 reads in this process)")
    tasks = []
    for k, job in enumerate(jobs):
        plan = plan_tasks(job, max_strip_bytes=max_strip_bytes, rows_per_task=rows_per_task or 4)
        tasks += [(k, task) for task in plan]
    fractions = [np.zeros(len(job.offsets), dtype=np.float32) for job in jobs]
    options: dict[str, Any] = (
        {} if progress else {"disable": True}
    )  # else TQDM_DISABLE=1 still applies
    bar = progress_bar(
        total=sum(len(j.offsets) for j in jobs), unit="tile", desc="read tiles", **options
    )
    start, nbytes = time.perf_counter(), 0
    with bar:
        for k, (dest, frac, read) in _results(tasks, workers):
            fractions[k][dest] = frac
            nbytes += read
            bar.update(len(dest))
            bar.set_postfix_str(f"{nbytes / 2**20 / (time.perf_counter() - start):.0f} MB/s")
    return fractions


def _results(
    tasks: list[tuple[int, Task]], workers: int
) -> Iterator[tuple[int, tuple[list[int], np.ndarray, int]]]:
    """Run tasks in this process or in lanes of worker processes; yield ``(job index, result)``."""
    if workers == 0:
        state = ReaderState()
        try:
            for k, task in tasks:
                yield k, state.run(task)
        finally:
            state.close()
        return
    lanes = Lanes(tasks, workers, [sum(len(s.cols) for s in task.strips) for _, task in tasks])
    pending: dict[Future, tuple[int, int]] = {}  # future -> (lane, job index)
    pool = LanePool(workers, ReaderState, cache_mb=WORKER_GDAL_CACHE_MB, context=MP_CONTEXT)

    def submit(lane: int) -> None:
        item = lanes.next(lane)
        if item is not None:
            pending[pool.submit(lane, item[1])] = (lane, item[0])

    try:
        for lane in range(workers):
            submit(lane)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                lane, k = pending.pop(fut)
                result = fut.result()
                submit(lane)  # before yielding: the worker that just finished reads on
                yield k, result
    except BrokenProcessPool as err:
        raise TilingError(
            f"a tiling worker process died ({err}); it was killed or ran out of memory. "
            "Nothing was kept; run again, with fewer workers if memory is short"
        ) from err
    finally:
        pool.shutdown()


def read_into_arrays(
    folder: Path,
    tiles: pd.DataFrame,
    rasters: Sequence[Mapping[str, Any]],
    tile_size: int,
    overlap: int,
    workers: int,
    read: Callable[[Sequence[RasterJob], int], list[np.ndarray]] | None = None,
) -> np.ndarray:
    """Create ``folder/tiles_<k>.npy`` for every raster and fill it with :func:`read_tiles`.

    Args:
        folder: output folder.
        tiles: rows with ``array`` (k), ``index`` (row in the array, ``0..N_k-1`` in order),
            ``row``, ``col``; in row-major order within each array.
        rasters: per array k, ``path``, ``count``, ``dtype``, ``nodata`` (``meta["rasters"]``).
        tile_size, overlap: the grid's parameters.
        workers: reader processes (0: this process); on Ray, of each raster's task.
        read: ``read(jobs, workers)`` fills the files and returns the nodata fractions:
            :func:`read_tiles` (None, the default) or, on a cluster,
            :func:`tiling.store.ray_reader.read_on_ray` with its address bound.

    Returns:
        ``float32[len(tiles)]`` nodata fraction of each tile, in the order of ``tiles``.
    """
    jobs = []
    for k, info in enumerate(rasters):
        rows = tiles[tiles["array"] == k]
        shape = (len(rows), info["count"], tile_size, tile_size)
        out = create_tile_array(folder, k, info["dtype"], shape)
        offsets = rows[["row", "col"]].to_numpy(np.int64).reshape(-1, 2)
        jobs.append(RasterJob(info["path"], str(out), offsets, tile_size, overlap, info["nodata"]))
    fractions = (read or read_tiles)(jobs, workers)
    out_frac = np.zeros(len(tiles), dtype=np.float32)
    arrays = tiles["array"].to_numpy()
    for k, frac in enumerate(fractions):
        out_frac[arrays == k] = frac[tiles["index"].to_numpy()[arrays == k]]
    return out_frac
