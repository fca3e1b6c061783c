"""The tile store's on-disk format (version, tables, file names) and its one writer.

A store is a folder ``<tiles_dir>/<key>/`` holding:

- ``tiles_<k>.npy``: ``[N_k, C, T, T]`` per raster array ``k``, in the raster's dtype
  (:func:`create_tile_array` makes it, with its disk space reserved; :func:`map_tile_array` maps it);
- ``tiles.parquet``: one row per tile, at least :data:`TILE_COLUMNS`;
- ``boxes.parquet``: one row per (object, tile), at least :data:`BOX_TABLE_COLUMNS`, boxes as
  :data:`BOX_COLUMNS` (xyxy floats in tile pixels);
- ``meta.json``: at least :data:`META_KEYS`, written last by :func:`write_tables`.

A build in progress lives in ``.tmp-<key>-<pid>`` (:data:`TMP_PATTERN`) and is renamed when
complete. Everything that writes a store (the build, offline augmentation, the tests' factory)
writes through this module. It imports no pandas or torch (the reader's workers import it).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tiling.errors import TilingError
from tiling.geometry.box_columns import BOX_COLUMNS
from tiling.store.npyfile import new_npy
from tiling.store.space import write_bytes

if TYPE_CHECKING:
    import pandas as pd

#: Bumped when the on-disk format or the build changes, so old stores are not reused.
FORMAT_VERSION = 3
#: The whole object's size in raster pixels on every box row: mean side, box width and height
#: (version 2 added ``width`` and ``height``: footprints on a body's ellipsoid, catalogue boxes).
OBJECT_SIZE_COLUMNS = ["diameter", "width", "height"]
TILE_COLUMNS = ["tile_id", "raster", "array", "index", "row", "col", "split", "n_boxes", "nodata_fraction"]  # fmt: skip
BOX_TABLE_COLUMNS = ["tile_id", *BOX_COLUMNS, "label", "label_id", "visible", "object_id", *OBJECT_SIZE_COLUMNS]  # fmt: skip
META_KEYS = ("labels", "tile_size", "overlap", "in_channels", "dtype", "rasters", "band_stats")
TMP_PATTERN = re.compile(r"^\.tmp-([0-9a-f]{16})-(\d+)$")
#: Files every complete store holds (besides one ``tiles_<k>.npy`` per raster).
REQUIRED_FILES = ("meta.json", "tiles.parquet", "boxes.parquet")


def tile_array_path(folder: str | Path, k: int) -> Path:
    """``folder/tiles_<k>.npy``: the pixels of raster array ``k``."""
    return Path(folder) / f"tiles_{k}.npy"


def create_tile_array(
    folder: str | Path, k: int, dtype: np.dtype | str, shape: tuple[int, ...]
) -> Path:
    """Create ``tiles_<k>.npy`` of ``shape`` ``[N, C, T, T]`` with its blocks reserved.

    Raises:
        TilingError: not enough disk space (:func:`tiling.store.npyfile.new_npy`).
    """
    path = tile_array_path(folder, k)
    new_npy(path, np.dtype(dtype), shape)
    return path


def map_tile_array(folder: str | Path, k: int, *, writable: bool = False) -> np.memmap:
    """``tiles_<k>.npy`` memory-mapped, ``[N, C, T, T]`` (read-only unless ``writable``)."""
    array = np.load(tile_array_path(folder, k), mmap_mode="r+" if writable else "r")
    if not isinstance(array, np.memmap):
        raise TilingError(f"{tile_array_path(folder, k)} is not a .npy file that can be mapped")
    return array


def write_tables(
    folder: str | Path, tiles: pd.DataFrame, boxes: pd.DataFrame, meta: Mapping[str, Any]
) -> None:
    """Write ``tiles.parquet``, ``boxes.parquet`` and, last, ``meta.json`` into ``folder``.

    Args:
        folder: the store folder (its ``tiles_<k>.npy`` already written).
        tiles: the tiles table; extra columns are kept (e.g. ``source_tile_id``).
        boxes: the boxes table; extra columns are kept.
        meta: JSON-able metadata with :data:`META_KEYS`.

    Raises:
        TilingError: a table lacks one of its columns or ``meta`` one of its keys (names them),
            or the disk is full or read-only (:func:`tiling.store.space.write_bytes`).
    """
    folder = Path(folder)
    _require("tiles.parquet", TILE_COLUMNS, [str(c) for c in tiles.columns], folder)
    _require("boxes.parquet", BOX_TABLE_COLUMNS, [str(c) for c in boxes.columns], folder)
    _require("meta.json", META_KEYS, list(meta), folder)
    write_bytes(folder / "tiles.parquet", _parquet_bytes(tiles))
    write_bytes(folder / "boxes.parquet", _parquet_bytes(boxes))
    write_bytes(folder / "meta.json", json.dumps(meta, indent=1).encode())


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` encoded as parquet in memory (so its size is known before writing)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _require(name: str, needed: Any, present: list[str], folder: Path) -> None:
    """Raise TilingError naming the missing columns/keys of ``name``."""
    missing = [c for c in needed if c not in present]
    if missing:
        raise TilingError(
            f"{folder / name}: cannot write a tile store without {missing} (has {present}); "
            "build the tables as tiling.store.format describes"
        )
