"""Radiometry: stretches for high-dynamic-range data and IRAF's zscale limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiling.lazy import lazy_namespace

if TYPE_CHECKING:
    from tiling.radiometry.stretch import Stretch, fit_stretch, sample_pixels
    from tiling.radiometry.zscale import zscale_limits

__all__ = [
    "Stretch",
    "fit_stretch",
    "sample_pixels",
    "zscale_limits",
]
__getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "tiling.radiometry.stretch": (
            "Stretch",
            "fit_stretch",
            "sample_pixels",
        ),
        "tiling.radiometry.zscale": ("zscale_limits",),
    },
)
