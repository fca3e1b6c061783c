"""Raster sources: the one interface through which the project reads pixels.

Everything downstream (tiling, prediction, overviews) sees a :class:`RasterSource`: a raster it can
read windows from, with its shape, band count, dtype, nodata value and pixel-to-world conversion.
One module per format opens files: GDAL formats (GeoTIFF, and the planetary PDS, ISIS and VICAR
formats GDAL reads) here through rasterio; FITS in :mod:`tiling.fits` through astropy.

Pixel convention, for every format: continuous pixel coordinates ``(x, y)`` with ``x`` along
columns and ``y`` along rows, the origin at the top-left *corner* of the top-left pixel, so pixel
``(col, row)`` covers ``[col, col + 1) x [row, row + 1)`` and its centre is ``(col + 0.5,
row + 0.5)``. This is rasterio's convention for its affine transform. (astropy's 0-based WCS
convention puts the centre at integer coordinates: :mod:`tiling.fits` adds the half pixel.)
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np

from tiling.errors import RasterError

#: GDAL's block cache defaults to 5 % of the machine's memory (1.2 GB on 24 GB), which a reader
#: that visits each block once never needs; cap it (MB) unless the user set GDAL_CACHEMAX.
#: GDAL reads the variable when its cache is first used, so this holds for later rasterio opens.
GDAL_CACHE_MB = 256
os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))

#: File extensions read by :mod:`tiling.fits` rather than GDAL.
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.fz", ".fz", ".fits.gz")


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


class RasterSource(abc.ABC):
    """A raster one can read windows from, without ever loading it whole.

    Attributes:
        path: the file it was opened from.
        height, width: size in pixels.
        count: number of bands.
        dtype: numpy dtype of the pixels as stored (16-bit stays 16-bit).
        nodata: the nodata value, or ``None``; floating rasters also treat NaN as nodata.
        world: ``"map"`` (projected/geographic CRS), ``"sky"`` (celestial WCS) or ``None``.
    """

    path: Path
    height: int
    width: int
    count: int
    dtype: np.dtype
    nodata: float | None
    world: str | None

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

    def close(self) -> None:  # noqa: B027 - optional hook, most sources hold one handle
        """Release the file handle."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.path)!r}, {self.height}x{self.width}, "
            f"bands={self.count}, dtype={self.dtype}, nodata={self.nodata})"
        )


class GdalRaster(RasterSource):
    """A GDAL-readable raster (GeoTIFF, PDS, ISIS, VICAR, ...) opened through rasterio."""

    def __init__(self, path: str | Path) -> None:
        import rasterio
        from rasterio.errors import RasterioIOError

        self.path = Path(path)
        try:
            self._ds = rasterio.open(self.path)
        except RasterioIOError as err:
            raise RasterError(
                f"{self.path}: cannot open as a raster ({err}); check the path and the format"
            ) from err
        ds = self._ds
        self.height, self.width, self.count = ds.height, ds.width, ds.count
        self.dtype = np.dtype(ds.dtypes[0])
        self.nodata = None if ds.nodata is None else float(ds.nodata)
        self.transform = ds.transform
        self._crs = ds.crs
        has_geo = ds.crs is not None or not ds.transform.is_identity
        self.world = "map" if has_geo else None

    @property
    def crs_wkt(self) -> str | None:
        """The raster's CRS as WKT, or ``None``."""
        return None if self._crs is None else self._crs.to_wkt()

    def read(self, window: Window) -> np.ndarray:
        """Read ``window`` as ``ndarray[C, h, w]`` in the raster's dtype."""
        from rasterio.windows import Window as RioWindow

        self.check_window(window)
        rio = RioWindow(window.col, window.row, window.width, window.height)
        return self._ds.read(window=rio)

    def read_into(self, window: Window, out: np.ndarray) -> None:
        """Decode ``window`` straight into ``out`` (rasterio honours the array's strides)."""
        from rasterio.windows import Window as RioWindow

        self.check_window(window)
        if out.shape != (self.count, window.height, window.width) or out.dtype != self.dtype:
            raise RasterError(
                f"{self.path}: read_into needs an array of shape "
                f"{(self.count, window.height, window.width)} and dtype {self.dtype}, got "
                f"{out.shape} {out.dtype}"
            )
        self._ds.read(
            window=RioWindow(window.col, window.row, window.width, window.height), out=out
        )

    def read_overview(self, max_size: int) -> tuple[np.ndarray, float]:
        """Decimated read (GDAL overviews when present) with the longer side ``max_size``."""
        scale = max(self.height, self.width) / max_size
        scale = max(scale, 1.0)
        shape = (self.count, max(1, round(self.height / scale)), max(1, round(self.width / scale)))
        return self._ds.read(out_shape=shape), scale

    def pixel_to_world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the affine transform to pixel coordinates."""
        self._require_world()
        t = self.transform
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f

    def world_to_pixel(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the inverse affine transform to map coordinates."""
        self._require_world()
        inv = ~self.transform
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return inv.a * a + inv.b * b + inv.c, inv.d * a + inv.e * b + inv.f

    def pixel_size(self) -> float:
        """Geometric mean of the pixel's width and height in map units."""
        self._require_world()
        t = self.transform
        return float(np.sqrt(abs(t.a * t.e - t.b * t.d)))

    def _require_world(self) -> None:
        if self.world is None:
            raise RasterError(
                f"{self.path}: raster has no CRS or geotransform, so only pixel coordinates work"
            )

    def close(self) -> None:
        """Close the rasterio dataset."""
        self._ds.close()


def is_fits(path: str | Path) -> bool:
    """True if ``path`` is a FITS file, by extension or by its first bytes."""
    path = Path(path)
    if path.name.lower().endswith(FITS_SUFFIXES):
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(9) == b"SIMPLE  ="
    except OSError:
        return False


def open_raster(path: str | Path, **options: object) -> RasterSource:
    """Open ``path`` with the reader its format needs.

    Args:
        path: a GDAL-readable raster or a FITS file.
        **options: format-specific options (for FITS: ``hdu``, a name or index).

    Raises:
        RasterError: the file is missing or unreadable, naming it.
    """
    path = Path(path)
    if not path.exists():
        raise RasterError(f"{path}: raster file does not exist; check images_dir and the file name")
    if is_fits(path):
        from tiling.fits import FitsRaster

        return FitsRaster(path, **options)  # type: ignore[arg-type]
    if options:
        raise RasterError(f"{path}: options {sorted(options)} apply to FITS files only")
    return GdalRaster(path)
