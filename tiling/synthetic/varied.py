"""The opt-in ``varied`` terrain of the synthetic crater field: closer to real planetary images.

The default field (:mod:`tiling.synthetic.craters`) is easy: mild terrain, one albedo scale,
craters dropped independently. With ``FieldParams(varied=True)`` three things are added, each a
function of the seed and of global pixel coordinates (so strips stay seamless and the output is
deterministic), and none of them touches the random draws of the default field, which stays
byte-identical:

- **albedo patches**: large dark and bright units (maria, ejecta rays, dust) with soft edges, a
  ``tanh`` of smooth noise multiplying the albedo by about 0.65 to 1.35;
- **regional slopes**: broad ridges and basins of a few hundred pixels whose slopes change the
  shading of whole regions (and of the craters on them);
- **overlapping, degraded rims**: a share of the craters moved next to another crater so that
  their rims cut each other, and degraded craters drawn shallower, down to 0.4 of their depth.

A different sun angle is a plain parameter (``sun_azimuth``, ``sun_elevation``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Fraction of the craters moved to overlap another one, and their offset in diameters.
OVERLAP_FRACTION = 0.3
OVERLAP_OFFSET = (0.5, 0.9)
#: Depth factor range of degraded craters in the varied field (default field: 0.85-1.15).
DEGRADED_RELIEF = (0.4, 1.0)
ALBEDO_CELL, ALBEDO_CONTRAST, ALBEDO_SHARPNESS = 320.0, 0.35, 3.0
SLOPE_CELL, SLOPE_RELIEF = 400.0, 40.0


def vary_craters(craters: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Move some craters next to others (overlapping rims) and flatten degraded ones.

    Args:
        craters: the draws of :func:`tiling.synthetic.craters.sample_craters` (``x``, ``y``,
            ``diameter`` px, ``label``, ``relief``), sorted by ``y``.
        rng: drawn from after the default draws, so those stay the same.

    Returns:
        A new frame, same columns, sorted by ``y`` then ``x``; centres stay where they were
        drawn or move by 0.5-0.9 of the larger of the two diameters, in a random direction.
    """
    out = craters.copy()
    n = len(out)
    if n < 2:
        return out
    moved = np.flatnonzero(rng.random(n) < OVERLAP_FRACTION)
    partner = rng.integers(0, n, len(moved))
    angle = rng.uniform(0, 2 * np.pi, len(moved))
    d = out["diameter"].to_numpy()
    reach = rng.uniform(*OVERLAP_OFFSET, len(moved)) * np.maximum(d[moved], d[partner])
    x, y = out["x"].to_numpy().copy(), out["y"].to_numpy().copy()
    x[moved] = x[partner] + reach * np.cos(angle)
    y[moved] = y[partner] + reach * np.sin(angle)
    out["x"], out["y"] = x.round(3), y.round(3)
    degraded = (out["label"] == "degraded").to_numpy()
    relief = out["relief"].to_numpy().copy()
    relief[degraded] = rng.uniform(*DEGRADED_RELIEF, int(degraded.sum()))
    out["relief"] = relief
    return out.sort_values(["y", "x"], ignore_index=True)


def albedo_patches(noise: np.ndarray) -> np.ndarray:
    """Albedo factor of the patches from smooth noise in [-1, 1] (``float32[h, w]``).

    Returns:
        ``float32[h, w]`` in ``1 +- ALBEDO_CONTRAST``: flat inside a patch, a soft step between.
    """
    step = np.tanh(ALBEDO_SHARPNESS * noise) / np.tanh(ALBEDO_SHARPNESS)
    return (1 + ALBEDO_CONTRAST * step).astype(np.float32)


def regional_heights(noise: np.ndarray) -> np.ndarray:
    """Heights (px) of the ridges and basins from smooth noise in [-1, 1] (``float32[h, w]``)."""
    return (SLOPE_RELIEF * noise).astype(np.float32)


def inside(craters: pd.DataFrame, height: int, width: int) -> pd.DataFrame:
    """The craters whose centre lies inside the ``height x width`` raster (a moved one may not)."""
    keep = craters["x"].between(0, width, inclusive="left") & craters["y"].between(
        0, height, inclusive="left"
    )
    return craters[keep].reset_index(drop=True)
