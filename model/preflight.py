"""Preflight: what the rasters and catalogues hold, and what would go wrong, before any tile.

:func:`preflight` opens each raster for its header only (no pixel is read), plans the tiles and
splits exactly as the store build will (:func:`tiling.geometry.splits.candidate_tiles`) and
returns a :class:`Preflight`: one row per raster (size, bands, dtype, nodata, CRS or none, pixel
size, objects kept, diameter range in pixels, blocks), the planned tiles and objects per split,
and the checks, each ``ok``, ``warning`` or ``error`` with a message that suggests a value:

- ``tile size``: a raster smaller than ``tile_size`` (error);
- ``objects vs tile``: objects larger than a tile are never whole in one (warning);
- ``objects vs overlap``: objects larger than the overlap are never whole in a prediction
  window, whatever the merge does (warning);
- ``anchors``: diameters the automatic anchors cannot match at IoU 0.5 (error), and elongated
  boxes that square anchors match below IoU 0.5 (warning, suggests ``aspect_ratios``);
- ``splits``: a requested split without tiles (error), or with fewer than
  :data:`MIN_SPLIT_OBJECTS` objects or less than :data:`MIN_SPLIT_SHARE` of them (warning);
- ``test rasters``: names that are not among the rasters (error).

:meth:`Preflight.raise_errors` stops the notebook with every error at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.config import MAX_ANCHOR_FACTOR, pyramid_strides
from model.network.anchors import MIN_STRIDE_RATIO, auto_anchor_sizes
from tiling.errors import ConfigError
from tiling.geometry.splits import (
    SPLITS,
    block_plan,
    candidate_tiles,
    catalog_labels,
    catalog_sizes,
    objects_per_split,
)
from tiling.geometry.tile_size import resolve_tile_size
from tiling.sources import open_raster
from tiling.store.build import check_block_size, requested_splits

log = logging.getLogger(__name__)

#: A validation or test split with fewer objects gives a noisy score (warning).
MIN_SPLIT_OBJECTS = 10
#: ... or with less than this share of the objects.
MIN_SPLIT_SHARE = 0.05
NO_CRS = "none: pixel coordinates; predictions as CSV only (no GIS file)"


@dataclass
class Preflight:
    """The preflight report (:func:`preflight`).

    Attributes:
        table: one row per raster.
        splits: planned tiles and objects per split (before pixel filters such as nodata).
        checks: ``check``, ``level`` (ok, warning, error), ``message``.
        tile_size: the tile side planned, in pixels (``"auto"`` resolved).
    """

    table: pd.DataFrame
    splits: pd.DataFrame
    checks: pd.DataFrame
    tile_size: int

    @property
    def errors(self) -> list[str]:
        """The messages of the failed checks."""
        return self.checks.loc[self.checks["level"] == "error", "message"].tolist()

    def raise_errors(self) -> None:
        """Raise :class:`ConfigError` with every error message (nothing when there is none)."""
        if self.errors:
            lines = "\n".join(f"- {m}" for m in self.errors)
            raise ConfigError(f"preflight found {len(self.errors)} problem(s):\n{lines}")


def preflight(
    rasters: Mapping[str, str | Path],
    catalogs: Mapping[str, pd.DataFrame],
    *,
    tile_size: int | str = 256,
    overlap: int = 32,
    min_visible: float = 0.5,
    split: str = "blocks",
    split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
    block_size: int | str | None = "auto",
    test_rasters: Sequence[str] = (),
    seed: int = 0,
    stride4: bool = False,
) -> Preflight:
    """Describe the data and check the settings before any tile is read.

    Args:
        rasters: name -> raster path; ``catalogs``: name -> the cleaned catalogue (pixels,
            :func:`tiling.catalog.read_catalog` then filters).
        tile_size, overlap, min_visible, split, split_fractions, block_size, test_rasters,
            seed: as given to :func:`tiling.store.build_tile_store` (``tile_size="auto"`` resolved
            as it does, from these catalogues).
        stride4: the model's stride-4 level (smaller anchors).

    Returns:
        The :class:`Preflight` report.
    """
    infos = [raster_row(name, rasters[name], catalogs[name]) for name in catalogs]
    shortest = min((min(i["height"], i["width"]) for i in infos), default=None)
    tile_size = resolve_tile_size(tile_size, catalogs.values(), shortest)
    params = {
        "tile_size": int(tile_size), "overlap": int(overlap), "min_visible": float(min_visible),
        "split": split, "split_fractions": [float(f) for f in split_fractions],
        "block_size": check_block_size(block_size, tile_size), "test_rasters": list(test_rasters),
        "seed": int(seed),
    }  # fmt: skip
    checks = [*size_checks(infos, catalogs, params), *anchor_checks(catalogs, tile_size, stride4)]
    splits = pd.DataFrame(index=pd.Index(SPLITS, name="split"), columns=["tiles", "objects"])
    unknown = sorted(set(test_rasters) - set(catalogs))
    if unknown:
        message = (
            f"test_rasters {unknown} are not among the rasters {sorted(catalogs)}; use names of "
            "these (file stems), or test_rasters=[]"
        )
        checks.append(("test rasters", "error", message))
    elif all(min(i["height"], i["width"]) >= tile_size for i in infos):
        splits, more = split_checks(infos, catalogs, params)
        checks += more
    for info in infos:
        info["blocks"] = block_text(info, params)
        if info["crs"] == NO_CRS:
            log.info("%s has no CRS: %s", info["raster"], NO_CRS)
    table = pd.DataFrame(infos).drop(columns=["name", "height", "width"])
    frame = pd.DataFrame(checks, columns=["check", "level", "message"])
    return Preflight(table, splits, frame, tile_size)


def raster_row(name: str, path: str | Path, catalog: pd.DataFrame) -> dict[str, Any]:
    """One row of the table: the raster's header and its catalogue's sizes."""
    sizes = catalog_sizes(catalog) if len(catalog) else np.zeros((0, 2))
    with open_raster(path) as src:
        row = {
            "raster": name, "name": name, "height": src.height, "width": src.width,
            "size": f"{src.height} x {src.width}", "bands": src.count, "dtype": src.dtype.name,
            "nodata": src.nodata, "crs": crs_text(src), "pixel_size": pixel_text(src),
        }  # fmt: skip
    mean = sizes.mean(axis=1) if len(sizes) else np.zeros(0)
    row["objects"] = len(catalog)
    row["diameter_px"] = f"{mean.min():.3g} - {mean.max():.3g}" if len(mean) else "-"
    row["max_aspect"] = round(float(aspect(sizes).max()), 2) if len(sizes) else float("nan")
    return row


def crs_text(src: Any) -> str:
    """The CRS's name, ``sky WCS``, or :data:`NO_CRS`."""
    if src.world == "sky":
        return "sky WCS (FITS)"
    if src.crs_wkt is None:
        return NO_CRS if src.world is None else "none (geotransform only: map coordinates)"
    from pyproj import CRS

    return str(CRS.from_wkt(src.crs_wkt).name)


def pixel_text(src: Any) -> str:
    """The mean pixel size with its unit, or ``-`` without world coordinates."""
    if src.world is None:
        return "-"
    size = src.pixel_size()
    if src.world == "sky":
        return f"{size * 3600:.4g} arcsec"
    unit = ""
    if src.crs_wkt is not None:
        from pyproj import CRS

        unit = " " + str(CRS.from_wkt(src.crs_wkt).axis_info[0].unit_name)
    return f"{size:.4g}{unit}"


def aspect(sizes: np.ndarray) -> np.ndarray:
    """``max(w, h) / min(w, h)`` of boxes ``[N, 2]``."""
    return sizes.max(axis=1) / np.maximum(sizes.min(axis=1), 1e-12)


def block_text(info: dict[str, Any], params: dict[str, Any]) -> str:
    """The raster's blocks, e.g. ``7 strides (1568 px), 4 x 4``, or why it has none."""
    if info["raster"] in params["test_rasters"]:
        return "none (test raster)"
    if params["split"] != "blocks" or min(info["height"], info["width"]) < params["tile_size"]:
        return "-"
    layout = block_plan(info, params)
    px = layout.strides * (params["tile_size"] - params["overlap"])
    return f"{layout.strides} strides ({px} px), {layout.shape[0]} x {layout.shape[1]}"


def size_checks(
    infos: list[dict[str, Any]], catalogs: Mapping[str, pd.DataFrame], params: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """Rasters smaller than a tile; objects larger than a tile or than the overlap."""
    tile, overlap = params["tile_size"], params["overlap"]
    small = [i for i in infos if min(i["height"], i["width"]) < tile]
    side = min((min(i["height"], i["width"]) for i in infos), default=tile)
    checks = [("tile size", "ok", f"every raster holds a tile of {tile} px")]
    if small:
        names = ", ".join(f"{i['raster']} ({i['size']} px)" for i in small)
        fit = 2 ** int(math.log2(side)) if side >= 1 else 1
        message = f"{names}: smaller than tile_size={tile}; use tile_size={fit} or larger rasters"
        checks = [("tile size", "error", message)]
    sides = [catalog_sizes(c).max(axis=1) for c in catalogs.values() if len(c)]
    longest = np.concatenate(sides) if sides else np.zeros(0)
    checks.append(size_check("objects vs tile", longest, tile, "tile_size", "a tile"))
    window = "a prediction window (objects cut at window edges)"
    checks.append(size_check("objects vs overlap", longest, overlap, "overlap", window))
    return checks


def size_check(
    name: str, longest: np.ndarray, limit: int, parameter: str, what: str
) -> tuple[str, str, str]:
    """Warn when objects' longest sides exceed ``limit``; suggest the parameter or max_diameter."""
    over = longest > limit
    if not over.any():
        return (name, "ok", f"no object is larger than {parameter}={limit} px")
    need = math.ceil(longest.max())
    value = 2 ** math.ceil(math.log2(need)) if parameter == "tile_size" else need
    message = (
        f"{int(over.sum())} of {len(longest)} objects ({over.mean():.1%}) are larger than "
        f"{parameter}={limit} px (largest {longest.max():.0f} px) and never whole in {what}; use "
        f"{parameter}={value} or max_diameter={limit}"
    )
    return (name, "warning", message)


def anchor_checks(
    catalogs: Mapping[str, pd.DataFrame], tile_size: int, stride4: bool
) -> list[tuple[str, str, str]]:
    """Automatic anchors for the diameters; elongated boxes against square anchors."""
    frames = [c for c in catalogs.values() if len(c)]
    if not frames:
        message = (
            "no object is left in any catalogue; check the filters (min_diameter, max_diameter) "
            "and the catalogues' columns and units"
        )
        return [("anchors", "error", message)]
    sizes = np.concatenate([catalog_sizes(c) for c in frames])
    levels = len(pyramid_strides(stride4))
    diameters = sizes.mean(axis=1)
    try:
        anchors = auto_anchor_sizes(
            diameters, n_levels=levels, max_size=MAX_ANCHOR_FACTOR * tile_size
        )
    except ConfigError as err:
        smallest = MIN_STRIDE_RATIO * pyramid_strides(stride4)[0] / math.sqrt(2)
        largest = MAX_ANCHOR_FACTOR * tile_size * math.sqrt(2)
        keep = (
            f"e.g. min_diameter={math.ceil(smallest * 100) / 100:g} or max_diameter={int(largest)}"
        )
        return [("anchors", "error", f"{err} Objects kept by the filters: {keep}.")]
    flat = np.array([a for level in anchors for a in level])
    low = square_anchor_iou(sizes, flat) < 0.5
    span = f"{diameters.min():.3g}-{diameters.max():.3g} px"
    ok = f"automatic anchors {flat[0]:g}-{flat[-1]:g} px match every diameter ({span})"
    if not low.any():
        return [("anchors", "ok", ok)]
    message = (
        f"{int(low.sum())} boxes ({low.mean():.1%}, aspect up to {aspect(sizes).max():.2f}) match "
        "square anchors below IoU 0.5; add anchor shapes, e.g. "
        "grid={'aspect_ratios': [[0.5, 1.0, 2.0]]}"
    )
    return [("anchors", "ok", ok), ("anchors", "warning", message)]


def square_anchor_iou(sizes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Best IoU of each centred box ``[N, 2]`` with a centred square anchor of ``anchors[A]``."""
    w, h = sizes[:, :1], sizes[:, 1:]
    inter = np.minimum(w, anchors) * np.minimum(h, anchors)
    return (inter / (w * h + anchors**2 - inter)).max(axis=1)


def split_checks(
    infos: list[dict[str, Any]], catalogs: Mapping[str, pd.DataFrame], params: dict[str, Any]
) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """Plan the tiles as the build will; tiles and objects per split, and their checks."""
    names = list(catalogs)
    sources = [(None, catalogs[n]) for n in names]
    labels = sorted({label for c in catalogs.values() for label in catalog_labels(c)})
    tiles, boxes = candidate_tiles(sources, infos, params, labels)
    objects = objects_per_split(tiles, boxes)
    table = pd.DataFrame({"tiles": tiles["split"].value_counts(), "objects": objects})
    table = table.reindex(pd.Index(SPLITS, name="split")).fillna(0).astype(np.int64)
    total = sum(len(c) for c in catalogs.values())
    checks = []
    for name in requested_splits(infos, params):
        checks.append(split_check(name, table.loc[name], total, params))
    return table, checks


def split_check(
    name: str, row: pd.Series, total: int, params: dict[str, Any]
) -> tuple[str, str, str]:
    """The check of one requested split from its planned tiles and objects."""
    tiles, objects = int(row["tiles"]), int(row["objects"])
    fix = "use split='blocks'"
    if params["split"] == "blocks":
        now = params["block_size"]
        fix = (
            f"use a smaller block_size (now {now!r}), a smaller tile_size, or other split_fractions"
        )
    text = f"{name}: {tiles} tiles, {objects} of {total} objects ({objects / max(total, 1):.1%})"
    if tiles == 0:
        return ("splits", "error", f"{text}; {fix}")
    if name != "train" and (objects < MIN_SPLIT_OBJECTS or objects < MIN_SPLIT_SHARE * total):
        return ("splits", "warning", f"{text}: a score on so few objects is noise; {fix}")
    return ("splits", "ok", text)
