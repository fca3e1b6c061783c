"""Catalogue positions and sizes to pixel boxes of a raster: centre, width and height.

:func:`object_boxes` converts centre + diameter rows, :func:`corner_boxes` rows given as boxes.
A box is centred on the object's centre in pixels; its width and height are those of the
object's footprint:

- ``diameter_unit="px"``: a square of the diameter;
- ``"deg"``, ``"arcmin"``, ``"arcsec"`` (sky rasters): a square of the diameter over the WCS's
  mean pixel scale;
- ``"map"`` (CRS units): the box of the circle of that diameter in map coordinates (square for
  square pixels; a raster's own pixel sizes otherwise);
- ``"m"``, ``"km"``: the box of the geodesic circle on the ellipsoid of the raster's CRS
  (:mod:`tiling.catalog.footprint`), on any CRS pyproj knows, geographic or projected, of any
  body.

Positions (``coords``): ``"pixel"`` as they are, ``"map"`` and ``"sky"`` through the raster's
world-to-pixel conversion, ``"lonlat"`` through :class:`~tiling.catalog.footprint.LonLatFrame`
(0-360 or -180-180 longitudes, rasters across the antimeridian).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tiling.catalog.footprint import LonLatFrame, box_of_rings
from tiling.errors import CatalogError

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: Diameter units and their size in the unit the conversion works in (metres, map units, deg).
UNITS = {"px": 1.0, "m": 1.0, "km": 1000.0, "map": 1.0, "deg": 1.0, "arcmin": 1 / 60}
UNITS |= {"arcsec": 1 / 3600}
COORDS = ("pixel", "map", "lonlat", "sky")
RING = 64  # points on a circle in map units


def check_units(coords: str, unit: str, path: Path) -> None:
    """Raise CatalogError naming the file for an unknown ``coords`` or ``diameter_unit``."""
    if coords not in COORDS:
        raise CatalogError(f"{path}: unknown coords {coords!r}; use pixel, map, lonlat or sky")
    if unit not in UNITS:
        raise CatalogError(f"{path}: unknown diameter_unit {unit!r}; use one of {list(UNITS)}")


def centres(
    raster: Any, a: np.ndarray, b: np.ndarray, coords: str, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel ``(x, y)`` of positions ``a, b`` given in ``coords``."""
    if coords == "pixel":
        return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if coords == "lonlat":
        return LonLatFrame.of(raster, path).to_pixels(a, b)
    x, y = raster.world_to_pixel(a, b)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def object_boxes(
    raster: Any,
    a: np.ndarray,
    b: np.ndarray,
    diameter: np.ndarray,
    coords: str,
    unit: str,
    path: Path,
) -> Arrays:
    """Centres and box sizes in pixels of centre + diameter rows.

    Args:
        raster: the open raster source.
        a, b: ``float64[N]`` positions in ``coords``; ``diameter``: ``float64[N]`` in ``unit``.
        coords: ``pixel``, ``map``, ``lonlat`` or ``sky``.
        unit: a key of :data:`UNITS`.
        path: the CSV (for messages).

    Returns:
        ``(x, y, width, height)``, each ``float64[N]``, in pixels.
    """
    check_units(coords, unit, path)
    d = np.asarray(diameter, dtype=np.float64) * UNITS[unit]
    if unit in ("m", "km"):
        frame = LonLatFrame.of(raster, path)
        lon, lat = (
            (a, b) if coords == "lonlat" else frame.to_lonlat(*centres(raster, a, b, coords, path))
        )
        return frame.footprints(lon, lat, d)
    x, y = centres(raster, a, b, coords, path)
    if unit == "px":
        return x, y, d.copy(), d.copy()
    if unit == "map":
        return (x, y, *map_circle_sizes(raster, x, y, d))
    side = d / raster.pixel_size()
    return x, y, side, side.copy()


def map_circle_sizes(
    raster: Any, x: np.ndarray, y: np.ndarray, diameter: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel box sizes of circles of ``diameter`` map units centred at pixels ``x, y`` ([N])."""
    if len(x) == 0:
        return x.copy(), y.copy()
    mx, my = raster.pixel_to_world(x, y)
    angle = np.arange(RING) * (2 * np.pi / RING)
    r = np.asarray(diameter, dtype=np.float64)[:, None] / 2
    ring_x = np.asarray(mx, dtype=np.float64)[:, None] + r * np.cos(angle)
    ring_y = np.asarray(my, dtype=np.float64)[:, None] + r * np.sin(angle)
    px, py = raster.world_to_pixel(ring_x.ravel(), ring_y.ravel())
    return box_of_rings(np.reshape(px, ring_x.shape), np.reshape(py, ring_y.shape))


def corner_boxes(
    raster: Any,
    x0: np.ndarray,
    y0: np.ndarray,
    x1: np.ndarray,
    y1: np.ndarray,
    coords: str,
    path: Path,
) -> Arrays:
    """Centres and sizes in pixels of boxes given by two corners in ``coords``.

    The four corners go through the position conversion and their bounding box is kept (for
    ``coords="pixel"``, the box itself). A catalogue of boxes has no diameter unit.

    Returns:
        ``(x, y, width, height)``, each ``float64[N]``, in pixels.
    """
    check_units(coords, "px", path)
    xs, ys = centres(
        raster, np.concatenate([x0, x1, x0, x1]), np.concatenate([y0, y0, y1, y1]), coords, path
    )
    xs, ys = xs.reshape(4, -1), ys.reshape(4, -1)
    left, right, top, bottom = xs.min(0), xs.max(0), ys.min(0), ys.max(0)
    return (left + right) / 2, (top + bottom) / 2, right - left, bottom - top
