"""Whole-raster prediction: windows, batched forward passes, the merge, catalogue writers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiling.lazy import lazy_namespace

if TYPE_CHECKING:
    from model.inference.merge import TileMerger
    from model.inference.predict import predict_raster
    from model.inference.windows import WindowBatches
    from model.inference.writers import write_catalog, write_csv, write_geopackage

__all__ = [
    "TileMerger",
    "WindowBatches",
    "predict_raster",
    "write_catalog",
    "write_csv",
    "write_geopackage",
]
__getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "model.inference.predict": ("predict_raster",),
        "model.inference.writers": (
            "write_catalog",
            "write_csv",
            "write_geopackage",
        ),
        "model.inference.merge": ("TileMerger",),
        "model.inference.windows": ("WindowBatches",),
    },
)
