"""Which pixels hold no data: one rule for band statistics, tile filters, training and prediction.

A *value* is invalid when it is not finite (NaN, +inf or -inf, in floating rasters) or equals the
raster's nodata value. A *pixel* is nodata when every band's value is invalid: that is what the
nodata fraction of a tile counts, what band statistics leave out and what the model sees filled.
The model never sees an invalid value: :func:`fill_invalid` gives nodata pixels the fill value in
every band, and any remaining non-finite value (one band of an otherwise valid pixel) its band's
fill value; a value equal to the nodata value inside a valid pixel is kept (it is data there).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def invalid_values(array: np.ndarray, nodata: float | None) -> np.ndarray:
    """``bool`` array of ``array``'s shape: True for non-finite values and nodata values."""
    bad = ~np.isfinite(array) if array.dtype.kind in "fc" else np.zeros(array.shape, dtype=bool)
    if nodata is not None and np.isfinite(nodata):
        bad |= array == nodata
    return bad


def nodata_pixels(array: np.ndarray, nodata: float | None) -> np.ndarray:
    """``bool[H, W]`` of ``array[C, H, W]``: True where every band's value is invalid."""
    if nodata is None and array.dtype.kind not in "fc":
        return np.zeros(array.shape[1:], dtype=bool)
    return np.asarray(invalid_values(array, nodata).all(axis=0))


def fill_invalid(
    array: np.ndarray, nodata: float | None, fill: Sequence[float] | None
) -> np.ndarray:
    """``array[C, H, W]`` (any dtype) as float32 with every invalid value the model must not see replaced.

    Args:
        array: pixels in the raster's units and dtype.
        nodata: the raster's nodata value, or None.
        fill: one value per band (raw units, e.g. the band means); ``None`` = the mean of the
            band's valid values in ``array`` (0 when it has none).

    Returns:
        ``float32[C, H, W]``: nodata pixels (see :func:`nodata_pixels`) set to ``fill`` in every
        band, non-finite values set to their band's ``fill``, everything else as read.
    """
    bad = invalid_values(array, nodata)
    replace = nodata_pixels(array, nodata)[None] | (bad & ~np.isfinite(array))
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, then fill
        out = array.astype(np.float32)
    if array.dtype.kind in "fc":
        replace |= ~np.isfinite(out)  # float64 values beyond float32's range
    if not replace.any():
        return out
    for band in range(out.shape[0]):
        valid = ~bad[band] & np.isfinite(out[band])
        if fill is not None:
            value = float(fill[band])
        else:
            value = float(out[band][valid].mean()) if valid.any() else 0.0
        out[band][replace[band]] = value
    return out
