"""Raster sources: the one interface through which the project reads pixels (GDAL, FITS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiling.lazy import lazy_namespace

if TYPE_CHECKING:
    from tiling.sources.base import RasterSource, Window
    from tiling.sources.fits import FitsRaster
    from tiling.sources.gdal import GdalRaster, configure_gdal
    from tiling.sources.open import FITS_SUFFIXES, is_fits, open_raster

__all__ = [
    "FITS_SUFFIXES",
    "FitsRaster",
    "GdalRaster",
    "RasterSource",
    "Window",
    "configure_gdal",
    "is_fits",
    "open_raster",
]
__getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "tiling.sources.base": (
            "RasterSource",
            "Window",
        ),
        "tiling.sources.gdal": (
            "GdalRaster",
            "configure_gdal",
        ),
        "tiling.sources.fits": ("FitsRaster",),
        "tiling.sources.open": (
            "FITS_SUFFIXES",
            "is_fits",
            "open_raster",
        ),
    },
)
