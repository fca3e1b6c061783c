"""Project exceptions: one base class, and one subclass per kind of bad input.

Every message names the offending value, the file (and row/column where there is one) and how to
fix it. Subclasses also derive from ``ValueError`` so that callers expecting the built-in type
still catch them.
"""

from __future__ import annotations


class RasterDetectError(Exception):
    """Base class of every error this project raises on purpose."""


class RasterError(RasterDetectError, ValueError):
    """A raster cannot be opened or read, or a window falls outside it."""


class CatalogError(RasterDetectError, ValueError):
    """A catalogue CSV is malformed or cannot be converted to raster pixels."""


class TilingError(RasterDetectError, ValueError):
    """Tiling parameters are inconsistent with the raster or with each other."""


class ConfigError(RasterDetectError, ValueError):
    """A configuration value is out of range or unknown."""


class OutputError(RasterDetectError, ValueError):
    """An output path is unsafe (an input, folder, device, link, old file), or the disk is full."""
