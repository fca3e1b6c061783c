"""Pure tensor geometry: the window grid, object-to-tile assignment, splits without leakage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiling.lazy import lazy_namespace

if TYPE_CHECKING:
    from tiling.geometry.assign import Assignment, assign_boxes, grid_axes
    from tiling.geometry.grid import (
        axis_offsets,
        boxes_from_catalog,
        catalog_from_boxes,
        check_tiling,
        tile_grid,
    )
    from tiling.geometry.splits import (
        SPLIT_MODES,
        SPLITS,
        candidate_tiles,
        catalog_labels,
        check_fractions,
        tile_splits,
    )

__all__ = [
    "SPLITS",
    "SPLIT_MODES",
    "Assignment",
    "assign_boxes",
    "axis_offsets",
    "boxes_from_catalog",
    "candidate_tiles",
    "catalog_from_boxes",
    "catalog_labels",
    "check_fractions",
    "check_tiling",
    "grid_axes",
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
            "catalog_from_boxes",
        ),
        "tiling.geometry.assign": (
            "Assignment",
            "assign_boxes",
            "grid_axes",
        ),
        "tiling.geometry.splits": (
            "SPLITS",
            "SPLIT_MODES",
            "candidate_tiles",
            "catalog_labels",
            "check_fractions",
            "tile_splits",
        ),
    },
)
