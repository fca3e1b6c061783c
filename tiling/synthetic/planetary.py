"""Synthetic planetary crater field: a simple-cylindrical mosaic in degrees with an IAU CRS.

The standard form of planetary data: a global or regional mosaic in a geographic CRS (simple
cylindrical, degrees per pixel, IAU 2015 Moon or Mars) and a crater catalogue in ``lon``,
``lat`` (degrees east, 0-360 as Moon and Mars catalogues give them) and ``diameter_km``.

The surface is the crater field of :mod:`tiling.synthetic.craters` (terrain, shaded craters,
noise, a nodata band on the right), with one difference: each crater is drawn as its true
footprint. A crater of diameter ``D`` at latitude ``phi`` is the geodesic circle of that
diameter on the CRS's ellipsoid, whose box in pixels
(:meth:`tiling.catalog.footprint.LonLatFrame.footprints`, the same computation as
:func:`tiling.catalog.read_catalog` makes) is about ``1 / cos(phi)`` times wider than tall; the
crater is rendered as the ellipse of that box. Diameters are drawn in north-south pixels (the
power law of :func:`~tiling.synthetic.craters.sample_craters`) and converted to kilometres on the
body, so the same ``diameter_range`` gives craters of the same pixel height at every latitude.

CLI: ``python -m tiling.synthetic.planetary --out data/moon [--body mars] [--small]``; it writes
``images/<body>_field.tif`` and ``datasets/<body>_field.csv``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from tiling.catalog.footprint import LonLatFrame
from tiling.errors import ConfigError
from tiling.synthetic.craters import (
    CraterField,
    FieldParams,
    clear_of_nodata,
    write_csv,
    write_raster,
)

logger = logging.getLogger(__name__)

#: body -> (IAU 2015 geographic CRS, planetocentric, sphere)
BODIES = {"moon": "IAU_2015:30100", "mars": "IAU_2015:49900"}
#: Default region: west edge (degrees east, -180..180 so that it crosses the 0 meridian), north
#: edge (degrees), degrees per pixel; the size is given in pixels.
REGION = (-20.0, 52.0, 0.03)


def geotransform(west: float, north: float, degrees: float) -> tuple[float, ...]:
    """The affine geotransform of a north-up simple-cylindrical raster (rasterio's order)."""
    return (degrees, 0.0, west, 0.0, -degrees, north)


def frame_of(crs: str, transform: tuple[float, ...], height: int, width: int) -> LonLatFrame:
    """The lon/lat frame of a raster that is not written yet (its CRS and geotransform)."""
    from affine import Affine

    affine = Affine(*transform)
    inverse = ~affine

    def to_world(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return affine.a * x + affine.b * y + affine.c, affine.d * x + affine.e * y + affine.f

    def to_pixel(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return inverse.a * a + inverse.b * b + inverse.c, inverse.d * a + inverse.e * b + inverse.f

    return LonLatFrame.build(crs, to_pixel, to_world, (width / 2, height / 2), f"CRS {crs}")


def planetary_craters(
    field: CraterField, frame: LonLatFrame, degrees: float
) -> tuple[CraterField, pd.DataFrame]:
    """The field with each crater's footprint box, and its catalogue in lon/lat/km.

    Returns:
        ``(field with width/height columns, catalogue lon, lat, diameter_km, label)``.
    """
    craters = field.craters
    lon, lat = frame.to_lonlat(craters["x"].to_numpy(), craters["y"].to_numpy())
    metres_per_px = math.radians(degrees) * frame.geod.a
    diameter_m = craters["diameter"].to_numpy() * metres_per_px
    _, _, width, height = frame.footprints(lon, lat, diameter_m)
    drawn = craters.assign(width=width, height=height)
    catalogue = pd.DataFrame(
        {"lon": np.mod(lon, 360.0), "lat": lat, "diameter_km": diameter_m / 1000}
    ).assign(label=craters["label"].to_numpy())
    return dataclasses.replace(field, craters=drawn), catalogue


def generate_planetary_field(
    raster_path: str | Path,
    csv_path: str | Path,
    *,
    body: str = "moon",
    height: int = 1536,
    width: int = 1536,
    region: tuple[float, float, float] = REGION,
    seed: int = 0,
    **params: float | tuple[float, float],
) -> pd.DataFrame:
    """Write a crater field in the body's IAU geographic CRS and its lon/lat/km catalogue.

    Args:
        raster_path, csv_path: outputs (written via temporary names).
        body: a key of :data:`BODIES`.
        height, width: raster size in pixels.
        region: ``(west, north, degrees per pixel)`` of the raster.
        seed: random seed (same seed, same bytes).
        **params: :class:`~tiling.synthetic.craters.FieldParams` fields.

    Returns:
        The catalogue written: ``lon`` (0-360 east), ``lat``, ``diameter_km``, ``label`` of the
        craters clear of the nodata band.
    """
    if body not in BODIES:
        raise ConfigError(f"body={body!r} is not one of {sorted(BODIES)}")
    west, north, degrees = region
    if not (degrees > 0 and north - height * degrees >= -90 and north <= 90):
        raise ConfigError(
            f"region={region} with {height} rows leaves latitudes -90..90; use fewer rows or "
            "smaller degrees per pixel"
        )
    transform = geotransform(west, north, degrees)
    frame = frame_of(BODIES[body], transform, height, width)
    field = CraterField.create(height, width, seed, FieldParams(**params))  # type: ignore[arg-type]
    field, catalogue = planetary_craters(field, frame, degrees)
    write_raster(field, Path(raster_path), transform, strip_rows=512, crs=BODIES[body])
    catalogue = catalogue[clear_of_nodata(field.craters, field.edge)].reset_index(drop=True)
    write_csv(catalogue, Path(csv_path), float_format="%.6f")
    return catalogue


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/moon", help="output folder (images/, datasets/)")
    parser.add_argument("--body", default="moon", choices=sorted(BODIES))
    parser.add_argument("--small", action="store_true", help="768 x 768 px (not 1536 x 1536)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    side = 768 if args.small else 1536
    name = f"{args.body}_field"
    out = Path(args.out)
    catalogue = generate_planetary_field(
        out / "images" / f"{name}.tif", out / "datasets" / f"{name}.csv", body=args.body,
        height=side, width=side, seed=args.seed,
    )  # fmt: skip
    logger.info("%s: %d x %d px, %d craters -> %s", name, side, side, len(catalogue), out)


if __name__ == "__main__":
    main()
