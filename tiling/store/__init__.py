"""The tile store: its format and writer, its interface, the parallel build and reader, statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiling.lazy import lazy_namespace

if TYPE_CHECKING:
    from tiling.store.build import build_tile_store
    from tiling.store.format import BOX_COLUMNS, FORMAT_VERSION, TILE_COLUMNS, write_tables
    from tiling.store.interface import TileStoreLike
    from tiling.store.stats import band_stats
    from tiling.store.tile_filters import TileFilter, apply_tile_filters
    from tiling.store.tilestore import TileStore, check_store, split_summary

__all__ = [
    "BOX_COLUMNS",
    "FORMAT_VERSION",
    "TILE_COLUMNS",
    "TileFilter",
    "TileStore",
    "TileStoreLike",
    "apply_tile_filters",
    "band_stats",
    "build_tile_store",
    "check_store",
    "split_summary",
    "write_tables",
]
__getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "tiling.store.format": (
            "FORMAT_VERSION",
            "BOX_COLUMNS",
            "TILE_COLUMNS",
            "write_tables",
        ),
        "tiling.store.interface": ("TileStoreLike",),
        "tiling.store.build": ("build_tile_store",),
        "tiling.store.tilestore": (
            "TileStore",
            "check_store",
            "split_summary",
        ),
        "tiling.store.tile_filters": (
            "TileFilter",
            "apply_tile_filters",
        ),
        "tiling.store.stats": ("band_stats",),
    },
)
