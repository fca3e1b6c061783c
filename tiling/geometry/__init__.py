"""Pure tensor geometry: the window grid, object-to-tile assignment, leak-free splits, tile size."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiling.lazy import lazy_namespace

if TYPE_CHECKING:
    from tiling.geometry.assign import Assignment, assign_boxes, grid_axes
    from tiling.geometry.blocks import (
        BlockLayout,
        auto_block_strides,
        block_layout,
        drop_conflicts,
    )
    from tiling.geometry.grid import (
        axis_offsets,
        boxes_from_catalog,
        boxes_from_sizes,
        catalog_from_boxes,
        check_tiling,
        tile_grid,
    )
    from tiling.geometry.splits import (
        SPLIT_MODES,
        SPLITS,
        block_plan,
        candidate_tiles,
        catalog_labels,
        catalog_sizes,
        check_fractions,
        tile_splits,
    )
    from tiling.geometry.tile_size import auto_tile_size, resolve_tile_size

__all__ = [
    "SPLITS",
    "SPLIT_MODES",
    "Assignment",
    "BlockLayout",
    "assign_boxes",
    "auto_block_strides",
    "auto_tile_size",
    "axis_offsets",
    "block_layout",
    "block_plan",
    "boxes_from_catalog",
    "boxes_from_sizes",
    "candidate_tiles",
    "catalog_from_boxes",
    "catalog_labels",
    "catalog_sizes",
    "check_fractions",
    "check_tiling",
    "drop_conflicts",
    "grid_axes",
    "resolve_tile_size",
    "tile_grid",
    "tile_splits",
]
__getattr__, __dir__ = lazy_namespace(
    __name__,
    {
        "tiling.geometry.grid": (
            "axis_offsets",
            "tile_grid",
            "check_tiling",
            "boxes_from_catalog",
            "boxes_from_sizes",
            "catalog_from_boxes",
        ),
        "tiling.geometry.blocks": (
            "BlockLayout",
            "auto_block_strides",
            "block_layout",
            "drop_conflicts",
        ),
        "tiling.geometry.assign": (
            "Assignment",
            "assign_boxes",
            "grid_axes",
        ),
        "tiling.geometry.splits": (
            "SPLITS",
            "SPLIT_MODES",
            "block_plan",
            "candidate_tiles",
            "catalog_labels",
            "catalog_sizes",
            "check_fractions",
            "tile_splits",
        ),
        "tiling.geometry.tile_size": ("auto_tile_size", "resolve_tile_size"),
    },
)
