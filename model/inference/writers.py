"""Write prediction catalogues: CSV, and a GIS file in the raster's CRS (format by suffix).

Every writer checks its output first (:func:`tiling.outputs.check_output_file`: never an input,
a folder, a device or a link; an existing file only with ``overwrite``) and writes through
:func:`tiling.atomic.atomic_write` (a temporary name in the destination folder, then
``os.replace``), so an interrupted run never leaves a half-written file under the final name; a
full disk gives an error naming the file.

GIS formats (:data:`GIS_DRIVERS`): GeoPackage holds two layers, ``objects`` (circle polygons)
and ``centres`` (points); GeoJSON, FlatGeobuf and GeoParquet hold one, the circles, with every
column (``map_x``/``map_y`` are the centres) as attributes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tiling.atomic import atomic_write
from tiling.errors import CatalogError, OutputError
from tiling.outputs import check_output_file, disk_full_errors

if TYPE_CHECKING:
    import geopandas as gpd

#: Vertices of the circle polygon drawn for each object.
CIRCLE_VERTICES = 64
#: GIS file suffix -> (OGR driver, or "Parquet" for GeoParquet; what it is called).
GIS_DRIVERS = {
    ".gpkg": ("GPKG", "GeoPackage"),
    ".geojson": ("GeoJSON", "GeoJSON"),
    ".json": ("GeoJSON", "GeoJSON"),
    ".fgb": ("FlatGeobuf", "FlatGeobuf"),
    ".parquet": ("Parquet", "GeoParquet"),
}


def write_csv(frame: pd.DataFrame, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the catalogue ``frame`` as CSV (no index); returns the path.

    Raises:
        OutputError: an unsafe ``path`` (:func:`~tiling.outputs.check_output_file`), an existing
            file without ``overwrite``, or a full disk (naming the file and the bytes needed).
    """
    path = check_output_file(path, overwrite=overwrite)
    data = frame.to_csv(index=False).encode()

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    with disk_full_errors(path, needed=len(data)):
        return atomic_write(path, write)


def gis_driver(path: str | Path, option: str = "output") -> str:
    """The writer's driver for ``path``'s suffix (:data:`GIS_DRIVERS`).

    Raises:
        OutputError: another suffix (the message lists the accepted ones).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in GIS_DRIVERS:
        known = ", ".join(f"{s} ({name})" for s, (_, name) in GIS_DRIVERS.items())
        raise OutputError(
            f"{option} {path}: unknown GIS format {suffix or '(no suffix)'!r}; end the name "
            f"with one of {known}"
        )
    return GIS_DRIVERS[suffix][0]


def write_gis(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    crs_wkt: str | None,
    overwrite: bool = False,
    vertices: int = CIRCLE_VERTICES,
) -> Path:
    """Write the objects as circles (and, in a GeoPackage, centres) in the raster's CRS.

    Args:
        frame: prediction DataFrame (``predict_raster``) with ``map_x``, ``map_y`` and
            ``map_diameter`` in map units; every column is kept as an attribute.
        path: output file; its suffix chooses the format (:data:`GIS_DRIVERS`).
        crs_wkt: the raster's CRS (``RasterSource.crs_wkt``).
        overwrite: replace an existing file.
        vertices: vertices of each circle polygon.

    Raises:
        CatalogError: no CRS, or no map coordinates in ``frame``.
        OutputError: an unknown suffix, an unsafe or existing ``path``, or a full disk.
    """
    import geopandas as gpd
    import shapely

    driver = gis_driver(path)
    path = check_output_file(path, overwrite=overwrite)
    if crs_wkt is None or not {"map_x", "map_y", "map_diameter"} <= set(frame.columns):
        raise CatalogError(
            f"cannot write {path}: a GIS file needs a raster with a map CRS and the columns "
            "map_x, map_y, map_diameter (predict_raster adds them); write CSV only for this raster"
        )
    attrs = frame.reset_index(drop=True)
    x, y = attrs["map_x"].to_numpy(), attrs["map_y"].to_numpy()
    circles = gpd.GeoDataFrame(
        attrs,
        geometry=circle_polygons(x, y, attrs["map_diameter"].to_numpy(), vertices),
        crs=crs_wkt,
    )
    layers = [("objects", circles)]
    if driver == "GPKG":
        layers.append(("centres", circles.set_geometry(shapely.points(x, y), crs=crs_wkt)))
    with disk_full_errors(path):
        return atomic_write(path, lambda tmp: _write_layers(layers, tmp, driver))


def _write_layers(layers: Sequence[tuple[str, gpd.GeoDataFrame]], tmp: Path, driver: str) -> None:
    """Write each ``(name, GeoDataFrame)`` as a layer of ``tmp`` (one layer but in GPKG)."""
    for i, (name, frame) in enumerate(layers):
        if driver == "Parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_file(tmp, layer=name, driver=driver, mode="a" if i else "w")


def write_geopackage(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    crs_wkt: str | None,
    overwrite: bool = False,
    vertices: int = CIRCLE_VERTICES,
) -> Path:
    """:func:`write_gis` into a GeoPackage: layers ``objects`` (circles) and ``centres`` (points).

    Raises:
        OutputError: ``path`` does not end in ``.gpkg`` (or see :func:`write_gis`).
    """
    if Path(path).suffix.lower() != ".gpkg":
        raise OutputError(f"{path}: a GeoPackage's name ends in .gpkg; use write_gis for others")
    return write_gis(frame, path, crs_wkt=crs_wkt, overwrite=overwrite, vertices=vertices)


def circle_polygons(
    x: np.ndarray, y: np.ndarray, diameter: np.ndarray, vertices: int
) -> np.ndarray:
    """Shapely polygons [N] approximating circles of ``diameter`` around ``(x, y)`` (map units)."""
    import shapely

    angle = np.linspace(0.0, 2 * np.pi, vertices, endpoint=False)
    r = np.asarray(diameter, dtype=float)[:, None] / 2
    ring = np.stack([x[:, None] + r * np.cos(angle), y[:, None] + r * np.sin(angle)], axis=-1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    return shapely.polygons(ring)


def write_catalog(
    frame: pd.DataFrame,
    out_dir: str | Path,
    name: str,
    raster: str | Path,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``out_dir/<name>.csv`` and, when ``raster`` has a map CRS, ``out_dir/<name>.gpkg``.

    A FITS raster (sky WCS, no map CRS) gets the CSV only: its ``ra``/``dec`` columns are the
    world coordinates, and GIS formats have no sky reference system.

    Args:
        frame: the prediction (``predict_raster``).
        out_dir, name: where, and the file stem.
        raster: the raster predicted (its CRS; neither file may be it).
        overwrite: replace the files of an earlier run (the notebook passes True for its own
            run folder).

    Returns:
        The paths written.

    Raises:
        OutputError: a file exists without ``overwrite``, or is unsafe to write (both are checked
            before either is written).
    """
    from tiling.sources import open_raster

    out_dir = Path(out_dir)
    with open_raster(raster) as src:
        crs_wkt = src.crs_wkt if src.world == "map" else None
        problem = src.world_problem  # a degenerate geotransform: no GIS file, and say why
    if problem:
        warnings.warn(f"{raster}: {problem}; {name}.gpkg not written (CSV only)", stacklevel=2)
    csv, gpkg = out_dir / f"{name}.csv", out_dir / f"{name}.gpkg"
    for path in [csv, gpkg] if crs_wkt else [csv]:
        check_output_file(path, inputs=[raster], overwrite=overwrite)
    written = [write_csv(frame, csv, overwrite=overwrite)]
    if crs_wkt:
        written.append(write_gis(frame, gpkg, crs_wkt=crs_wkt, overwrite=overwrite))
    return written
