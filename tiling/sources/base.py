"""Raster sources: the one interface through which the project reads pixels.

Everything downstream (tiling, prediction, overviews) sees a :class:`RasterSource`: a raster it can
read windows from, with its shape, band count, dtype, nodata value and pixel-to-world conversion.
One module per format opens files: GDAL formats (GeoTIFF, and the planetary PDS, ISIS and VICAR
formats GDAL reads) in :mod:`tiling.sources.gdal` through rasterio; FITS in
:mod:`tiling.sources.fits` through astropy; :func:`tiling.sources.open.open_raster` picks one.

Pixel convention, for every format: continuous pixel coordinates ``(x, y)`` with ``x`` along
columns and ``y`` along rows, the origin at the top-left *corner* of the top-left pixel, so pixel
``(col, row)`` covers ``[col, col + 1) x [row, row + 1)`` and its centre is ``(col + 0.5,
row + 0.5)``. This is rasterio's convention for its affine transform. (astropy's 0-based WCS
convention puts the centre at integer coordinates: :mod:`tiling.sources.fits` adds the half pixel.)
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiling.closing import Closing
from tiling.errors import RasterError


@dataclass(frozen=True)
class Window:
    """A rectangle of whole pixels: ``row``/``col`` offsets and ``height``/``width`` sizes."""

    row: int
    col: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise RasterError(
                f"window {self} has a non-positive size; height and width must be > 0"
            )

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices for numpy indexing."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


class RasterSource(Closing, abc.ABC):
    """A raster one can read windows from, without ever loading it whole.

    Attributes:
        path: the file it was opened from.
        height, width: size in pixels.
        count: number of bands.
        dtype: numpy dtype of the pixels as stored (16-bit stays 16-bit).
        nodata: the nodata value, or ``None``; NaN and inf are nodata too (:mod:`tiling.sources.nodata`).
        world: ``"map"`` (projected/geographic CRS), ``"sky"`` (celestial WCS) or ``None``.
        world_problem: why ``world`` is ``None`` although the file claims a georeference (a
            degenerate geotransform), or ``None``.
    """

    path: Path
    height: int
    width: int
    count: int
    dtype: np.dtype
    nodata: float | None
    world: str | None
    world_problem: str | None = None

    @abc.abstractmethod
    def read(self, window: Window) -> np.ndarray:
        """Read one window.

        Args:
            window: must lie inside the raster.

        Returns:
            ``ndarray[C, window.height, window.width]`` in the raster's dtype.
        """

    def read_into(self, window: Window, out: np.ndarray) -> None:
        """Read one window into ``out`` (``ndarray[C, h, w]``, any strides, the raster's dtype).

        Sources that can decode straight into a caller's buffer override this (no allocation, no
        second copy); the default reads and copies.
        """
        out[...] = self.read(window)

    @abc.abstractmethod
    def read_overview(self, max_size: int) -> tuple[np.ndarray, float]:
        """Read the whole raster at reduced resolution, never at full resolution in memory.

        Args:
            max_size: the longer side of the result, in pixels.

        Returns:
            ``(ndarray[C, h, w], scale)``, where ``scale`` is raster pixels per overview pixel.
        """

    @abc.abstractmethod
    def pixel_to_world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Convert pixel coordinates (see module docstring) to world coordinates.

        Returns map coordinates in the raster's CRS for ``world == "map"``, and (RA, Dec) in
        degrees for ``world == "sky"``. Raises :class:`RasterError` if ``world`` is ``None``.
        """

    @abc.abstractmethod
    def world_to_pixel(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`pixel_to_world`: returns pixel ``(x, y)`` as float arrays."""

    @property
    def crs_wkt(self) -> str | None:
        """The map CRS as WKT, or ``None`` when there is none (FITS, plain images)."""
        return None

    def pixel_size(self) -> float:
        """Mean size of one pixel in world units (map units, or degrees on the sky)."""
        raise RasterError(f"{self.path}: raster has no world coordinates, so no pixel size")

    def require_map(self, purpose: str) -> None:
        """Raise :class:`RasterError` unless the raster has map coordinates and a CRS.

        Args:
            purpose: what needs them, e.g. ``"a GeoPackage"``, for the message.
        """
        if self.world == "map" and self.crs_wkt is not None:
            return
        reason = self.world_problem or {
            "sky": "it has a sky WCS, not a map CRS",
            "map": "it has a geotransform but no CRS",
        }.get(str(self.world), "it has no CRS and no geotransform")
        raise RasterError(
            f"{self.path}: {purpose} needs map coordinates in a CRS, but {reason}; write the CSV "
            "catalogue (pixel coordinates) only, or fix the raster's georeference"
        )

    def check_window(self, window: Window) -> None:
        """Raise :class:`RasterError` unless ``window`` lies inside the raster."""
        if (
            window.row < 0
            or window.col < 0
            or window.row + window.height > self.height
            or window.col + window.width > self.width
        ):
            raise RasterError(
                f"{self.path}: window {window} falls outside the raster "
                f"({self.height} x {self.width} pixels)"
            )

    def close(self) -> None:
        """Release the file handle."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.path)!r}, {self.height}x{self.width}, "
            f"bands={self.count}, dtype={self.dtype}, nodata={self.nodata})"
        )
