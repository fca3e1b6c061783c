"""GDAL-readable rasters (GeoTIFF, and the planetary PDS, ISIS and VICAR formats) through rasterio."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tiling.errors import RasterError
from tiling.sources.base import RasterSource, Window

if TYPE_CHECKING:
    from affine import Affine

#: GDAL's block cache defaults to 5 % of the machine's memory (1.2 GB on 24 GB), which a reader
#: that visits each block once never needs: :func:`configure_gdal` caps it at this many MB.
GDAL_CACHE_MB = 256


def configure_gdal(cache_mb: int = GDAL_CACHE_MB, *, override: bool = False) -> None:
    """Cap GDAL's block cache at ``cache_mb`` MB (``GDAL_CACHEMAX``) for this process.

    Called by the entry points (the notebook, the ``raster-detect`` command, the tile readers'
    worker processes), never on import. GDAL reads the variable when its cache is first used, so
    call it before the first raster is read.

    Args:
        cache_mb: the cap in MB.
        override: replace a value the user set; by default a user's ``GDAL_CACHEMAX`` is kept.
    """
    if override:
        os.environ["GDAL_CACHEMAX"] = str(cache_mb)
    else:
        os.environ.setdefault("GDAL_CACHEMAX", str(cache_mb))


class GdalRaster(RasterSource):
    """A GDAL-readable raster (GeoTIFF, PDS, ISIS, VICAR, ...) opened through rasterio.

    A raster without georeferencing (a plain PNG or TIFF) opens without rasterio's
    ``NotGeoreferencedWarning``, which every open (each notebook cell, each worker) would repeat:
    its ``world`` is None, it works in pixel coordinates, and the preflight table
    (:func:`model.preflight.preflight`) says so once.
    """

    def __init__(self, path: str | Path) -> None:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        self.path = Path(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
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
        self.world_problem = georeference_problem(ds.transform, ds.crs is not None)
        has_geo = ds.crs is not None or not ds.transform.is_identity
        self.world = "map" if has_geo and self.world_problem is None else None

    @property
    def crs_wkt(self) -> str | None:
        """The raster's CRS as WKT, or ``None``."""
        return None if self._crs is None else self._crs.to_wkt()

    def read(self, window: Window) -> np.ndarray:
        """Read ``window`` as ``ndarray[C, h, w]`` in the raster's dtype."""
        from rasterio.windows import Window as RioWindow

        self.check_window(window)
        rio = RioWindow(window.col, window.row, window.width, window.height)
        with self._damage(_describe(window)):
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
        with self._damage(_describe(window)):
            self._ds.read(
                window=RioWindow(window.col, window.row, window.width, window.height), out=out
            )

    def read_overview(self, max_size: int, threads: int | None = None) -> tuple[np.ndarray, float]:
        """Decimated read (GDAL overviews when present) with the longer side ``max_size``.

        Without overviews a decimated read decodes every block of the raster (deflate cannot be
        skipped), so it is split into horizontal bands decoded at once by ``threads`` threads
        (default: the CPUs, at most 8), each through its own dataset handle; GDAL releases the
        GIL while it decodes.

        Returns:
            ``(ndarray[C, h, w]`` in the raster's dtype, raster pixels per overview pixel``)``.
        """
        scale = max(max(self.height, self.width) / max_size, 1.0)
        shape = (self.count, max(1, round(self.height / scale)), max(1, round(self.width / scale)))
        workers = threads or min(8, os.cpu_count() or 1)
        where = f"an overview of {shape[1]} x {shape[2]} px"
        if workers == 1 or shape[1] < 2 * workers or self._ds.overviews(1):
            with self._damage(where):
                return self._ds.read(out_shape=shape), scale
        out = np.empty(shape, dtype=self.dtype)
        edges = np.linspace(0, shape[1], workers + 1).round().astype(int)
        with self._damage(where), ThreadPoolExecutor(workers) as pool:
            bands = [(int(a), int(b)) for a, b in itertools.pairwise(edges)]
            list(pool.map(lambda band: self._read_band(out, *band), bands))
        return out, scale

    def _read_band(self, out: np.ndarray, r0: int, r1: int) -> None:
        """Decode the raster rows under overview rows ``[r0, r1)`` into ``out[:, r0:r1]``."""
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning
        from rasterio.windows import Window as RioWindow

        per_row = self.height / out.shape[1]
        top, bottom = round(r0 * per_row), round(r1 * per_row)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(self.path)
        with ds:
            ds.read(window=RioWindow(0, top, self.width, bottom - top), out=out[:, r0:r1])

    @contextlib.contextmanager
    def _damage(self, where: str) -> Iterator[None]:
        """Turn GDAL's read failures (a corrupt or truncated block) into a :class:`RasterError`."""
        from rasterio.errors import RasterioError

        try:
            yield
        except RasterioError as err:
            detail = err.__cause__ or err
            raise RasterError(
                f"{self.path}: cannot read {where} ({detail}); the file is damaged there (a "
                "corrupt or truncated block): re-create or re-download it, or leave it out"
            ) from err

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
        if self.world_problem is not None:
            raise RasterError(
                f"{self.path}: {self.world_problem}, so it is refused for map work (coords='map' "
                "or 'lonlat', diameter_unit 'm'/'km'/'map', map columns and GIS output); fix "
                "its georeference (e.g. gdal_edit.py -a_ullr), or use coords='pixel' and "
                "diameter_unit='px'"
            )
        if self.world is None:
            raise RasterError(
                f"{self.path}: raster has no CRS or geotransform, so only pixel coordinates work"
            )

    def close(self) -> None:
        """Close the rasterio dataset."""
        self._ds.close()


def georeference_problem(transform: Affine, has_crs: bool) -> str | None:
    """Why a geotransform cannot map pixels to the world, or None when it can (or is absent).

    Refused: non-finite coefficients, a zero determinant (all zeros, or a zero pixel size: not
    invertible), and a CRS without a geotransform (GDAL then reports the identity, which would
    take pixel indices for map coordinates).
    """
    coefficients = transform.to_gdal()
    if not all(math.isfinite(c) for c in coefficients):
        return f"its geotransform {coefficients} holds non-finite numbers"
    if transform.determinant == 0:
        return f"its geotransform {coefficients} is degenerate (a zero pixel size: not invertible)"
    if has_crs and transform.is_identity:
        return "it has a CRS but no geotransform (GDAL reports the identity)"
    return None


def _describe(window: Window) -> str:
    """``window rows r0-r1, columns c0-c1`` (half-open pixel ranges), for messages."""
    rows, cols = window.slices
    return f"window rows {rows.start}-{rows.stop}, columns {cols.start}-{cols.stop}"
