"""Offline expansion: write a new tile store holding the originals plus augmented copies.

The output is a tile store (``tiles_<k>.npy``, ``tiles.parquet``, ``boxes.parquet``, ``meta.json``)
written by the store's own writer (:mod:`tiling.store.format`) into a temporary folder and renamed
when complete, so ``TileStore(path)`` opens it. Per raster array ``k``: first every
original tile (unchanged), then ``copies`` augmented copies of each tile whose split is in
``splits`` (default: train only, so validation and test stay untouched). Two columns are added to
``tiles.parquet``: ``source_tile_id`` and ``augment_copy`` (0 = original); ``row``/``col``/``split``/
``nodata_fraction`` are the source tile's.

Augmentation runs in float32 in batch mode; the result is cast back to the store's dtype, rounded
and **clipped to the dtype's range** for integer dtypes (a brightness shift can push 16-bit values
past 65535 or below 0, which saturate there). Nodata pixels are augmented like any other pixel.
Augmented boxes keep their label, ``object_id`` and their object's (zoom-scaled, turned)
``diameter``, ``width`` and ``height``; ``visible`` is recomputed as clipped box area / ``width
x height`` (``diameter**2`` in stores without them), capped at 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from augment.base import Transform
from augment.recipe import build_transform, recipe_to_dict
from tiling.errors import ConfigError
from tiling.progress import progress_bar
from tiling.store.format import (
    BOX_COLUMNS,
    OBJECT_SIZE_COLUMNS,
    create_tile_array,
    map_tile_array,
    write_tables,
)
from tiling.store.interface import TileStoreLike

log = logging.getLogger(__name__)


def cast_to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast float ``values`` to ``dtype``: rounded and clipped to its range if integer."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    info_f = np.finfo(dtype)
    return np.clip(values, info_f.min, info_f.max).astype(dtype)


def expand_store(
    store: TileStoreLike,
    out_dir: str | Path,
    recipe: str | dict[str, Any] | Transform,
    copies: int,
    seed: int = 0,
    *,
    splits: Sequence[str] = ("train",),
    batch_size: int = 32,
) -> Path:
    """Write the originals of ``store`` plus ``copies`` augmented copies of its ``splits`` tiles.

    Args:
        store: the source store.
        out_dir: parent folder; the store goes to ``<out_dir>/expanded-<hash>`` where the hash
            covers the source path, recipe, copies, seed and splits (an existing one is reused).
        recipe: augmentation recipe (name, dict or transform).
        copies: augmented copies per tile (>= 1); the new store has
            ``len(store) + copies * (tiles in splits)`` tiles.
        seed: seeds the ``torch.Generator`` of the augmentation draws.
        splits: splits whose tiles get copies.
        batch_size: tiles augmented per batch.

    Returns:
        The new store's folder.
    """
    if copies < 1:
        raise ConfigError(f"copies={copies} must be >= 1 (augmented copies per tile)")
    transform = build_transform(recipe)
    spec = {
        "source": str(store.path),
        "recipe": recipe_to_dict(transform),
        "copies": copies,
        "seed": seed,
        "splits": sorted(splits),
    }
    key = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    final = Path(out_dir) / f"expanded-{key}"
    if final.exists():
        log.info("reusing expanded store %s", final)
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".tmp-expand-"))
    try:
        _write(store, tmp, transform, spec, batch_size)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write(
    store: TileStoreLike, folder: Path, transform: Transform, spec: dict[str, Any], batch_size: int
) -> None:
    """Write arrays, tables and meta of the expanded store into ``folder``."""
    writer = _Writer(store, folder, transform, spec, batch_size)
    for k, group in store.tiles.groupby("array", sort=True):
        writer.write_array(int(k), group.sort_values("index"))
    tiles = pd.concat(writer.tile_rows, ignore_index=True)
    boxes = pd.concat(writer.box_rows, ignore_index=True)[list(store.boxes.columns)]
    write_tables(folder, tiles, boxes, {**store.meta, "expansion": spec})


class _Writer:
    """Accumulates the new tables while writing one ``tiles_<k>.npy`` after the other."""

    def __init__(
        self,
        store: TileStoreLike,
        folder: Path,
        transform: Transform,
        spec: dict[str, Any],
        batch_size: int,
    ) -> None:
        self.store, self.folder, self.transform, self.spec = store, folder, transform, spec
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(spec["seed"])
        self.boxes_by_tile = {tid: df for tid, df in store.boxes.groupby("tile_id")}
        self.tile_rows: list[pd.DataFrame] = []
        self.box_rows: list[pd.DataFrame] = []
        self.next_id = 0

    def write_array(self, k: int, group: pd.DataFrame) -> None:
        """Originals of array ``k`` (rows ``group``), then the augmented copies."""
        aug = group[group["split"].isin(self.spec["splits"])]
        sources = [group] + [aug] * self.spec["copies"]
        first = np.asarray(self.store.image(int(group["tile_id"].iloc[0])))
        shape = (sum(len(s) for s in sources), *first.shape)
        create_tile_array(self.folder, k, first.dtype, shape)
        array = map_tile_array(self.folder, k, writable=True)
        start = 0
        for copy, src in enumerate(sources):
            for lo in progress_bar(
                range(0, len(src), self.batch_size), desc=f"array {k} copy {copy}"
            ):
                chunk = src.iloc[lo : lo + self.batch_size]
                transform = self.transform if copy else None
                images, boxes = _augment(self.store, chunk, self.boxes_by_tile, transform, self.gen)
                array[start : start + len(chunk)] = cast_to_dtype(images, first.dtype)
                self._add_rows(chunk, boxes, start, copy)
                start += len(chunk)
        array.flush()
        del array

    def _add_rows(self, chunk: pd.DataFrame, boxes: pd.DataFrame, start: int, copy: int) -> None:
        """Tile rows of a written chunk (new ids, positions) and its boxes (new tile ids)."""
        ids = np.arange(self.next_id, self.next_id + len(chunk))
        rows = chunk.assign(
            tile_id=ids,
            index=np.arange(start, start + len(chunk)),
            source_tile_id=chunk["tile_id"].to_numpy(),
            augment_copy=copy,
        )
        rows["n_boxes"] = np.bincount(boxes["tile_id"].to_numpy(), minlength=len(chunk))
        boxes["tile_id"] = ids[boxes["tile_id"].to_numpy()]
        self.tile_rows.append(rows)
        self.box_rows.append(boxes)
        self.next_id += len(chunk)


def _augment(
    store: TileStoreLike,
    chunk: pd.DataFrame,
    boxes_by_tile: dict[int, pd.DataFrame],
    transform: Transform | None,
    gen: torch.Generator,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Images ``[n, C, T, T]`` (float) and boxes (``tile_id`` = position in chunk) of a chunk."""
    tile_ids = chunk["tile_id"].tolist()
    empty = store.boxes.iloc[:0]
    frames = [boxes_by_tile.get(t, empty).assign(tile_id=i) for i, t in enumerate(tile_ids)]
    source = pd.concat(frames, ignore_index=True)
    raw = np.stack([np.asarray(store.image(t)) for t in tile_ids])
    if transform is None:
        return raw, source
    images = torch.from_numpy(raw.astype(np.float64 if raw.dtype == np.float64 else np.float32))
    targets = [_target(source[source["tile_id"] == i]) for i in range(len(tile_ids))]
    out, new = transform(images, targets, gen)
    parts = []
    for i, t in enumerate(new):
        rows = source.iloc[t["box_index"].numpy()].assign(tile_id=i)
        rows[BOX_COLUMNS] = t["boxes"].numpy().astype(np.float32)
        area = (rows["xmax"] - rows["xmin"]) * (rows["ymax"] - rows["ymin"])
        for key in OBJECT_SIZE_COLUMNS:
            if key in t:
                rows[key] = t[key].numpy().astype(np.float32)
        whole = rows["width"] * rows["height"] if "width" in t else rows["diameter"] ** 2
        rows["visible"] = np.minimum(1.0, area / whole).astype(np.float32)
        parts.append(rows)
    return out.numpy(), pd.concat([source.iloc[:0], *parts], ignore_index=True)


def _target(rows: pd.DataFrame) -> dict[str, torch.Tensor]:
    """A transform target for one tile's box rows; ``box_index`` = row position in the chunk."""
    sizes = {
        k: torch.tensor(rows[k].to_numpy(np.float32)) for k in OBJECT_SIZE_COLUMNS if k in rows
    }
    return {
        "boxes": torch.tensor(rows[BOX_COLUMNS].to_numpy(np.float32)).reshape(-1, 4),
        "labels": torch.tensor(rows["label_id"].to_numpy(np.int64)),
        **sizes,
        "box_index": torch.tensor(rows.index.to_numpy(np.int64)),
    }
