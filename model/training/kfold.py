"""Trials compared on k spatial folds of the training blocks (``select="kfold"``).

With a few hundred objects, a validation split of a few blocks holds a handful of them, and the
trial that scores best on it is often the luckiest, not the best. With ``select="kfold"`` every
trial of the grid is trained ``k`` times, each time validated on another fold of the store's
train and val tiles, and the trials are compared on the mean of their ``k`` validation mAP@50;
the best one is then trained once more on the store's own split (train blocks, validated on its
val blocks, which give its checkpoint and score thresholds), and tested as usual.

**Folds follow the blocks.** The store's train and val tiles are grouped by the spatial block
they lie in (the blocks of the store's split, ``block_strides`` in ``meta.json``; a store without
blocks gets blocks of 3 tile strides). Groups are dealt to folds heaviest first, each to the fold
of least weight so far, a group's weight being the mean of its share of the tiles and of the
objects (ties in a seeded order), so folds hold about the same number of tiles and objects. In
fold ``i`` the tiles of fold ``i``'s groups are validation; the others train, except those that
share pixels with a validation tile (tiles overlap by ``overlap`` px), which are left out of
that fold so that no validation pixel is trained on. Test tiles stay test tiles.

**A fold is a store.** :class:`FoldStore` is the store seen with fold ``i``'s splits, opened from
a folder that holds only ``fold.json`` (the store's path, ``i``, ``k``, the seed): it reopens
by path like any store (data loader workers, Ray trials), its trials have ids of their own (the
folder's name is part of them), and an interrupted search resumes fold by fold.

Layout under ``output_dir``::

    kfold/<store>-k<k>-s<seed>-f<i>/fold.json   fold i's store (a view of the tile store)
    kfold/<store>-k<k>-s<seed>-f<i>/run/        run_grid of fold i (trials/, grid_results.csv...)
    kfold_results.csv                       one row per trial: the k values, mean, min, max
    trials/<id>/, best.ckpt, grid_results.csv   the best trial on the store's own split

The returned table has one row per combination of the grid, like ``run_grid``'s, with
``val/map_50`` the mean over the folds (what ranks them), ``val/map_50_lo``/``_hi`` the lowest
and highest fold, ``fold_map_50`` the k values and ``folds_done``; the best row also holds its
final trial's columns (``trial``, ``checkpoint``, ``test/*``, thresholds, ``final/val/map_50``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.training.trainer import MONITOR
from tiling.atomic import write_text_atomic
from tiling.errors import ConfigError
from tiling.geometry.blocks import axis_block_starts
from tiling.geometry.grid import axis_offsets
from tiling.store import TileStore
from tiling.store.interface import TileStoreLike

log = logging.getLogger(__name__)

FOLD_FILE = "fold.json"
#: Block side, in tile strides, for stores whose split has no blocks (``split="raster"``...).
DEFAULT_BLOCK_STRIDES = 3
#: The split of a tile left out of a fold (it shares pixels with the fold's validation tiles).
LEFT_OUT = "left_out"
RunGrid = Callable[..., pd.DataFrame]  # model.training.grid.run_grid


def block_groups(tiles: pd.DataFrame, meta: Mapping[str, Any]) -> np.ndarray:
    """``int64[n]``: a spatial block number per tile (unique over rasters).

    Blocks are those of the store's split (:mod:`tiling.geometry.blocks`: ``block_strides`` of
    the raster in ``meta``), else :data:`DEFAULT_BLOCK_STRIDES` strides.
    """
    size, overlap = int(meta["tile_size"]), int(meta["overlap"])
    rasters = {r["name"]: r for r in meta["rasters"]}
    groups = np.zeros(len(tiles), np.int64)
    base = 0
    for name, rows in tiles.groupby("raster", sort=True):
        info = rasters[name]
        strides = int(info.get("block_strides") or DEFAULT_BLOCK_STRIDES)
        index = []
        for axis, length in (("row", info["height"]), ("col", info["width"])):
            offsets = axis_offsets(int(length), size, overlap).numpy()
            at = np.searchsorted(offsets, rows[axis].to_numpy())
            starts = axis_block_starts(len(offsets), strides).numpy()
            index.append(np.searchsorted(starts, at, side="right") - 1)
        n_cols = int(index[1].max()) + 1
        groups[tiles.index.get_indexer(rows.index)] = base + index[0] * n_cols + index[1]
        base += (int(index[0].max()) + 1) * n_cols
    return groups


def deal_folds(tiles: pd.DataFrame, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``int64[n]`` fold of each tile (its group's): groups dealt heaviest first to the lightest fold.

    A group weighs the mean of its share of the tiles and of the objects (``n_boxes``).

    Raises:
        ConfigError: fewer groups than folds.
    """
    ids, inverse = np.unique(groups, return_inverse=True)
    if len(ids) < k:
        raise ConfigError(
            f"folds={k} but the store's train and val tiles lie in {len(ids)} spatial blocks: "
            "use fewer folds, or smaller blocks (block_size) or tiles when building the store."
        )
    n_tiles = np.bincount(inverse, minlength=len(ids)).astype(float)
    n_objects = np.bincount(inverse, weights=tiles["n_boxes"].to_numpy(float), minlength=len(ids))
    weight = n_tiles / n_tiles.sum() + n_objects / max(n_objects.sum(), 1.0)
    shuffled = np.random.default_rng(seed).permutation(len(ids))
    order = shuffled[np.argsort(-weight[shuffled], kind="stable")]
    fold_of_group, load = np.zeros(len(ids), np.int64), np.zeros(k)
    for g in order:
        fold_of_group[g] = int(np.argmin(load))
        load[fold_of_group[g]] += weight[g]
    return fold_of_group[inverse]


def fold_splits(
    tiles: pd.DataFrame, meta: Mapping[str, Any], fold: int, k: int, seed: int
) -> pd.Series:
    """The ``split`` column of fold ``fold`` of ``k`` (module docstring: the rule)."""
    split = tiles["split"].copy()
    pool = tiles[tiles["split"].isin(["train", "val"])]
    folds = deal_folds(pool, block_groups(pool, meta), k, seed)
    val = pool[folds == fold]
    train = pool[folds != fold]
    split.loc[val.index] = "val"
    split.loc[train.index] = "train"
    size = int(meta["tile_size"])
    for name, mine in val.groupby("raster"):
        others = train[train["raster"] == name]
        d_row = np.abs(others["row"].to_numpy()[:, None] - mine["row"].to_numpy()[None, :])
        d_col = np.abs(others["col"].to_numpy()[:, None] - mine["col"].to_numpy()[None, :])
        touching = ((d_row < size) & (d_col < size)).any(axis=1)
        split.loc[others.index[touching]] = LEFT_OUT
    return split


class FoldStore(TileStore):
    """A tile store seen with the splits of one fold; opened from a folder holding ``fold.json``.

    ``fold.json``: ``{"store": path of the tile store, "fold": i, "folds": k, "seed": s}``.
    Pixels, boxes and statistics are the store's; only ``tiles["split"]`` differs
    (:func:`fold_splits`; tiles left out of the fold have split ``"left_out"``).
    """

    def __init__(self, path: str | Path) -> None:
        spec_file = Path(path) / FOLD_FILE
        if not spec_file.is_file():
            raise ConfigError(f"{spec_file} is missing: {path} is not a fold of a tile store.")
        spec = json.loads(spec_file.read_text())
        super().__init__(spec["store"])
        self.path = Path(path)  # arrays stay at self.source, the tile store's folder
        self.spec = spec
        self.tiles = self.tiles.assign(
            split=fold_splits(self.tiles, self.meta, spec["fold"], spec["folds"], spec["seed"])
        )

    def __repr__(self) -> str:
        counts = self.tiles["split"].value_counts().to_dict()
        return f"FoldStore({str(self.path)!r}, fold {self.spec['fold']}/{self.spec['folds']}, {counts})"


def write_folds(store: TileStoreLike, folder: Path, k: int, seed: int) -> list[FoldStore]:
    """The ``k`` fold stores of ``store`` under ``folder`` (``fold.json`` written when missing).

    Raises:
        ConfigError: ``k`` < 2, or fewer blocks than folds, or a fold without validation or
            training tiles.
    """
    if not (isinstance(k, int) and k >= 2):
        raise ConfigError(f"folds={k!r} must be a whole number >= 2 (select='kfold').")
    stores = []
    for i in range(k):
        path = folder / f"{Path(store.path).name}-k{k}-s{seed}-f{i}"  # one spec per folder
        path.mkdir(parents=True, exist_ok=True)
        spec = {"store": str(Path(store.path).resolve()), "fold": i, "folds": k, "seed": seed}
        if not (path / FOLD_FILE).is_file():
            write_text_atomic(path / FOLD_FILE, json.dumps(spec, indent=2))
        fold = FoldStore(path)
        for split in ("train", "val"):
            if not len(fold.split_ids(split)):
                raise ConfigError(
                    f"fold {i} of {k} has no {split} tiles ({fold!r}): use fewer folds."
                )
        stores.append(fold)
    return stores


def run_kfold(
    run_grid: RunGrid,
    base: Any,
    grid: Mapping[str, Sequence[Any]],
    store: TileStoreLike,
    output_dir: Path,
    folds: int,
    **options: Any,
) -> pd.DataFrame:
    """Score every trial of the grid on ``folds`` spatial folds; train the best on the store.

    Args:
        run_grid: :func:`model.training.grid.run_grid` (handed in: this module does not import
            the grid, which calls it).
        base, grid, store, output_dir: as for ``run_grid``.
        folds: the number of folds ``k`` (>= 2).
        **options: ``run_grid``'s other keywords (``search``, ``num_samples``, ``ray``...).

    Returns:
        One row per trial of the grid (module docstring: the columns).
    """
    seed = int(getattr(base, "seed", 0))
    fold_stores = write_folds(store, output_dir / "kfold", folds, seed)
    tables = [run_grid(base, grid, f, f.path / "run", **options) for f in fold_stores]
    keys = list(grid)
    summary = kfold_summary(tables, keys)
    write_text_atomic(output_dir / "kfold_results.csv", summary.to_csv(index=False))
    complete = summary[summary["folds_done"] == folds]
    if complete.empty:
        log.warning("no trial finished all %d folds; see %s", folds, output_dir / "kfold")
        return summary
    best = complete.loc[complete[MONITOR].astype(float).idxmax()]
    params = {key: [_value(best[key])] for key in keys}
    log.info(
        "kfold: best %s, mean val mAP@50 %.3f; training it on the store", params, best[MONITOR]
    )
    final = run_grid(base, params, store, output_dir, **{**options, "search": "grid"}).iloc[0]
    row = {k: v for k, v in final.items() if k not in keys}
    row["final/val/map_50"] = row.pop(MONITOR, float("nan"))
    for column in (MONITOR, f"{MONITOR}_lo", f"{MONITOR}_hi", "fold_map_50", "folds_done"):
        row[column] = best[column]
    table = summary.copy()
    for column, value in row.items():
        if column not in table:
            table[column] = pd.Series([None] * len(table), dtype=object)
        table.at[best.name, column] = value
    write_text_atomic(output_dir / "grid_results.csv", table.to_csv(index=False))
    return table


def kfold_summary(tables: Sequence[pd.DataFrame], keys: Sequence[str]) -> pd.DataFrame:
    """One row per trial: its parameters, status, the folds' ``val/map_50``, mean, min, max."""
    values = np.stack([t[MONITOR].astype(float).to_numpy() if MONITOR in t else
                       np.full(len(t), np.nan) for t in tables])  # fmt: skip
    done = np.stack([t["status"].eq("done").to_numpy() for t in tables])
    complete = np.where(done, values, np.nan)
    summary = tables[0][list(keys)].copy()
    summary["status"] = np.where(done.all(0), "done", "incomplete")
    summary["folds_done"] = done.sum(0)
    with np.errstate(all="ignore"):
        summary[MONITOR] = np.where(done.all(0), np.nanmean(complete, 0), np.nan)
        summary[f"{MONITOR}_lo"] = np.where(done.all(0), np.nanmin(complete, 0), np.nan)
        summary[f"{MONITOR}_hi"] = np.where(done.all(0), np.nanmax(complete, 0), np.nan)
    summary["fold_map_50"] = [json.dumps([round(float(v), 4) for v in col]) for col in values.T]
    trials = np.stack([t["trial"].astype(str).to_numpy() for t in tables])
    summary["fold_trials"] = [json.dumps(list(col)) for col in trials.T]
    summary["trial_dir"] = tables[0]["trial_dir"].to_numpy()
    return summary


def _value(cell: Any) -> Any:
    """A grid value back from its table cell (lists and dicts are stored as JSON text)."""
    if isinstance(cell, str) and cell[:1] in "[{":
        return json.loads(cell)
    return cell.item() if hasattr(cell, "item") else cell
