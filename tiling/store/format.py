"""The tile store's on-disk format: version, table columns and folder names.

A store is a folder ``<tiles_dir>/<key>/`` holding ``tiles_<k>.npy`` (``[N_k, C, T, T]`` per
raster, in the raster's dtype), ``tiles.parquet`` (:data:`TILE_COLUMNS`), ``boxes.parquet``
(:data:`BOX_COLUMNS` and the box attributes) and ``meta.json``; a build in progress lives in
``.tmp-<key>-<pid>`` (:data:`TMP_PATTERN`).
"""

from __future__ import annotations

import re

#: Bumped when the on-disk format or the build changes, so old stores are not reused.
FORMAT_VERSION = 2
BOX_COLUMNS = ["xmin", "ymin", "xmax", "ymax"]
#: The whole object's size in raster pixels on every box row: mean side, box width and height
#: (version 2 added ``width`` and ``height``: footprints on a body's ellipsoid, catalogue boxes).
OBJECT_SIZE_COLUMNS = ["diameter", "width", "height"]
TILE_COLUMNS = ["tile_id", "raster", "array", "index", "row", "col", "split", "n_boxes", "nodata_fraction"]  # fmt: skip
TMP_PATTERN = re.compile(r"^\.tmp-([0-9a-f]{16})-(\d+)$")
#: Files every complete store holds (besides one ``tiles_<k>.npy`` per raster).
REQUIRED_FILES = ("meta.json", "tiles.parquet", "boxes.parquet")
