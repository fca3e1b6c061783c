import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import write_geotiff
from tiling.errors import TilingError
from tiling.geometry.grid import axis_offsets, tile_grid
from tiling.sources import open_raster
from tiling.store.npyfile import new_npy
from tiling.store.reader import (
    READ_ROWS,
    RasterJob,
    RowBuffer,
    cut_strip,
    nodata_pixels,
    plan_tasks,
    read_tiles,
)


@settings(max_examples=40, deadline=None)
@given(
    tile=st.integers(4, 24),
    overlap_frac=st.floats(0, 0.9),
    extra=st.integers(0, 60),
    dtype=st.sampled_from(["uint8", "uint16", "int16", "float32", "float64", "uint32"]),
)
def test_cut_strip_equals_slices(tile, overlap_frac, extra, dtype):
    overlap = int(tile * overlap_frac)
    width = tile + extra
    rng = np.random.default_rng(tile + extra)
    strip = rng.integers(0, 2**16, size=(2, tile, width)).astype(dtype)
    cols = axis_offsets(width, tile, overlap).tolist()
    tiles = cut_strip(strip, cols, tile, tile - overlap)
    assert tiles.dtype == strip.dtype and tiles.flags.c_contiguous
    assert tiles.shape == (len(cols), 2, tile, tile)
    for k, c in enumerate(cols):
        assert np.array_equal(tiles[k], strip[:, :, c : c + tile])
    # the regular columns are exactly Tensor.unfold's windows
    signed = torch.from_numpy(strip.view(f"i{strip.dtype.itemsize}"))
    unfolded = signed.unfold(2, tile, tile - overlap).permute(2, 0, 1, 3).numpy().view(strip.dtype)
    regular = [k for k, c in enumerate(cols) if c % (tile - overlap) == 0]
    assert np.array_equal(tiles[regular], unfolded[[cols[k] // (tile - overlap) for k in regular]])


def test_cut_strip_keeps_full_16_bit_range():
    strip = np.array([[[0, 1, 32767, 32768, 65535, 40000]]], dtype=np.uint16).repeat(2, axis=1)
    tiles = cut_strip(strip, [0, 2, 4], 2, 2)
    assert tiles.dtype == np.uint16
    assert tiles[:, 0, 0].tolist() == [[0, 1], [32767, 32768], [65535, 40000]]


def test_workers_do_not_import_torch_or_pandas():
    code = "import sys, tiling.store.reader; print('torch' in sys.modules, 'pandas' in sys.modules)"
    root = Path(__file__).parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_nodata_pixels_all_bands():
    strip = np.array([[[0, 0, 5]], [[0, 7, 0]]], dtype=np.uint8)  # [2 bands, 1 row, 3 cols]
    assert nodata_pixels(strip, 0).tolist() == [[True, False, False]]
    assert not nodata_pixels(strip, None).any()
    floats = np.array([[[np.nan, 1.0, -9.0]]], dtype=np.float32)
    assert nodata_pixels(floats, None).tolist() == [[True, False, False]]
    assert nodata_pixels(floats, -9.0).tolist() == [[True, False, True]]


def make_job(tmp_path, nodata=None, tile=32, overlap=8, shape=(3, 150, 230)):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 65535, size=shape, dtype=np.uint16)
    if nodata is not None:
        data[:, :, :40] = nodata
    path = write_geotiff(tmp_path / "r.tif", data, nodata=nodata)
    offsets = tile_grid(shape[1], shape[2], tile, overlap).numpy()
    out = tmp_path / "tiles.npy"
    new_npy(out, np.dtype("uint16"), (len(offsets), shape[0], tile, tile))
    return data, RasterJob(str(path), str(out), offsets, tile, overlap, nodata)


# a row buffer of 2 * 32 + 512 rows, 3 bands, 2 bytes: room for 72 px = 2 tiles at stride 24
NARROW = (2 * 32 + READ_ROWS) * 3 * 2 * 72


def test_plan_chunks_wide_rows(tmp_path):
    _data, job = make_job(tmp_path)
    tasks = plan_tasks(job, max_strip_bytes=NARROW, rows_per_task=2)
    strips = [s for t in tasks for s in t.strips]
    assert all(len(t.strips) <= 2 for t in tasks)
    assert all(s.width <= 72 and s.cols[0] == s.col for s in strips)
    assert all(len({(s.col, s.width) for s in t.strips}) == 1 for t in tasks)
    assert sorted(d for s in strips for d in s.dest) == list(range(len(job.offsets)))
    got = {d: (s.row, c) for s in strips for c, d in zip(s.cols, s.dest, strict=True)}
    assert [got[i] for i in range(len(job.offsets))] == [tuple(o) for o in job.offsets.tolist()]


@pytest.mark.parametrize(("max_strip_bytes", "rows_per_task"), [(64 * 2**20, None), (NARROW, 3)])
def test_read_tiles_in_process(tmp_path, max_strip_bytes, rows_per_task):
    data, job = make_job(tmp_path, nodata=0, shape=(3, 1100, 230))
    (fractions,) = read_tiles(
        [job], 0, max_strip_bytes=max_strip_bytes, rows_per_task=rows_per_task, progress=False
    )
    tiles = np.load(job.out)
    for k, (r, c) in enumerate(job.offsets.tolist()):
        window = data[:, r : r + 32, c : c + 32]
        assert np.array_equal(tiles[k], window)
        assert fractions[k] == pytest.approx((window == 0).all(axis=0).mean())
    assert fractions.max() == 1.0 and fractions.min() == 0.0


def test_read_tiles_subset_of_tiles(tmp_path):
    data, job = make_job(tmp_path)
    keep = job.offsets[(job.offsets.sum(1) % 3) == 0]  # a sparse, row-major subset
    new_npy(job.out, np.dtype("uint16"), (len(keep), 3, 32, 32))
    sub = RasterJob(job.raster, job.out, keep, 32, 8, None)
    read_tiles([sub], 0, progress=False)
    tiles = np.load(job.out)
    for k, (r, c) in enumerate(keep.tolist()):
        assert np.array_equal(tiles[k], data[:, r : r + 32, c : c + 32])


def test_read_tiles_errors(tmp_path):
    _, job = make_job(tmp_path)
    with pytest.raises(TilingError, match="workers=-1 must be >= 0"):
        read_tiles([job], -1)
    with rasterio.open(job.raster) as ds:
        assert ds.count == 3
    assert read_tiles(
        [RasterJob(job.raster, job.out, np.zeros((0, 2), dtype=np.int64), 32, 8, None)], 0
    )[0].shape == (0,)


def test_row_buffer_reads_aligned_chunks_once(tmp_path):
    data, job = make_job(tmp_path, shape=(2, 1300, 64), tile=64, overlap=16)
    with open_raster(job.raster) as src:
        reads = []
        real = src.read_into
        src.read_into = lambda window, out: reads.append(window) or real(window, out)
        rows = RowBuffer(job.raster, 0, 64)
        for r in range(0, 1300 - 64, 48):
            assert np.array_equal(rows.strip(src, r, 64), data[:, r : r + 64])
        assert np.array_equal(rows.strip(src, 0, 64), data[:, :64])  # going back: afresh
    heights = [w.height for w in reads]
    assert [w.row for w in reads[:3]] == [0, 512, 1024] and heights[:3] == [512, 512, 276]
    assert rows.nbytes_read == data.nbytes + data[:, :512].nbytes
