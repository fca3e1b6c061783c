"""Object footprints on a body's ellipsoid, as boxes in a raster's pixels, and back.

A catalogue object of diameter ``D`` (metres) centred at ``(lon, lat)`` is the geodesic circle of
radius ``D / 2`` on the ellipsoid of the raster's own CRS (Earth, Moon, Mars... whatever pyproj
reads from the CRS, never the Earth by default). :meth:`LonLatFrame.footprints` places
:data:`VERTICES` points on that circle with ``pyproj.Geod.fwd`` (one per azimuth), projects them
into the raster's CRS and pixels, and takes their bounding box; each extreme is refined by a
parabola through the best vertex and its two neighbours, so the box is exact to a few thousandths
of a pixel for objects of a few hundred pixels. The object's box is that box's width and height,
centred on the projected centre. On a simple-cylindrical (equirectangular) mosaic a crater at
latitude ``phi`` is ``1 / cos(phi)`` times wider than tall; on a conformal projection near its
centre it is square.

Back from pixels (:meth:`LonLatFrame.diameters`): the diameter whose footprint's box has the
same mean side as the given box, found by fixed-point steps ``D <- D * (w + h) / (w_D + h_D)``
from the geodesic lengths across the box through its centre; for a box made by
:meth:`~LonLatFrame.footprints` this returns the catalogue's diameter (to 1e-6 relative).

Longitudes: a catalogue may give them in 0-360 or -180-180, against a raster in either
convention or crossing the antimeridian: each longitude is taken within 180 degrees of the
longitude at the raster's centre before it is projected, and longitudes going back are given in
that same range (``lon % 360`` gives 0-360). Latitudes and longitudes are on the CRS's geodetic
CRS (its datum and ellipsoid), east-positive as GDAL writes every CRS. A footprint that contains
a pole is not supported on cylindrical rasters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tiling.errors import CatalogError

#: Points placed on each footprint circle.
VERTICES = 64
#: Fixed-point steps of :meth:`LonLatFrame.diameters`.
INVERSE_STEPS = 3

Project = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def wrap_longitude(lon: np.ndarray, centre: float | np.ndarray) -> np.ndarray:
    """Longitudes (degrees) moved by whole turns into ``[centre - 180, centre + 180)``."""
    return centre + np.mod(np.asarray(lon, dtype=np.float64) - centre + 180.0, 360.0) - 180.0


def circle_extremes(v: np.ndarray) -> np.ndarray:
    """Largest value of each row of a closed curve's samples, refined by a parabola.

    Args:
        v: ``float64[N, K]``, a smooth periodic function sampled at ``K`` equal steps.

    Returns:
        ``float64[N]``: the vertex of the parabola through the best sample and its neighbours
        (the best sample itself where the three are not concave).
    """
    k = v.shape[1]
    i = np.argmax(v, axis=1)
    rows = np.arange(len(v))
    a, b, c = v[rows, (i - 1) % k], v[rows, i], v[rows, (i + 1) % k]
    curve = a - 2 * b + c
    safe = np.where(curve < 0, curve, -1.0)
    return np.where(curve < 0, b - (c - a) ** 2 / (8 * safe), b)


def box_of_rings(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Widths and heights ``float64[N]`` of the boxes of closed rings ``x, y`` (``[N, K]``)."""
    width = circle_extremes(x) + circle_extremes(-x)
    height = circle_extremes(y) + circle_extremes(-y)
    return width, height


@dataclass(frozen=True)
class LonLatFrame:
    """Lon/lat (degrees) on a raster CRS's ellipsoid <-> the raster's pixels.

    Build it with :meth:`of` from an open raster (it keeps the raster's pixel/world functions and
    two pyproj transformers; it reads no pixel).

    Attributes:
        to_pixel: world (CRS) coordinates -> pixel ``(x, y)``.
        to_world: pixel ``(x, y)`` -> world coordinates.
        forward, inverse: pyproj transformers lon/lat -> CRS and back (``always_xy``).
        geod: ``pyproj.Geod`` on the CRS's ellipsoid.
        centre_lon: longitude (east, degrees) of the raster's central pixel.
    """

    to_pixel: Project
    to_world: Project
    forward: Any
    inverse: Any
    geod: Any
    centre_lon: float

    @classmethod
    def of(cls, raster: Any, csv: object = "") -> LonLatFrame:
        """The frame of an open raster source (``crs_wkt``, ``world_to_pixel``...).

        Raises:
            CatalogError: the raster has no map CRS (names ``csv`` and the raster).
        """
        if raster.crs_wkt is None:
            raise CatalogError(
                f"{csv}: raster {raster.path} has no CRS, so positions and sizes on the body "
                "(lonlat, m, km) cannot be converted; use coords='pixel' and diameter_unit='px'"
            )
        centre = (raster.width / 2, raster.height / 2)
        where = f"{csv}: the CRS of {raster.path}"
        return cls.build(
            raster.crs_wkt, raster.world_to_pixel, raster.pixel_to_world, centre, where
        )

    @classmethod
    def build(
        cls, crs: str, to_pixel: Project, to_world: Project, centre: tuple[float, float], where: str
    ) -> LonLatFrame:
        """A frame from a CRS (WKT or code), the pixel/world functions and the central pixel.

        Raises:
            CatalogError: the CRS has no geodetic CRS (``where`` names it).
        """
        from pyproj import CRS, Transformer

        projected = CRS.from_user_input(crs)
        geo = projected.geodetic_crs
        if geo is None:
            raise CatalogError(f"{where} has no ellipsoid ({projected.name})")
        forward = Transformer.from_crs(geo, projected, always_xy=True)
        inverse = Transformer.from_crs(projected, geo, always_xy=True)
        mx, my = to_world(np.array([centre[0]]), np.array([centre[1]]))
        lon = float(np.asarray(inverse.transform(mx, my)[0])[0])
        lon = lon if np.isfinite(lon) else 0.0
        return cls(to_pixel, to_world, forward, inverse, geo.get_geod(), lon)

    def _project(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """East lon/lat (degrees, not wrapped) -> pixels."""
        mx, my = self.forward.transform(np.asarray(lon), np.asarray(lat))
        x, y = self.to_pixel(np.asarray(mx), np.asarray(my))
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def to_pixels(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel ``(x, y)`` of east longitudes (0-360 or -180-180) and latitudes, degrees."""
        return self._project(wrap_longitude(lon, self.centre_lon), lat)

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """East lon (within 180 degrees of the raster's centre) and lat of pixel ``(x, y)``."""
        mx, my = self.to_world(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        lon, lat = self.inverse.transform(np.asarray(mx), np.asarray(my))
        return wrap_longitude(lon, self.centre_lon), np.asarray(lat, dtype=np.float64)

    def rings(
        self, lon: np.ndarray, lat: np.ndarray, diameter_m: np.ndarray, vertices: int = VERTICES
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates ``[N, K]`` of ``K`` points on each geodesic circle.

        Args:
            lon, lat: ``float64[N]`` centres, east degrees (any longitude convention).
            diameter_m: ``float64[N]`` diameters in metres on the ellipsoid.
            vertices: ``K``, points per circle (azimuths ``0, 360/K, ...``).
        """
        lon = wrap_longitude(lon, self.centre_lon)
        n = len(lon)
        azimuth = np.tile(np.arange(vertices) * (360.0 / vertices), n)
        centre_lon, centre_lat = (
            np.repeat(lon, vertices),
            np.repeat(np.asarray(lat, float), vertices),
        )
        radius = np.repeat(np.asarray(diameter_m, dtype=np.float64) / 2, vertices)
        plon, plat, _ = self.geod.fwd(centre_lon, centre_lat, azimuth, radius)
        plon = wrap_longitude(plon, centre_lon)  # continuous around each centre
        x, y = self._project(plon, plat)
        return x.reshape(n, vertices), y.reshape(n, vertices)

    def footprints(
        self, lon: np.ndarray, lat: np.ndarray, diameter_m: np.ndarray, vertices: int = VERTICES
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Centres and box sizes in pixels of geodesic circles (module docstring).

        Args:
            lon, lat: ``float64[N]`` centres, east degrees (0-360 or -180-180).
            diameter_m: ``float64[N]`` diameters in metres.
            vertices: points per circle.

        Returns:
            ``(x, y, width, height)``, each ``float64[N]``, in pixels.
        """
        x, y = self.to_pixels(lon, lat)
        if len(x) == 0:
            return x, y, x.copy(), y.copy()
        width, height = box_of_rings(*self.rings(lon, lat, diameter_m, vertices))
        return x, y, width, height

    def diameters(
        self, x: np.ndarray, y: np.ndarray, width: np.ndarray, height: np.ndarray
    ) -> np.ndarray:
        """Diameters in metres on the ellipsoid of boxes centred at ``(x, y)`` (pixels).

        Returns:
            ``float64[N]``: the diameter whose footprint box has the mean side ``(w + h) / 2``.
        """
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        width, height = np.asarray(width, np.float64), np.asarray(height, np.float64)
        lon, lat = self.to_lonlat(x, y)
        across = [self._length(x - width / 2, y, x + width / 2, y)]
        across.append(self._length(x, y - height / 2, x, y + height / 2))
        diameter = (across[0] + across[1]) / 2
        for _ in range(INVERSE_STEPS):
            if len(x) == 0:
                break
            w, h = box_of_rings(*self.rings(lon, lat, diameter))
            diameter = diameter * (width + height) / (w + h)
        return diameter

    def _length(self, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
        """Geodesic distance in metres between pixel points."""
        lon0, lat0 = self.to_lonlat(x0, y0)
        lon1, lat1 = self.to_lonlat(x1, y1)
        _, _, dist = self.geod.inv(lon0, lat0, lon1, lat1)
        return np.asarray(dist, dtype=np.float64)
