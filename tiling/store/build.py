"""The tile store: tiles of every raster on disk, with their boxes, splits and band statistics.

:func:`build_tile_store` writes ``<out_dir>/<hash>/`` (format in :mod:`tiling.store.format`): one
``tiles_<k>.npy`` per raster (``[N_k, C, T, T]`` in the raster's own dtype), ``tiles.parquet``,
``boxes.parquet`` and ``meta.json``. The hash covers the parameters (tile filters by their repr)
and the inputs (each raster's path, size and modification time, each catalogue's content), so an
unchanged call reuses the store at once and a changed one builds a new one beside it.

A build goes to ``<out_dir>/.tmp-<hash>-<pid>/`` and is renamed to ``<hash>`` when complete, so a
store that exists is complete: an interrupted build (exception, Ctrl-C, killed worker) is removed
on the way out, or, if the process itself died, by the next build in ``out_dir`` (temporary folders
whose process is gone).

Order of a build, per raster: the tile grid, the splits (tiles straddling split blocks dropped),
the box assignment and the tile filters that need no pixels decide which tiles to read; the
strips are read in parallel (:mod:`tiling.store.reader`) straight into the ``.npy``; then the filters
that need pixels (nodata fraction) run, and removed tiles are compacted out of the ``.npy``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tiling.errors import ConfigError, TilingError
from tiling.geometry.grid import check_tiling
from tiling.geometry.splits import (
    SPLIT_MODES,
    candidate_tiles,
    catalog_labels,
    check_fractions,
    check_test_rasters,
)
from tiling.sources import open_raster
from tiling.store.format import (
    FORMAT_VERSION,
    TILE_COLUMNS,
    TMP_PATTERN,
    tile_array_path,
    write_tables,
)
from tiling.store.npyfile import compact_rows
from tiling.store.reader import read_into_arrays
from tiling.store.stats import band_stats
from tiling.store.tile_filters import TileFilter, apply_tile_filters
from tiling.store.tilestore import TileStore

log = logging.getLogger(__name__)


def build_tile_store(
    sources: Sequence[tuple[str | Path, pd.DataFrame]],
    out_dir: str | Path,
    *,
    tile_size: int = 256,
    overlap: int = 32,
    min_visible: float = 0.5,
    workers: int = 2,
    split: str = "blocks",
    split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
    block_size: int | None = None,
    test_rasters: Sequence[str] = (),
    tile_filters: Sequence[TileFilter] = (),
    seed: int = 0,
) -> TileStore:
    """Tile rasters and their catalogues into a store, or reuse the identical store.

    Args:
        sources: ``(raster path, catalogue)`` pairs; the catalogue has columns ``x``, ``y``,
            ``diameter`` (pixels of that raster) and ``label``; a raster's name is its file stem.
        out_dir: parent folder of the stores.
        tile_size: tile side ``T`` in pixels; ``overlap``: pixels shared by neighbouring tiles.
        min_visible: keep an object in a tile when at least this fraction of its box is inside.
        workers: reader processes (0 reads in this process); not part of the hash.
        split: ``"blocks"`` (spatial blocks per raster) or ``"raster"`` (whole rasters).
        split_fractions: ``(train, val, test)`` fractions of blocks or rasters.
        block_size: block side in pixels for ``split="blocks"`` (default ``4 * tile_size``).
        test_rasters: raster names that go wholly to ``"test"``.
        tile_filters: :mod:`tiling.store.tile_filters` filters, applied in order (pixel filters last).
        seed: seeds the splits, the empty-tile draw and the statistics sample.

    Returns:
        The opened :class:`TileStore`.

    Raises:
        ConfigError: bad split parameters; TilingError: tiling parameters or a dead worker;
        CatalogError: a catalogue lacks ``x``/``y``/``diameter``; RasterError: unreadable raster.
    """
    params = store_params(
        tile_size, overlap, min_visible, split, split_fractions, block_size, test_rasters,
        tile_filters, seed,
    )  # fmt: skip
    key = store_key(params, sources)
    out_dir = Path(out_dir)
    final = out_dir / key
    if (final / "meta.json").is_file():
        log.info("reusing tile store %s (same parameters and inputs)", final)
        return TileStore(final)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(out_dir)
    tmp = out_dir / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        build_into(tmp, sources, params, tile_filters, workers)
        if final.exists():  # another process finished the same store first
            shutil.rmtree(tmp)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("built tile store %s", final)
    return TileStore(final)


def store_params(
    tile_size: int,
    overlap: int,
    min_visible: float,
    split: str,
    split_fractions: Sequence[float],
    block_size: int | None,
    test_rasters: Sequence[str],
    tile_filters: Sequence[TileFilter],
    seed: int,
) -> dict[str, Any]:
    """Validated parameters as a JSON-able dict (``meta["params"]``, hashed into the key)."""
    check_tiling(tile_size, overlap)
    if not 0.0 <= min_visible <= 1.0:
        raise TilingError(f"min_visible={min_visible} must be in [0, 1]")
    if split not in SPLIT_MODES:
        raise ConfigError(f"split={split!r} must be one of {SPLIT_MODES}")
    if block_size is not None and block_size < tile_size:
        raise ConfigError(
            f"block_size={block_size} is smaller than tile_size={tile_size}: every tile would "
            "straddle blocks; use block_size >= tile_size (default 4 * tile_size)"
        )
    return {
        "format": FORMAT_VERSION,
        "tile_size": int(tile_size),
        "overlap": int(overlap),
        "min_visible": float(min_visible),
        "split": split,
        "split_fractions": list(check_fractions(split_fractions)),
        "block_size": (block_size or 4 * tile_size) if split == "blocks" else None,
        "test_rasters": sorted(test_rasters),
        "tile_filters": [repr(f) for f in tile_filters],
        "seed": int(seed),
    }


def source_identity(path: str | Path, catalog: pd.DataFrame) -> dict[str, Any]:
    """What identifies one input: raster path, size and mtime; the catalogue's content hash."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except FileNotFoundError as err:
        raise TilingError(f"{path}: raster file does not exist; check the sources") from err
    content = pd.util.hash_pandas_object(catalog, index=True).to_numpy().tobytes()
    return {
        "path": str(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "catalog": hashlib.sha1(content).hexdigest(),
        "columns": [str(c) for c in catalog.columns],
    }


def store_key(params: dict[str, Any], sources: Sequence[tuple[str | Path, pd.DataFrame]]) -> str:
    """16 hex digits of SHA-1 over the parameters and the inputs' identities."""
    inputs = [source_identity(path, catalog) for path, catalog in sources]
    text = json.dumps({"params": params, "inputs": inputs}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _alive(pid: int) -> bool:
    """True if a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_builds(out_dir: Path) -> None:
    """Remove ``.tmp-<hash>-<pid>`` folders left by builds whose process is gone."""
    for entry in out_dir.iterdir():
        match = TMP_PATTERN.match(entry.name)
        if match and entry.is_dir() and not _alive(int(match.group(2))):
            log.info("removing unfinished tile store build %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


def build_into(
    folder: Path,
    sources: Sequence[tuple[str | Path, pd.DataFrame]],
    params: dict[str, Any],
    filters: Sequence[TileFilter],
    workers: int,
) -> None:
    """Write a complete store into ``folder`` (:func:`tiling.store.format.write_tables`)."""
    rasters = [raster_info(path) for path, _ in sources]
    check_rasters(rasters, params)
    labels = sorted({label for _, cat in sources for label in catalog_labels(cat)})
    tiles, boxes = candidate_tiles(sources, rasters, params, labels)
    seed = params["seed"]
    pre, post = [f for f in filters if not f.needs_pixels], [f for f in filters if f.needs_pixels]
    keep, report = apply_tile_filters(tiles, boxes, pre, seed)
    tiles = _number_rows(tiles[keep])
    tiles["nodata_fraction"] = read_into_arrays(
        folder, tiles, rasters, params["tile_size"], params["overlap"], workers
    )
    keep, report_post = apply_tile_filters(tiles, boxes, post, seed)
    if not keep.all():
        for k in range(len(rasters)):
            compact_rows(tile_array_path(folder, k), keep[tiles["array"].to_numpy() == k])
        tiles = _number_rows(tiles[keep])
    tiles, boxes = _final_ids(tiles, boxes)
    arrays = [tile_array_path(folder, k) for k in range(len(rasters))]
    nodata = [r["nodata"] for r in rasters]
    meta = {
        "params": params,
        "labels": labels,
        "tile_size": params["tile_size"],
        "overlap": params["overlap"],
        "in_channels": rasters[0]["count"],
        "dtype": str(np.result_type(*[np.dtype(r["dtype"]) for r in rasters])),
        "rasters": rasters,
        "band_stats": band_stats(arrays, nodata, seed=seed),
        "filter_report": pd.concat([report, report_post]).to_dict("records"),
    }
    write_tables(folder, tiles, boxes, meta)


def raster_info(path: str | Path) -> dict[str, Any]:
    """A raster's description for ``meta["rasters"]`` (opens it for its header only)."""
    with open_raster(path) as src:
        return {
            "name": Path(path).stem,
            "path": str(Path(path).resolve()),
            "height": src.height,
            "width": src.width,
            "count": src.count,
            "dtype": src.dtype.name,
            "nodata": src.nodata,
            "crs_wkt": src.crs_wkt,
        }


def check_rasters(rasters: list[dict[str, Any]], params: dict[str, Any]) -> None:
    """Unique names, one band count, and ``test_rasters`` among the names."""
    names = [r["name"] for r in rasters]
    if not rasters or len(set(names)) != len(names):
        raise ConfigError(
            f"sources must name at least one raster, with unique file stems; got {names}"
        )
    counts = {r["name"]: r["count"] for r in rasters}
    if len(set(counts.values())) > 1:
        raise TilingError(
            f"rasters have different band counts {counts}; one store needs one count of bands "
            "(build one store per band count)"
        )
    check_test_rasters(names, params["test_rasters"])


def _number_rows(tiles: pd.DataFrame) -> pd.DataFrame:
    """Set ``index`` (row in ``tiles_<k>.npy``) to the order of the tiles within each array."""
    tiles = tiles.reset_index(drop=True)
    tiles["index"] = tiles.groupby("array").cumcount().astype(np.int64)
    return tiles


def _final_ids(tiles: pd.DataFrame, boxes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Renumber kept tiles ``0..n-1`` and keep (and renumber) only their boxes."""
    new = pd.Series(np.arange(len(tiles), dtype=np.int64), index=tiles["tile_id"].to_numpy())
    boxes = boxes[boxes["tile_id"].isin(new.index)].reset_index(drop=True)
    boxes["tile_id"] = new.reindex(boxes["tile_id"]).to_numpy()
    tiles = tiles.assign(tile_id=new.to_numpy())
    return tiles[TILE_COLUMNS], boxes
