"""``tile_size="auto"``: the tile side that suits a data set, from its catalogues' object sizes.

Few labels of small objects learn more per minute of CPU from small tiles than from large ones:
on the few-labels benchmark (100 synthetic craters, more than half under 12 px; README "Few
labels"), 128-px tiles with the stride-4 level reached AP 0.70 in 300 steps (each 0.64x the cost
of a 256-px step without it), while 256-px tiles reached 0.68 in 480 steps without the stride-4
level and 0.35 in 240 steps with it, in twice the time or more. Small tiles also cut small
rasters (a 400 x 400 px aerial tile) into enough blocks for the splits. Large catalogues (the
default data: 4,711 craters) keep 256 px, whose steps see more objects each and whose prediction
windows see more context.

The rule: :data:`SMALL_TILE` px when the catalogues hold fewer than :data:`FEW_OBJECTS` objects
and nine in ten of them are at most half of :data:`SMALL_TILE` across, or when a raster is
smaller than :data:`LARGE_TILE` px along a side; else :data:`LARGE_TILE`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from tiling.errors import ConfigError

AUTO = "auto"
SMALL_TILE = 128
LARGE_TILE = 256
FEW_OBJECTS = 2000
SIZE_QUANTILE = 0.9


def auto_tile_size(diameters: np.ndarray, min_side: int | None = None) -> int:
    """The tile side for objects of these diameters.

    Args:
        diameters: float[N], every object's diameter in pixels of its raster (non-finite values
            are ignored).
        min_side: the shortest side of the rasters in pixels (None: not known).

    Returns:
        :data:`SMALL_TILE` when ``min_side < LARGE_TILE`` (a large tile would not fit), or when
        ``0 < N < FEW_OBJECTS`` and the :data:`SIZE_QUANTILE` quantile of the diameters is at
        most ``SMALL_TILE / 2``; else :data:`LARGE_TILE`.
    """
    if min_side is not None and min_side < LARGE_TILE:
        return SMALL_TILE
    sizes = np.asarray(diameters, dtype=float).ravel()
    sizes = sizes[np.isfinite(sizes)]
    if not 0 < sizes.size < FEW_OBJECTS:
        return LARGE_TILE
    small = float(np.quantile(sizes, SIZE_QUANTILE)) <= SMALL_TILE / 2
    return SMALL_TILE if small else LARGE_TILE


def resolve_tile_size(
    tile_size: int | str, catalogs: Iterable[pd.DataFrame], min_side: int | None = None
) -> int:
    """``tile_size`` in pixels: a number unchanged, ``"auto"`` by :func:`auto_tile_size`.

    Args:
        tile_size: a positive number of pixels or ``"auto"``.
        catalogs: the cleaned catalogues (column ``diameter`` in pixels), all rasters together.
        min_side: the shortest side of their rasters in pixels (None: not known).

    Raises:
        ConfigError: ``tile_size`` is neither; or ``"auto"`` with a catalogue lacking ``diameter``.
    """
    if isinstance(tile_size, str):
        if tile_size != AUTO:
            raise ConfigError(f"tile_size={tile_size!r}: give a number of pixels or 'auto'")
        frames = list(catalogs)
        missing = [i for i, frame in enumerate(frames) if "diameter" not in frame.columns]
        if missing:
            raise ConfigError(
                f"tile_size='auto' needs each catalogue's 'diameter' column (px); catalogue(s) "
                f"{missing} lack it: read them with tiling.catalog.read_catalogs, or give a size"
            )
        sizes = [frame["diameter"].to_numpy(dtype=float) for frame in frames]
        return auto_tile_size(np.concatenate(sizes) if sizes else np.zeros(0), min_side)
    if isinstance(tile_size, bool) or int(tile_size) != tile_size or tile_size <= 0:
        raise ConfigError(
            f"tile_size={tile_size!r} must be a positive whole number of pixels or 'auto'"
        )
    return int(tile_size)
