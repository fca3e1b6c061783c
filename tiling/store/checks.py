"""What a tile store build refuses, at the step where it can tell, with the counts and the fix.

A store that could not train anything is refused at its build, not later in training with an
unrelated error (an anchor size from no boxes, a NaN loss):

- a catalogue value that is not a finite number, a diameter that is not positive, an empty label
  (catalogues handed over as DataFrames, not only read from CSVs);
- rasters smaller than one tile (in ``build.check_rasters``, naming them);
- no tile left by the tile filters that need no pixels (before any pixel is read), or by those
  that do (after);
- a raster whose every tile holds only nodata (its nodata value, NaN or inf: see
  :mod:`tiling.sources.nodata`);
- a store that would hold no box (empty catalogues, or no object visible enough on a kept tile).

A raster left without any tile, while others keep some, gets a warning naming it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiling.errors import CatalogError, TilingError


def check_catalogs(sources: Sequence[tuple[str | Path, pd.DataFrame]], names: list[str]) -> None:
    """Finite ``x``, ``y``, positive finite ``diameter`` and filled ``label`` in every catalogue.

    Missing columns are left to the box builder, which names them.

    Raises:
        CatalogError: naming the raster, the row (the DataFrame's index) and the column.
    """
    for (_, catalog), name in zip(sources, names, strict=True):
        for column in ("x", "y", "diameter"):
            if column in catalog:
                values = pd.to_numeric(catalog[column], errors="coerce").to_numpy(np.float64)
                bad = ~np.isfinite(values) | ((values <= 0) if column == "diameter" else False)
                _refuse(
                    catalog, column, bad, name, "a finite number" + " > 0" * (column == "diameter")
                )
        if "label" in catalog:
            labels = catalog["label"]
            empty = labels.isna().to_numpy() | (labels.astype(str).str.strip() == "").to_numpy()
            _refuse(catalog, "label", empty, name, "a class name (not empty)")


def _refuse(catalog: pd.DataFrame, column: str, bad: np.ndarray, name: str, want: str) -> None:
    rows = np.flatnonzero(bad)
    if rows.size:
        i, value = rows[0], catalog[column].iloc[rows[0]]
        shown = repr(value) if isinstance(value, str) or value is None else str(value)
        raise CatalogError(
            f"catalogue of raster {name!r}: row {catalog.index[i]} (DataFrame index), column "
            f"{column!r}: value {shown} is not {want} ({rows.size} row(s) in all); fix or drop "
            "those rows"
        )


def check_tiles_left(
    tiles: pd.DataFrame, keep: np.ndarray, report: pd.DataFrame, names: list[str], when: str
) -> None:
    """Refuse a store with no tile left; warn about rasters left without a tile.

    Args:
        tiles: the candidate tiles (column ``raster``). keep: ``bool[len(tiles)]`` kept by the
            filters. report: the filters' report (``filter``, ``before``, ``removed``).
        names: every raster's name. when: the step, for the message.
    """
    per_raster = tiles["raster"].value_counts().reindex(names, fill_value=0)
    kept = tiles.loc[keep, "raster"].value_counts().reindex(names, fill_value=0)
    if keep.any():
        empty = [n for n in names if per_raster[n] > 0 and kept[n] == 0]
        if empty:
            warnings.warn(
                f"the tile filters left no tile of raster(s) {empty} ({when}); they add nothing "
                "to the store",
                stacklevel=3,
            )
        return
    counts = ", ".join(f"{n}: {per_raster[n]}" for n in names)
    if len(tiles) == 0:
        raise TilingError(
            f"no candidate tile in any raster ({counts}): every tile straddles the split blocks; "
            "use a larger block_size, or split='raster'"
        )
    removed = "; ".join(
        f"{r.filter} removed {r.removed} of {r.before}" for r in report.itertuples()
    )
    raise TilingError(
        f"no tile left {when}: {len(tiles)} candidate tiles ({counts}), and the tile filters "
        f"removed them all ({removed}); loosen or remove those filters (tile_filters)"
    )


def check_nodata_rasters(tiles: pd.DataFrame, rasters: list[dict[str, Any]]) -> None:
    """Refuse rasters whose every tile is wholly nodata (column ``nodata_fraction`` of ``tiles``)."""
    full = tiles["nodata_fraction"].to_numpy() >= 1.0
    dead = []
    for k, info in enumerate(rasters):
        mine = tiles["array"].to_numpy() == k
        if mine.any() and full[mine].all():
            dead.append(f"{info['name']} ({info['path']}, {int(mine.sum())} tiles)")
    if dead:
        nodata = {r["name"]: r["nodata"] for r in rasters}
        raise TilingError(
            f"raster(s) with no valid pixel in any tile: {dead}; every pixel there is nodata "
            f"(nodata values {nodata}, or NaN/inf). Check the rasters' nodata value (a wrong one "
            "makes every pixel nodata) or leave those rasters out of the sources"
        )


def check_boxes(
    boxes: pd.DataFrame, sources: Sequence[tuple[str | Path, pd.DataFrame]], names: list[str],
    params: dict[str, Any],
) -> None:  # fmt: skip
    """Refuse a store whose kept tiles hold no box (a detector learns nothing from it)."""
    if len(boxes):
        return
    objects = {n: len(cat) for n, (_, cat) in zip(names, sources, strict=True)}
    if not any(objects.values()):
        raise TilingError(
            f"no object in any catalogue ({objects} rows): a header-only catalogue, or every "
            "object outside its raster (read_catalog warns about those); a store needs objects "
            "to train on"
        )
    raise TilingError(
        f"the store would hold no box: the catalogues hold {sum(objects.values())} objects "
        f"({objects}), but none is at least min_visible={params['min_visible']} inside a kept "
        "tile; lower min_visible, or loosen the tile filters that drop tiles with objects"
    )
