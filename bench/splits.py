"""Tiles and objects per split, and straddlers dropped, without reading any pixel.

Runs the store's tile plan (grid, block splits, box assignment, ``keep_empty``) on the rasters'
headers and catalogues, read and filtered as the notebook does (8-120 px, duplicates), and prints
one row per raster: tiles on the grid, tiles dropped for sharing pixels with a rarer split
(straddlers), kept tiles (after ``keep_empty(0.25)``) and distinct objects per split.
``--crop HxW`` plans a top-left window of each raster instead (the catalogue cut to it), so one
generated raster stands for smaller ones.

    .venv/bin/python -m bench.splits --images /tmp/i12data/images --datasets /tmp/i12data/datasets
    .venv/bin/python -m bench.splits ... --test-rasters '' --crop 1150x1700 --tile-size 128

The nodata filter needs pixels and is not applied (it drops a few tiles along a nodata edge).
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from tiling.catalog import filters, pair_files, read_catalog
from tiling.geometry.splits import SPLITS, candidate_tiles, catalog_labels
from tiling.store.build import raster_info, store_params
from tiling.store.tile_filters import apply_tile_filters, keep_empty


def load(images: str, datasets: str) -> list[tuple[dict, pd.DataFrame]]:
    """``(raster info, cleaned catalogue)`` per raster, as the notebook reads them."""
    out = []
    for pair in pair_files(images, datasets):
        clean = filters.apply_filters(
            read_catalog(pair.catalog, pair.raster),
            filters.min_diameter(8.0),
            filters.max_diameter(120.0),
            filters.drop_duplicates(),
        )
        out.append((raster_info(pair.raster), clean))
    return out


def crop(info: dict, catalog: pd.DataFrame, size: str | None) -> tuple[dict, pd.DataFrame]:
    """The top-left ``HxW`` window of a raster and the catalogue objects centred in it."""
    if not size:
        return info, catalog
    height, width = (int(v) for v in size.lower().split("x"))
    inside = (catalog["x"] < width) & (catalog["y"] < height)
    name = f"{info['name']}_{height}x{width}"
    return {**info, "name": name, "height": height, "width": width}, catalog[inside]


def plan(rasters: list[tuple[dict, pd.DataFrame]], args: argparse.Namespace) -> pd.DataFrame:
    """One row per raster: grid tiles, straddlers dropped, kept tiles and objects per split."""
    from tiling.geometry.grid import tile_grid

    tests = [t for t in args.test_rasters.split(",") if t]
    params = store_params(
        args.tile_size, args.overlap, 0.5, "blocks", (0.7, 0.15, 0.15), args.block_size,
        tests, [keep_empty(0.25)], args.seed,
    )  # fmt: skip
    infos = [info for info, _ in rasters]
    labels = sorted({label for _, cat in rasters for label in catalog_labels(cat)})
    logging.disable(logging.INFO)
    tiles, boxes = candidate_tiles([(None, cat) for _, cat in rasters], infos, params, labels)
    keep, _ = apply_tile_filters(tiles, boxes, [keep_empty(0.25)], args.seed)
    rows = []
    for k, info in enumerate(infos):
        grid = len(tile_grid(info["height"], info["width"], args.tile_size, args.overlap))
        planned = tiles[tiles["array"] == k]
        row = {"raster": info["name"], "tile": args.tile_size, "grid_tiles": grid}
        row["straddlers"] = grid - len(planned)
        mine = tiles[(tiles["array"] == k) & keep]
        on = boxes.merge(mine[["tile_id", "split"]], on="tile_id")
        for split in SPLITS:
            row[f"{split}_tiles"] = int((mine["split"] == split).sum())
            row[f"{split}_objects"] = int(on.loc[on["split"] == split, "object_id"].nunique())
        row["objects"] = len(rasters[k][1])
        rows.append(row)
    return pd.DataFrame(rows)


def block_size(value: str) -> int | str | None:
    """``auto``, ``none`` (the old default, 4 tile sizes) or pixels."""
    if value.lower() in ("auto", "none"):
        return "auto" if value.lower() == "auto" else None
    return int(value)


def main() -> None:
    """Parse the arguments and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True)
    parser.add_argument("--datasets", required=True)
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--block-size", default="auto", type=block_size, help="auto, none, px")
    parser.add_argument("--test-rasters", default="crater_field_b", help="comma-separated stems")
    parser.add_argument("--crop", default=None, help="HxW: plan a top-left window of each raster")
    parser.add_argument("--only", default=None, help="plan this raster (stem) alone")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rasters = [crop(i, c, args.crop) for i, c in load(args.images, args.datasets)]
    if args.only:
        rasters = [(i, c) for i, c in rasters if i["name"].startswith(args.only)]
    if args.crop:
        args.test_rasters = ",".join(f"{t}_{args.crop}" for t in args.test_rasters.split(",") if t)
    table = plan(rasters, args)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    dropped, total = table["straddlers"].sum(), table["grid_tiles"].sum()
    print(f"straddlers dropped: {dropped} of {total} tiles ({dropped / total:.1%})")


if __name__ == "__main__":
    main()
