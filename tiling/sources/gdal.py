"""GDAL-readable rasters (GeoTIFF, and the planetary PDS, ISIS and VICAR formats) through rasterio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tiling.errors import RasterError
from tiling.sources.base import RasterSource, Window

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
