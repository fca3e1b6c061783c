"""Catalogues: read a CSV and convert its positions/diameters to pixels of its raster.

Pixel convention: origin at the top-left corner of the top-left pixel, first pixel centre at 0.5.
``one_based=True`` is for SExtractor-style catalogues (first pixel centre = 1.0): x = X_IMAGE - 0.5.
Row numbers in errors count the header as line 1, so the first data row is row 2.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from tiling.catalog.convert import corner_boxes, object_boxes
from tiling.catalog.table import read_table, typed_columns
from tiling.errors import CatalogError
from tiling.sources import RasterSource, open_raster
from tiling.store.format import BOX_COLUMNS

_BOX = tuple(BOX_COLUMNS)  # a catalogue of boxes names them as the tile store does


def _numeric(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        row, value = int(bad[0]) + 2, df[col].iloc[bad[0]]
        shown = repr(value) if isinstance(value, str) else str(value)
        raise CatalogError(
            f"{path}: row {row}, column {col!r}: value {shown} is not a finite number "
            "(row 1 is the header)"
        )
    return values


def _columns(df: pd.DataFrame, columns: dict[str, str] | None, path: Path) -> dict[str, str]:
    mapping = {k: k for k in ("x", "y", "diameter", "label") if k in df.columns}
    if set(_BOX) <= set(df.columns) and not {"x", "y"} <= set(df.columns):
        mapping = {k: k for k in (*_BOX, "label") if k in df.columns}
    if columns:  # a partial map keeps the default names for the keys it leaves out
        keys = (*_BOX, "label") if set(_BOX) & set(columns) else ("x", "y", "diameter", "label")
        mapping = {k: k for k in keys if k in df.columns} | dict(columns)
    need = _BOX if "xmin" in mapping else ("x", "y", "diameter")
    missing = [k for k in need if mapping.get(k) not in df.columns]
    if missing:
        raise CatalogError(
            f"{path}: missing column(s) {[mapping.get(k, k) for k in missing]}; the file has "
            f"{list(df.columns)}; map yours with columns={{'x': ..., 'y': ..., 'diameter': ...}}"
        )
    return mapping


def _check_world(raster: RasterSource, coords: str, unit: str, one_based: bool, path: Path) -> None:
    """Refuse combinations that would convert silently wrong (sky units on a map, and back)."""
    sky = raster.world == "sky"
    if one_based and coords != "pixel":
        raise CatalogError(f"{path}: one_based=True applies to coords='pixel' only, not {coords!r}")
    if coords == "sky" and not sky:
        raise CatalogError(
            f"{path}: coords='sky' needs a raster with a celestial WCS (FITS); {raster.path} has "
            "none. Use coords='map' or 'lonlat' for map rasters."
        )
    if sky and coords in ("map", "lonlat"):
        raise CatalogError(f"{path}: {raster.path} has a sky WCS; use coords='sky' (RA/Dec)")
    if unit in ("deg", "arcmin", "arcsec") and not sky:
        raise CatalogError(
            f"{path}: diameter_unit={unit!r} is an angle, but {raster.path} has no celestial WCS; "
            "use px, m, km or map."
        )


def _sky(df: pd.DataFrame, cx: str, cy: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec strings (degrees, or sexagesimal ``hh:mm:ss``/``hh mm ss`` RA) to degrees."""
    from astropy import units as u
    from astropy.coordinates import Latitude, Longitude, SkyCoord

    for col in (cx, cy):
        na = np.flatnonzero(df[col].isna().to_numpy())
        if na.size:
            raise CatalogError(
                f"{path}: row {na[0] + 2}, column {col!r}: empty value (row 1 is the header)"
            )
    ra = [str(v).strip() for v in df[cx]]
    dec = [str(v).strip() for v in df[cy]]
    unit = (u.hourangle, u.deg) if ":" in ra[0] or " " in ra[0] else (u.deg, u.deg)
    try:
        c = SkyCoord(ra, dec, unit=unit)
    except ValueError as err:
        for i, (r, d) in enumerate(zip(ra, dec, strict=True)):
            for col, v, kind, un in ((cx, r, Longitude, unit[0]), (cy, d, Latitude, unit[1])):
                try:
                    kind(v, unit=un)
                except ValueError as bad:
                    raise CatalogError(
                        f"{path}: row {i + 2}, column {col!r}: value {v!r} is not a valid "
                        f"{'RA' if col == cx else 'Dec'} in {un} ({bad}; row 1 is the header)"
                    ) from err
        raise CatalogError(f"{path}: columns {cx!r}, {cy!r}: not sky coordinates ({err})") from err
    return c.ra.deg, c.dec.deg


def read_catalog(
    csv_path: str | Path,
    raster_path: str | Path,
    *,
    columns: dict[str, str] | None = None,
    coords: str = "pixel",
    diameter_unit: str = "px",
    label: str | None = None,
    one_based: bool = False,
) -> pd.DataFrame:
    """Read a catalogue CSV into float ``x``, ``y``, ``diameter`` (pixels) and str ``label``.

    Args:
        csv_path: the CSV. raster_path: its raster (opened with ``open_raster``).
        columns: map of x/y/diameter/label (or xmin/ymin/xmax/ymax boxes) to the CSV's names.
        coords: "pixel", "map" (raster CRS), "lonlat" (east degrees, 0-360 or -180-180, on the
            CRS's own geodetic CRS) or "sky" (RA/Dec degrees or sexagesimal strings); boxes'
            corners are in these coordinates too.
        diameter_unit: "px", "m", "km" (on the ellipsoid of any CRS, any body), "map", or for sky
            rasters "deg", "arcmin", "arcsec"; boxes have none.
        label: constant label when the CSV has none (default "object").
        one_based: pixel coords with first pixel centre at 1.0 (SExtractor): subtract 0.5.

    Returns:
        DataFrame[N] with float64 ``x``, ``y`` (centre), ``width``, ``height`` (the box of the
        object's footprint, :mod:`tiling.catalog.convert`), ``diameter`` (their mean), all in
        pixels, and str ``label``; objects whose centre is outside the raster are dropped.
    """
    path = Path(csv_path)
    df = read_table(path)  # text as written, its shape checked (tiling.catalog.table)
    m = _columns(df, columns, path)
    df = typed_columns(df, m, path, sky=coords == "sky")
    with open_raster(raster_path) as raster:
        _check_world(raster, coords, diameter_unit, one_based, path)
        x, y, width, height = _pixel_boxes(df, m, raster, coords, diameter_unit, path)
        h, w = raster.height, raster.width
    if one_based:  # checked against coords before any conversion
        x, y = x - 0.5, y - 0.5
    labels = (
        df[m["label"]].astype(str) if "label" in m else pd.Series([label or "object"] * len(df))
    )
    out = pd.DataFrame(
        {"x": x, "y": y, "diameter": (width + height) / 2, "width": width, "height": height,
         "label": labels.values}
    )  # fmt: skip
    inside = (out.x >= 0) & (out.x < w) & (out.y >= 0) & (out.y < h)
    if not inside.all():
        warnings.warn(f"{path}: dropped {(~inside).sum()} objects outside the raster", stacklevel=2)
    return out[inside].reset_index(drop=True)


def _pixel_boxes(
    df: pd.DataFrame,
    m: dict[str, str],
    raster: RasterSource,
    coords: str,
    unit: str,
    path: Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, width, height)`` in pixels of every row (:mod:`tiling.catalog.convert`)."""
    if "xmin" in m:
        x0, y0, x1, y1 = (_numeric(df, m[k], path) for k in _BOX)
        _check_positive(((x1 - x0) + (y1 - y0)) / 2, "/".join(m[k] for k in _BOX), path)
        return corner_boxes(raster, x0, y0, x1, y1, coords, path)
    if coords == "sky" and not all(pd.api.types.is_numeric_dtype(df[m[k]]) for k in ("x", "y")):
        a, b = _sky(df, m["x"], m["y"], path)
    else:
        a, b = _numeric(df, m["x"], path), _numeric(df, m["y"], path)
    d = _numeric(df, m["diameter"], path)
    _check_positive(d, m["diameter"], path)
    return object_boxes(raster, a, b, d, coords, unit, path)


def _check_positive(d: np.ndarray, col: str, path: Path) -> None:
    """Raise CatalogError naming the first row whose diameter is not positive."""
    bad = np.flatnonzero(d <= 0)
    if bad.size:
        raise CatalogError(
            f"{path}: row {bad[0] + 2}, column {col!r}: diameter {d[bad[0]]} is not positive"
        )


def summarize_catalogs(catalogs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Count and diameter min/median/max (px) per raster and label."""
    frames = [df.assign(raster=name) for name, df in catalogs.items()]
    g = pd.concat(frames).groupby(["raster", "label"])["diameter"]
    return g.agg(count="count", d_min="min", d_median="median", d_max="max").reset_index()
