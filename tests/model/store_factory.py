"""Tiny tile stores for model tests, written by the tile store's own writer.

``write_disc_store`` draws bright discs on a noisy background (uint16, one raster array) and
writes them with :mod:`tiling.store.format` (``tiles_0.npy``, ``tiles.parquet``, ``boxes.parquet``,
``meta.json``); ``open_store`` opens it with the real ``tiling.store.TileStore``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tiling.store.format import (
    BOX_COLUMNS,
    BOX_TABLE_COLUMNS,
    create_tile_array,
    map_tile_array,
    write_tables,
)


def _draw_tile(rng, size, bands, n_discs, big, nodata):
    img = rng.normal(1000, 20, size=(bands, size, size))
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    boxes, labels, diam = [], [], []
    for _ in range(n_discs):
        d = float(rng.uniform(14, 22) if rng.random() < 0.5 else rng.uniform(8, 12))
        x, y = rng.uniform(d / 2 + 1, size - d / 2 - 1, size=2)
        inside = (xx - x) ** 2 + (yy - y) ** 2 <= (d / 2) ** 2
        img[:, inside] += 400 if d >= big else 250
        boxes.append([x - d / 2, y - d / 2, x + d / 2, y + d / 2])
        labels.append("big" if d >= big else "small")
        diam.append(d)
    img = np.clip(img, 1, 60000).astype(np.uint16)
    if nodata is not None:
        img[:, : size // 8, :] = nodata
    return img, boxes, labels, diam


def write_disc_store(
    root,
    *,
    n_tiles=12,
    tile_size=64,
    bands=1,
    splits=None,
    max_discs=3,
    nodata=None,
    seed=0,
):
    """Write a store of ``n_tiles`` tiles (the last one empty) and return its folder.

    Splits default to 50 % train, 25 % val, 25 % test (in tile order). With ``nodata`` the top
    eighth of every tile is set to that value (and recorded in the raster's meta).
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    path = root / "storehash"
    path.mkdir(parents=True, exist_ok=True)
    if splits is None:
        n_train, n_val = n_tiles // 2, n_tiles // 4
        splits = ["train"] * n_train + ["val"] * n_val + ["test"] * (n_tiles - n_train - n_val)
    images, box_rows = [], []
    for t in range(n_tiles):
        n = 0 if t == n_tiles - 1 else int(rng.integers(1, max_discs + 1))
        img, boxes, labels, diam = _draw_tile(rng, tile_size, bands, n, 13.0, nodata)
        images.append(img)
        for b, lab, d in zip(boxes, labels, diam, strict=True):
            box_rows.append((t, *b, lab, d))
    arr = np.stack(images)
    create_tile_array(path, 0, arr.dtype, arr.shape)
    map_tile_array(path, 0, writable=True)[:] = arr
    label_names = sorted({r[5] for r in box_rows})
    boxes = pd.DataFrame(box_rows, columns=["tile_id", *BOX_COLUMNS, "label", "diameter"])
    boxes[BOX_COLUMNS] = boxes[BOX_COLUMNS].clip(0, tile_size).astype(np.float32)
    boxes["label_id"] = boxes["label"].map({n: i for i, n in enumerate(label_names)})
    boxes["visible"] = np.float32(1.0)
    boxes["object_id"] = np.arange(len(boxes), dtype=np.int64)
    boxes["diameter"] = boxes["diameter"].astype(np.float32)
    boxes["width"] = boxes["height"] = boxes["diameter"]  # discs: as wide as they are tall
    boxes = boxes[BOX_TABLE_COLUMNS]
    counts = boxes.groupby("tile_id").size().reindex(range(n_tiles), fill_value=0)
    tiles = pd.DataFrame(
        {
            "tile_id": np.arange(n_tiles, dtype=np.int64),
            "raster": "discs",
            "array": 0,
            "index": np.arange(n_tiles),
            "row": np.arange(n_tiles) * tile_size,
            "col": 0,
            "split": splits,
            "n_boxes": counts.to_numpy(),
            "nodata_fraction": 0.125 if nodata is not None else 0.0,
        }
    )
    valid = arr.astype(np.float64)
    valid = valid[:, :, tile_size // 8 :] if nodata is not None else valid
    flat = valid.transpose(1, 0, 2, 3).reshape(bands, -1)
    meta = {
        "params": {"tile_size": tile_size, "seed": seed},
        "labels": label_names,
        "tile_size": tile_size,
        "overlap": 0,
        "in_channels": bands,
        "dtype": "uint16",
        "rasters": [
            {
                "name": "discs",
                "path": "discs.tif",
                "height": n_tiles * tile_size,
                "width": tile_size,
                "count": bands,
                "dtype": "uint16",
                "nodata": nodata,
                "crs_wkt": None,
            }
        ],
        "band_stats": {
            "mean": flat.mean(axis=1).tolist(),
            "std": flat.std(axis=1).tolist(),
            "percentiles": {
                str(q): np.percentile(flat, float(q), axis=1).tolist()
                for q in ("0.5", "2", "50", "98", "99.5")
            },
        },
    }
    write_tables(path, tiles, boxes, meta)
    return path


def open_store(path):
    """The real ``tiling.store.TileStore`` over a folder written by :func:`write_disc_store`."""
    from tiling.store import TileStore

    return TileStore(path)
