"""Catalogues: pair CSVs with rasters, read them into pixels, clean them with filters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiling.lazy import lazy_namespace

if TYPE_CHECKING:
    from tiling.catalog.collect import CatalogSet, clean_catalog, read_catalogs
    from tiling.catalog.filters import Filter, apply_filters
    from tiling.catalog.pairing import Pair, Pairing, Skipped, pair_files
    from tiling.catalog.read import read_catalog, summarize_catalogs

__all__ = [
    "CatalogSet",
    "Filter",
    "Pair",
    "Pairing",
    "Skipped",
    "apply_filters",
    "clean_catalog",
    "pair_files",
    "read_catalog",
    "read_catalogs",
    "summarize_catalogs",
]
__getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "tiling.catalog.pairing": (
            "Pair",
            "Pairing",
            "Skipped",
            "pair_files",
        ),
        "tiling.catalog.read": (
            "read_catalog",
            "summarize_catalogs",
        ),
        "tiling.catalog.filters": (
            "Filter",
            "apply_filters",
        ),
        "tiling.catalog.collect": (
            "CatalogSet",
            "clean_catalog",
            "read_catalogs",
        ),
    },
)
