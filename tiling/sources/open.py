"""Open a raster file with the source its format needs (FITS by extension or signature, else GDAL)."""

from __future__ import annotations

from pathlib import Path

from tiling.errors import RasterError
from tiling.sources.base import RasterSource
from tiling.sources.gdal import GdalRaster

#: File extensions read by :mod:`tiling.sources.fits` rather than GDAL.
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.fz", ".fz", ".fits.gz")


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
        from tiling.sources.fits import FitsRaster

        return FitsRaster(path, **options)  # type: ignore[arg-type]
    if options:
        raise RasterError(f"{path}: options {sorted(options)} apply to FITS files only")
    return GdalRaster(path)
