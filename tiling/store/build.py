"""The tile store: tiles of every raster on disk, with their boxes, splits and band statistics.

:func:`build_tile_store` writes ``<out_dir>/<hash>/`` (format in :mod:`tiling.store.format`): one
``tiles_<k>.npy`` per raster (``[N_k, C, T, T]`` in the raster's own dtype), ``tiles.parquet``,
``boxes.parquet`` and ``meta.json``. The hash covers the parameters (tile filters by their repr)
and the inputs (each raster's path, size and modification time, each catalogue's content), so an
unchanged call reuses the store at once and a changed one builds a new one beside it.

A build holds the store's lock (:mod:`tiling.store.lock`: a lock file that works across hosts
sharing ``out_dir``), writes to ``<out_dir>/.tmp-<hash>-<pid>/`` and renames it to ``<hash>`` when
complete, so a store that exists is complete. A second build of the same store, here or on another
host, waits for the first and reuses its store. An interrupted build (exception, Ctrl-C, killed
worker) is removed on the way out, or, if the process itself died, by the next build (temporary
folders whose lock is stale or gone). A store that could not train anything (no tile left, a raster
of nodata only, no box) is refused with the counts (:mod:`tiling.store.checks`), and a folder that
cannot be written or a full disk with the bytes needed (:mod:`tiling.store.space`).

Order of a build, per raster: the tile grid, the splits (tiles straddling split blocks dropped),
the box assignment and the tile filters that need no pixels decide which tiles to read; the
strips are read in parallel (:mod:`tiling.store.reader`) straight into the ``.npy``; then the filters
that need pixels (nodata fraction) run, and removed tiles are compacted out of the ``.npy``.
"""

from __future__ import annotations

import functools
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
    SPLITS,
    block_plan,
    candidate_tiles,
    catalog_labels,
    check_fractions,
    check_test_rasters,
    objects_per_split,
)
from tiling.geometry.tile_size import AUTO, resolve_tile_size
from tiling.sources import open_raster
from tiling.store.checks import check_boxes, check_catalogs, check_nodata_rasters, check_tiles_left
from tiling.store.format import (
    FORMAT_VERSION,
    TILE_COLUMNS,
    TMP_PATTERN,
    tile_array_path,
    write_tables,
)
from tiling.store.lock import BuildLock, lock_path
from tiling.store.npyfile import compact_rows
from tiling.store.ray_reader import read_on_ray
from tiling.store.reader import read_into_arrays
from tiling.store.space import make_folder
from tiling.store.stats import band_stats
from tiling.store.tile_filters import TileFilter, apply_tile_filters
from tiling.store.tilestore import TileStore

log = logging.getLogger(__name__)


def build_tile_store(
    sources: Sequence[tuple[str | Path, pd.DataFrame]],
    out_dir: str | Path,
    *,
    tile_size: int | str = 256,
    overlap: int = 32,
    min_visible: float = 0.5,
    workers: int = 2,
    split: str = "blocks",
    split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
    block_size: int | str | None = "auto",
    test_rasters: Sequence[str] = (),
    tile_filters: Sequence[TileFilter] = (),
    seed: int = 0,
    ray_address: str | None = None,
) -> TileStore:
    """Tile rasters and their catalogues into a store, or reuse the identical store.

    Args:
        sources: ``(raster path, catalogue)`` pairs; the catalogue has columns ``x``, ``y``,
            ``diameter`` (pixels of that raster) and ``label``; a raster's name is its file stem.
        out_dir: parent folder of the stores.
        tile_size: tile side ``T`` in pixels, or ``"auto"``: 128 for fewer than 2,000 objects of
            which nine in ten are at most 64 px across, or when a raster is smaller than 256 px,
            else 256 (:func:`tiling.geometry.tile_size.auto_tile_size`, all catalogues); the
            store's ``tile_size`` is the number. ``overlap``: pixels shared by neighbouring tiles.
        min_visible: keep an object in a tile when at least this fraction of its box is inside.
        workers: reader processes (0 reads in this process); not part of the hash.
        split: ``"blocks"`` (spatial blocks per raster) or ``"raster"`` (whole rasters).
        split_fractions: ``(train, val, test)`` fractions of blocks or rasters.
        block_size: block side for ``split="blocks"``: ``"auto"`` (or None) adapts it to each
            raster (rule in :mod:`tiling.geometry.blocks`); a number of pixels is rounded to the
            nearest whole number of tile strides (``tile_size - overlap``).
        test_rasters: raster names that go wholly to ``"test"``.
        tile_filters: :mod:`tiling.store.tile_filters` filters, applied in order (pixel filters last).
        seed: seeds the splits, the empty-tile draw and the statistics sample.
        ray_address: a Ray cluster (``"auto"``, ``"host:6379"``) on which each raster is read
            by one Ray task with ``workers`` processes of its own
            (:mod:`tiling.store.ray_reader`; rasters and ``out_dir`` on a shared filesystem);
            None reads here. Not part of the hash: the store is the same either way.

    Returns:
        The opened :class:`TileStore`.

    Raises:
        ConfigError: bad split parameters, or a requested split that gets no tile (raised
            before any pixel is read); TilingError: tiling parameters or a dead worker;
        CatalogError: a catalogue lacks ``x``/``y``/``diameter``; RasterError: unreadable raster.
    """
    if isinstance(tile_size, str):  # "auto", from the catalogues and the rasters' headers
        side = shortest_side(sources) if tile_size == AUTO else None
        tile_size = resolve_tile_size(tile_size, [c for _, c in sources], side)
        log.info("tile_size auto: %d px", tile_size)
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
    make_folder(out_dir)
    lock = BuildLock(out_dir, key)
    try:
        if not lock.acquire(ready=lambda: (final / "meta.json").is_file()):
            log.info("reusing tile store %s, built meanwhile by another process", final)
            return TileStore(final)
        remove_stale_builds(out_dir, key)
        _build_and_publish(out_dir / f".tmp-{key}-{os.getpid()}", final, sources, params,
                           tile_filters, workers, ray_address)  # fmt: skip
    finally:
        lock.release()
    log.info("built tile store %s", final)
    return TileStore(final)


def shortest_side(sources: Sequence[tuple[str | Path, pd.DataFrame]]) -> int | None:
    """The shortest side in pixels of the sources' rasters (headers only), None without any."""
    infos = [raster_info(path) for path, _ in sources]
    return min((min(i["height"], i["width"]) for i in infos), default=None)


def _build_and_publish(
    tmp: Path,
    final: Path,
    sources: Sequence[tuple[str | Path, pd.DataFrame]],
    params: dict[str, Any],
    tile_filters: Sequence[TileFilter],
    workers: int,
    ray_address: str | None = None,
) -> None:
    """Build into ``tmp`` and rename it to ``final``; ``tmp`` never outlives a failure."""
    shutil.rmtree(tmp, ignore_errors=True)
    make_folder(tmp)
    try:
        build_into(tmp, sources, params, tile_filters, workers, ray_address)
        try:
            tmp.rename(final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp)  # published by a build that lost its lock: the same content
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def store_params(
    tile_size: int,
    overlap: int,
    min_visible: float,
    split: str,
    split_fractions: Sequence[float],
    block_size: int | str | None,
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
    block_size = check_block_size(block_size, tile_size)
    return {
        "format": FORMAT_VERSION,
        "tile_size": int(tile_size),
        "overlap": int(overlap),
        "min_visible": float(min_visible),
        "split": split,
        "split_fractions": list(check_fractions(split_fractions)),
        "block_size": block_size if split == "blocks" else None,
        "test_rasters": sorted(test_rasters),
        "tile_filters": [repr(f) for f in tile_filters],
        "seed": int(seed),
    }


def check_block_size(block_size: int | str | None, tile_size: int) -> int | str:
    """``"auto"`` (for ``"auto"`` or None) or a whole number of pixels >= ``tile_size``.

    Raises:
        ConfigError: naming the value and the fix.
    """
    if block_size is None or block_size == "auto":
        return "auto"
    if isinstance(block_size, bool) or not isinstance(block_size, int | float):
        raise ConfigError(
            f"block_size={block_size!r} must be 'auto' or a number of pixels (e.g. 1024)"
        )
    if block_size < tile_size:
        raise ConfigError(
            f"block_size={block_size} is smaller than tile_size={tile_size}: every tile would "
            "straddle blocks; use block_size >= tile_size, or 'auto'"
        )
    return int(block_size)


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


def remove_stale_builds(out_dir: Path, key: str) -> None:
    """Remove temporary build folders whose owner is gone (see :mod:`tiling.store.lock`).

    Those of ``key`` (whose lock this build holds), and those of any key without a lock file.
    """
    for entry in out_dir.iterdir():
        match = TMP_PATTERN.match(entry.name)
        if not (match and entry.is_dir()):
            continue
        if match.group(1) == key or not lock_path(out_dir, match.group(1)).exists():
            log.info("removing unfinished tile store build %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


def build_into(
    folder: Path,
    sources: Sequence[tuple[str | Path, pd.DataFrame]],
    params: dict[str, Any],
    filters: Sequence[TileFilter],
    workers: int,
    ray_address: str | None = None,
) -> None:
    """Write a complete store into ``folder`` (:func:`tiling.store.format.write_tables`)."""
    rasters = [raster_info(path) for path, _ in sources]
    check_rasters(rasters, params)
    record_blocks(rasters, params)
    names = [r["name"] for r in rasters]
    check_catalogs(sources, names)
    labels = sorted({label for _, cat in sources for label in catalog_labels(cat)})
    tiles, boxes = candidate_tiles(sources, rasters, params, labels)
    tiles, report = _select_tiles(
        folder, tiles, boxes, rasters, params, filters, workers, ray_address
    )
    tiles, boxes = _final_ids(tiles, boxes)
    check_boxes(boxes, sources, names, params)
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
        "band_stats": band_stats(arrays, nodata, seed=params["seed"]),
        "filter_report": report.to_dict("records"),
    }
    write_tables(folder, tiles, boxes, meta)


def _select_tiles(
    folder: Path,
    tiles: pd.DataFrame,
    boxes: pd.DataFrame,
    rasters: list[dict[str, Any]],
    params: dict[str, Any],
    filters: Sequence[TileFilter],
    workers: int,
    ray_address: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Filter, read and filter again: the kept tiles (pixels in ``folder``) and the report."""
    seed, names = params["seed"], [r["name"] for r in rasters]
    pre, post = [f for f in filters if not f.needs_pixels], [f for f in filters if f.needs_pixels]
    keep, report = apply_tile_filters(tiles, boxes, pre, seed)
    check_tiles_left(tiles, keep, report, names, "before reading the rasters")
    tiles = _number_rows(tiles[keep])
    check_split_counts(tiles, boxes, rasters, params)
    tiles["nodata_fraction"] = read_into_arrays(
        folder, tiles, rasters, params["tile_size"], params["overlap"], workers,
        read=None if ray_address is None else functools.partial(read_on_ray, address=ray_address),
    )  # fmt: skip
    check_nodata_rasters(tiles, rasters)
    keep, report_post = apply_tile_filters(tiles, boxes, post, seed)
    report = pd.concat([report, report_post], ignore_index=True)
    check_tiles_left(tiles, keep, report, names, "after the filters that need pixels")
    if not keep.all():
        for k in range(len(rasters)):
            compact_rows(tile_array_path(folder, k), keep[tiles["array"].to_numpy() == k])
        tiles = _number_rows(tiles[keep])
    return tiles, report


def requested_splits(rasters: list[dict[str, Any]], params: dict[str, Any]) -> list[str]:
    """The splits that must get tiles: positive fractions of free rasters, test for test rasters."""
    free = [r for r in rasters if r["name"] not in params["test_rasters"]]
    wanted = [s for s, f in zip(SPLITS, params["split_fractions"], strict=True) if free and f > 0]
    return [s for s in SPLITS if s in wanted or (s == "test" and params["test_rasters"])]


def check_split_counts(
    tiles: pd.DataFrame, boxes: pd.DataFrame, rasters: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    """Raise ConfigError (before any pixel is read) when a requested split gets no tile.

    The message gives the tiles and objects per split and the parameters to change.
    """
    counts = tiles["split"].value_counts()
    empty = [s for s in requested_splits(rasters, params) if counts.get(s, 0) == 0]
    if not empty:
        return
    n_obj = objects_per_split(tiles, boxes)
    shown = ", ".join(f"{s} {counts.get(s, 0)} tiles/{n_obj[s]} objects" for s in SPLITS)
    sizes = ", ".join(f"{r['name']} {r['height']}x{r['width']} px" for r in rasters)
    fix = (
        "use split='blocks'"
        if params["split"] == "raster"
        else f"use a smaller block_size (now {params['block_size']!r})"
    )
    raise ConfigError(
        f"split_fractions={params['split_fractions']} give no tile to {empty} ({shown}; rasters "
        f"{sizes}, tile_size={params['tile_size']}): {fix}, a smaller tile_size, more rasters, "
        "or set the fraction of that split to 0"
    )


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
    """Unique names, rasters at least one tile large, one band count, known ``test_rasters``."""
    names = [r["name"] for r in rasters]
    if not rasters or len(set(names)) != len(names):
        raise ConfigError(
            f"sources must name at least one raster, with unique file stems; got {names}"
        )
    size = params["tile_size"]
    small = [f"{r['name']} ({r['height']} x {r['width']} px, {r['path']})"
             for r in rasters if min(r["height"], r["width"]) < size]  # fmt: skip
    if small:
        raise TilingError(
            f"raster(s) smaller than tile_size={size}: {small}; a tile must fit in every "
            "raster: use a smaller tile_size, or leave those rasters out"
        )
    counts = {r["name"]: r["count"] for r in rasters}
    if len(set(counts.values())) > 1:
        raise TilingError(
            f"rasters have different band counts {counts}; one store needs one count of bands "
            "(build one store per band count)"
        )
    check_test_rasters(names, params["test_rasters"])


def record_blocks(rasters: list[dict[str, Any]], params: dict[str, Any]) -> None:
    """Add each raster's block side (``block_strides``, ``block_px``) to its info, and log it."""
    stride = params["tile_size"] - params["overlap"]
    for info in rasters:
        blocked = params["split"] == "blocks" and info["name"] not in params["test_rasters"]
        layout = block_plan(info, params) if blocked else None
        info["block_strides"] = layout.strides if layout else None
        info["block_px"] = layout.strides * stride if layout else None
        if layout:
            log.info(
                "%s: blocks of %d tile strides (%d px), %d x %d blocks",
                info["name"], layout.strides, layout.strides * stride, *layout.shape,
            )  # fmt: skip


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
