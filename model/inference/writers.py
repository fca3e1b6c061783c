"""Write prediction catalogues: CSV, and a GeoPackage in the raster's CRS.

Both writers go through :func:`tiling.atomic.atomic_write` (a temporary name in the destination
folder, then ``os.replace``), so an interrupted run never leaves a half-written file under the
final name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tiling.atomic import atomic_write
from tiling.errors import CatalogError

#: Vertices of the circle polygon drawn for each object.
CIRCLE_VERTICES = 64


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write the catalogue ``frame`` as CSV (no index); returns the path."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_geopackage(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    crs_wkt: str | None,
    vertices: int = CIRCLE_VERTICES,
) -> Path:
    """Write layers ``objects`` (circle polygons) and ``centres`` (points) in the raster's CRS.

    Args:
        frame: prediction DataFrame (``predict_raster``) with ``map_x``, ``map_y`` and
            ``map_diameter`` in map units; every column is kept as an attribute.
        path: ``.gpkg`` output file.
        crs_wkt: the raster's CRS (``RasterSource.crs_wkt``).
        vertices: vertices of each circle polygon.

    Raises:
        CatalogError: no CRS, or no map coordinates in ``frame``.
    """
    import geopandas as gpd
    import shapely

    if crs_wkt is None or not {"map_x", "map_y", "map_diameter"} <= set(frame.columns):
        raise CatalogError(
            f"cannot write {path}: a GeoPackage needs a raster with a map CRS and the columns "
            "map_x, map_y, map_diameter (predict_raster adds them); write CSV only for this raster"
        )
    attrs = frame.reset_index(drop=True)
    centres = shapely.points(attrs["map_x"].to_numpy(), attrs["map_y"].to_numpy())
    circles = circle_polygons(
        attrs["map_x"].to_numpy(),
        attrs["map_y"].to_numpy(),
        attrs["map_diameter"].to_numpy(),
        vertices,
    )

    def write(tmp: Path) -> None:
        gpd.GeoDataFrame(attrs, geometry=circles, crs=crs_wkt).to_file(tmp, layer="objects")
        gpd.GeoDataFrame(attrs, geometry=centres, crs=crs_wkt).to_file(
            tmp, layer="centres", mode="a"
        )

    return atomic_write(path, write)


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
    frame: pd.DataFrame, out_dir: str | Path, name: str, raster: str | Path
) -> list[Path]:
    """Write ``out_dir/<name>.csv`` and, when ``raster`` has a map CRS, ``out_dir/<name>.gpkg``.

    A FITS raster (sky WCS, no map CRS) gets the CSV only: its ``ra``/``dec`` columns are the
    world coordinates, and GIS formats have no sky reference system.

    Returns:
        The paths written.
    """
    from tiling.sources import open_raster

    out_dir = Path(out_dir)
    written = [write_csv(frame, out_dir / f"{name}.csv")]
    with open_raster(raster) as src:
        crs_wkt = src.crs_wkt
    if crs_wkt:
        written.append(write_geopackage(frame, out_dir / f"{name}.gpkg", crs_wkt=crs_wkt))
    return written
