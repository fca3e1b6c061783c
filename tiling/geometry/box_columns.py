"""The names of a box's four corner columns, shared by the geometry and the tile store.

Kept in a module of its own that imports nothing, so the store's format (read by worker
processes that import neither pandas nor torch) and the geometry agree on one definition.
"""

from __future__ import annotations

#: A box's corners in tile pixels (torchvision's xyxy), the columns of every box table.
BOX_COLUMNS = ["xmin", "ymin", "xmax", "ymax"]
