"""Band statistics of a tile store, from a sample of tiles, excluding nodata pixels.

Used to normalise the network's input (``image_mean``/``image_std``), to stretch tiles for
display (the percentiles) and to fit the model's input stretch (``ModelConfig.input_stretch``: the
percentiles, the zscale limits, and the quantiles that give the mean/std of stretched values). The sample is bounded (``max_tiles`` tiles, each subsampled on a regular
pixel lattice so that at most ``max_pixels`` pixels per band are read), so the cost does not grow
with the store. A pixel is excluded when every band is nodata, and a value is excluded when it is not finite (NaN,
inf; see :mod:`tiling.sources.nodata`), so the statistics stay finite.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tiling.radiometry.zscale import sort_kind, zscale_limits
from tiling.sources.nodata import nodata_pixels
from tiling.store.npyfile import npy_header

log = logging.getLogger(__name__)

#: Percentiles stored in ``meta["band_stats"]["percentiles"]`` (keys are these strings).
PERCENTILES = ("0.5", "2", "50", "98", "99.5")

#: Levels (percent) of ``meta["band_stats"]["quantiles"]``: centres of 100 equal-count bins, so the
#: mean of ``f(quantiles)`` estimates the mean of ``f(pixel)`` for any monotone ``f`` (a stretch).
QUANTILE_LEVELS = tuple(i + 0.5 for i in range(100))

#: zscale contrast of ``meta["band_stats"]["zscale"]`` (IRAF's and astropy's default).
ZSCALE_CONTRAST = 0.25


def sample_tiles(counts: Sequence[int], max_tiles: int, seed: int) -> list[tuple[int, int]]:
    """Up to ``max_tiles`` ``(array k, row)`` pairs drawn without replacement, sorted.

    Args:
        counts: number of tiles in each array.
        max_tiles: sample size cap.
        seed: seeds the draw.
    """
    total = int(sum(counts))
    flat = np.random.default_rng(seed).choice(total, size=min(total, max_tiles), replace=False)
    starts = np.cumsum([0, *counts])
    ks = np.searchsorted(starts, np.sort(flat), side="right") - 1
    return [(int(k), int(i - starts[k])) for k, i in zip(ks, np.sort(flat), strict=True)]


def band_stats(
    arrays: Sequence[str | Path],
    nodata: Sequence[float | None],
    *,
    max_tiles: int = 256,
    max_pixels: int = 2_000_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-band mean, std and percentiles over the valid pixels of a sample of tiles.

    Args:
        arrays: ``.npy`` files of ``[N_k, C, T, T]`` tiles (same ``C``).
        nodata: nodata value of each array's raster (or ``None``).
        max_tiles: tiles sampled at most (over all arrays).
        max_pixels: pixels per band read at most.
        seed: seeds the sample.

    Returns:
        ``{"mean": [C], "std": [C], "percentiles": {"0.5": [C], ...}, "quantiles": {"levels": [N],
        "values": [C][N]}, "zscale": {"low": [C], "high": [C], "contrast": 0.25},
        "sample_tiles": n, "sample_pixels": n}``, plain floats in raw units (percentile and
        quantile levels in percent, :data:`QUANTILE_LEVELS`; zscale limits from
        :func:`tiling.radiometry.zscale.zscale_limits`). With no valid pixel at all, mean 0, std 1 and every
        percentile, quantile and limit 0 (with a warning).
    """
    headers = [npy_header(p) for p in arrays]
    picks = sample_tiles([shape[0] for _, shape, _ in headers], max_tiles, seed)
    channels, size = headers[0][1][1], headers[0][1][-1]
    step = max(1, math.ceil(math.sqrt(size * size * max(len(picks), 1) / max_pixels)))
    parts = []
    fds = [os.open(p, os.O_RDONLY) for p in arrays]
    try:
        for k, i in picks:
            tile = _read_row(fds[k], *headers[k], i)[:, ::step, ::step]
            parts.append(tile[:, ~nodata_pixels(tile, nodata[k])])
    finally:
        for fd in fds:
            os.close(fd)
    dtype = np.result_type(*[dtype for _, _, dtype in headers])
    # native dtype until the summary: 8/16-bit integers sort by radix, and copies stay small
    values = np.concatenate(parts, axis=1) if parts else np.zeros((channels, 0), dtype)
    if np.issubdtype(values.dtype, np.floating):
        values = values[:, np.isfinite(values).all(axis=0)]  # NaN/inf in some bands only
    return _summarise(values, len(picks))


def _read_row(
    fd: int, header: int, shape: tuple[int, ...], dtype: np.dtype, index: int
) -> np.ndarray:
    """Row ``index`` of the ``.npy`` open as ``fd`` (data at ``header``), read with ``pread``.

    Not through a memory map: a fault on freshly written page cache can map a whole large folio
    (measured: 460 MB of the store's pages resident in the main process for 256 sampled tiles).
    """
    count = int(np.prod(shape[1:], dtype=np.int64))
    nbytes = count * dtype.itemsize
    data = os.pread(fd, nbytes, header + index * nbytes)
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape[1:])


def _summarise(values: np.ndarray, n_tiles: int) -> dict[str, Any]:
    """Statistics of ``values[C, n]`` (any real dtype; summaries are float64)."""
    channels = values.shape[0]
    if values.shape[1] == 0:
        warnings.warn(
            "no valid (non-nodata) pixel in the sampled tiles; band statistics default to "
            "mean 0, std 1",
            stacklevel=3,
        )
        zeros = [0.0] * channels
        return {
            "mean": zeros,
            "std": [1.0] * channels,
            "percentiles": {q: zeros for q in PERCENTILES},
            "quantiles": {"levels": list(QUANTILE_LEVELS), "values": [[0.0] * 100] * channels},
            "zscale": {"low": zeros, "high": zeros, "contrast": ZSCALE_CONTRAST},
            "sample_tiles": n_tiles,
            "sample_pixels": 0,
        }
    ordered = np.sort(values, axis=1, kind=sort_kind(values.dtype))  # one sort serves all
    pct = sorted_percentiles(ordered, [float(q) for q in PERCENTILES])
    limits = [zscale_limits(band, ZSCALE_CONTRAST, presorted=True) for band in ordered]
    zscale = {"low": [lo for lo, _ in limits], "high": [hi for _, hi in limits]}
    return {
        "mean": values.mean(axis=1, dtype=np.float64).tolist(),
        "std": values.std(axis=1, dtype=np.float64).tolist(),
        "percentiles": {q: row.tolist() for q, row in zip(PERCENTILES, pct, strict=True)},
        "quantiles": {
            "levels": list(QUANTILE_LEVELS),
            "values": sorted_percentiles(ordered, QUANTILE_LEVELS).T.tolist(),
        },
        "zscale": {**zscale, "contrast": ZSCALE_CONTRAST},
        "sample_tiles": n_tiles,
        "sample_pixels": int(values.shape[1]),
    }


def sorted_percentiles(ordered: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Percentiles of rows already sorted, interpolated as ``np.percentile`` does by default.

    Args:
        ordered: ``[C, n]`` values (any real dtype), each row sorted ascending, ``n >= 1``.
        levels: percentiles in ``[0, 100]``.

    Returns:
        ``float64[len(levels), C]`` (the layout of ``np.percentile(values, levels, axis=1)``).
    """
    n = ordered.shape[1]
    position = np.asarray(levels, dtype=np.float64) / 100.0 * (n - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    weight = (position - below)[:, None]
    low, high = ordered[:, below].T.astype(np.float64), ordered[:, above].T.astype(np.float64)
    return low + (high - low) * weight
