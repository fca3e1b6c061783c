"""The tile store opened read-only: tiles memory-mapped, boxes as tensors, split summaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tiling.errors import ConfigError, TilingError
from tiling.geometry.splits import SPLITS
from tiling.sources.nodata import nodata_pixels
from tiling.store.format import (
    BOX_COLUMNS,
    REQUIRED_FILES,
    TMP_PATTERN,
    map_tile_array,
    tile_array_path,
)
from tiling.store.interface import TileStoreLike


class TileStore:
    """A tile store on disk, opened read-only (tiles are memory-mapped on first use).

    Attributes:
        path: the store folder.
        meta: the parsed ``meta.json``.
        tiles: the tiles table (one row per tile, ``tile_id`` unique).
        boxes: the boxes table (``tile_id`` refers to ``tiles``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.source = self.path  # where the tile arrays are (a view of the store keeps them here)
        check_store(self.path)
        self.meta: dict[str, Any] = json.loads((self.path / "meta.json").read_text())
        self.tiles = pd.read_parquet(self.path / "tiles.parquet")
        self.boxes = pd.read_parquet(self.path / "boxes.parquet")
        self._arrays: dict[int, np.memmap] = {}
        self._pos = pd.Index(self.tiles["tile_id"].to_numpy())
        self._where = self.tiles[["array", "index"]].to_numpy(np.int64)
        order = np.argsort(self.boxes["tile_id"].to_numpy(), kind="stable")
        self._box_ids = self.boxes["tile_id"].to_numpy()[order]
        self._box_xyxy = self.boxes[BOX_COLUMNS].to_numpy(np.float32)[order]
        self._box_label = self.boxes["label_id"].to_numpy(np.int64)[order]

    @property
    def labels(self) -> list[str]:
        """Label names; a box's ``label_id`` indexes this list."""
        return list(self.meta["labels"])

    @property
    def tile_size(self) -> int:
        """Tile side ``T`` in pixels."""
        return int(self.meta["tile_size"])

    @property
    def in_channels(self) -> int:
        """Bands per tile ``C``."""
        return int(self.meta["in_channels"])

    @property
    def band_stats(self) -> dict[str, Any]:
        """``{"mean": [C], "std": [C], "percentiles": {...}, "quantiles": {...}, ...}`` (``tiling.store.stats``).

        Stores written before the input stretch lack ``"quantiles"`` and ``"zscale"``.
        """
        return self.meta["band_stats"]

    def split_ids(self, split: str) -> np.ndarray:
        """``int64[n]`` ids of the tiles in ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        if split not in SPLITS:
            raise ConfigError(f"split={split!r} must be one of {SPLITS}")
        return self.tiles.loc[self.tiles["split"] == split, "tile_id"].to_numpy(np.int64)

    def _locate(self, tile_id: int) -> tuple[int, int]:
        """``(array k, row in tiles_<k>.npy)`` of a tile."""
        pos = self._pos.get_indexer([int(tile_id)])[0]
        if pos < 0:
            raise TilingError(
                f"tile_id={tile_id} is not in the tile store {self.path} ({len(self)} tiles); "
                "take ids from store.tiles['tile_id'] or store.split_ids(split)"
            )
        k, index = self._where[pos]
        return int(k), int(index)

    def array(self, k: int) -> np.memmap:
        """The memory-mapped ``tiles_<k>.npy``, ``[N_k, C, T, T]`` (read-only)."""
        if k not in self._arrays:
            self._arrays[k] = map_tile_array(self.source, k)
        return self._arrays[k]

    def image(self, tile_id: int) -> np.ndarray:
        """Pixels of one tile, ``ndarray[C, T, T]`` in the raster's dtype (a copy)."""
        k, index = self._locate(tile_id)
        return np.array(self.array(k)[index])

    def nodata_mask(self, tile_id: int) -> np.ndarray:
        """``bool[T, T]``: True where every band is nodata or not finite (:mod:`tiling.sources.nodata`)."""
        k, index = self._locate(tile_id)
        return nodata_pixels(np.asarray(self.array(k)[index]), self.meta["rasters"][k]["nodata"])

    def target(self, tile_id: int) -> dict[str, torch.Tensor]:
        """``{"boxes": FloatTensor[K, 4] xyxy tile pixels, "labels": LongTensor[K]}``."""
        self._locate(tile_id)
        lo, hi = np.searchsorted(self._box_ids, [tile_id, tile_id + 1])
        return {
            "boxes": torch.from_numpy(self._box_xyxy[lo:hi].copy()).reshape(-1, 4),
            "labels": torch.from_numpy(self._box_label[lo:hi].copy()),
        }

    def __len__(self) -> int:
        return len(self.tiles)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def __repr__(self) -> str:
        counts = self.tiles["split"].value_counts().to_dict()
        return (
            f"TileStore({str(self.path)!r}, tiles={len(self)}, boxes={len(self.boxes)}, {counts})"
        )


def check_store(path: Path) -> None:
    """Raise :class:`TilingError` naming ``path`` unless it holds a complete store."""
    if TMP_PATTERN.match(path.name):
        raise TilingError(
            f"{path} is an unfinished tile store build (a temporary folder); "
            "call build_tile_store again and open the folder it returns"
        )
    if not path.is_dir():
        raise TilingError(
            f"tile store {path} does not exist; build it with tiling.store.build_tile_store"
        )
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if not missing:
        n_arrays = len(json.loads((path / "meta.json").read_text()).get("rasters", []))
        arrays = [tile_array_path(path, k) for k in range(n_arrays)]
        missing = [a.name for a in arrays if not a.is_file()]
    if missing:
        raise TilingError(
            f"tile store {path} is incomplete (missing {', '.join(missing)}); delete it and "
            "build it again with tiling.store.build_tile_store"
        )


def split_summary(store: TileStoreLike) -> pd.DataFrame:
    """Tiles, boxes and empty tiles per split, and boxes per label (for the notebook).

    Returns:
        DataFrame indexed by split (``train``, ``val``, ``test``) with columns ``rasters``,
        ``tiles``, ``empty_tiles``, ``boxes``, ``boxes_per_tile`` and one ``boxes_<label>`` per
        label.
    """
    tiles = store.tiles
    split_of = tiles.set_index("tile_id")["split"]
    boxes = store.boxes.assign(split=split_of.reindex(store.boxes["tile_id"]).to_numpy())
    out = pd.DataFrame(index=pd.Index(SPLITS, name="split"))
    grouped = tiles.groupby("split")
    out["rasters"] = grouped["raster"].nunique()
    out["tiles"] = grouped.size()
    out["empty_tiles"] = grouped["n_boxes"].apply(lambda s: int((s == 0).sum()))
    out["boxes"] = boxes.groupby("split").size()
    out = out.fillna(0).astype(np.int64)
    out["boxes_per_tile"] = out["boxes"] / out["tiles"].where(out["tiles"] > 0)
    per_label = boxes.groupby(["split", "label"]).size().unstack(fill_value=0)
    per_label = per_label.reindex(index=out.index, columns=store.labels, fill_value=0)
    for label in store.labels:
        out[f"boxes_{label}"] = per_label[label].fillna(0).astype(np.int64)
    return out
