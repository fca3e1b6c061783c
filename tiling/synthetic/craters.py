"""Synthetic crater field: the project's default data set (uint16 GeoTIFFs and their catalogues).

Each raster shows a shaded planetary surface:

- terrain: fractal value noise (octaves of 1024 down to 4 px, amplitude ``relief * cell^0.8``)
  and a faint albedo pattern, both functions of *global* pixel coordinates, so they are seamless
  across the windows the raster is written in;
- craters with a power-law size distribution (cumulative ``N(>D) ~ D^-slope`` between the two
  ``diameter_range`` bounds, 5-150 px by default; many small, few large, overlapping), each a
  height field: a parabolic bowl, a raised rim and an ejecta blanket falling off as ``r^-3`` out
  to 2.2 radii. ``fresh`` craters are deep (0.2 D) with a sharp rim; ``degraded`` ones are shallow
  (0.11 D) with a low, rounded rim;
- Lambertian hillshade of the summed heights for one sun (azimuth clockwise from north, i.e.
  up), mapped to about 18000-46000 DN, plus approximately Gaussian sensor noise;
- a nodata band (value 0) with an irregular edge along the right side (``nodata_width`` of the
  columns); catalogue objects whose disc reaches it are left out.

Catalogue rows (``x, y, diameter, label``) give the crater centre in pixel coordinates (project
convention: origin at the top-left corner of the top-left pixel), the rim-crest diameter in
pixels and ``fresh``/``degraded``, rounded to 3 decimals (the rendering uses the rounded values).

The raster is written in strips of ``strip_rows`` rows (512 by default, the GeoTIFF block size):
each strip renders its heights with a one-pixel halo (the shading needs the gradient) and only
the craters that reach it. Every pixel value is a function of the seed and of global coordinates
(sensor noise too, from a per-pixel hash), so the output does not depend on the strip size and
the same seed gives the same bytes. Peak memory is a few strips of float32.

CLI: ``python -m tiling.synthetic --out data [--if-missing] [--small] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from tiling.atomic import atomic_write
from tiling.errors import ConfigError
from tiling.synthetic import varied

logger = logging.getLogger(__name__)

#: (name, side in pixels, side with ``small=True``, sun azimuth and elevation in degrees)
FIELDS = (
    ("crater_field_a", 6000, 1024, 315.0, 30.0),
    ("crater_field_b", 2500, 768, 290.0, 35.0),
)
CRS = "EPSG:32633"  # UTM zone 33N, 1 m pixels
NODATA = 0
BLOCK = 512  # GeoTIFF block size
EXTENT = 2.2  # ejecta reach, in crater radii
OCTAVES = (1024, 512, 256, 128, 64, 32, 16, 8, 4)  # terrain noise cells in pixels
HURST = 0.8
DARK, GAIN = 18_000.0, 28_000.0  # DN = DARK + GAIN * albedo * shade + noise
#: depth, rim height and rim softness as fractions of the diameter
SHAPES = {"fresh": (0.20, 0.04, 0.002), "degraded": (0.11, 0.02, 0.01)}
RASTER_SUFFIXES = (".tif", ".tiff")
_MASK64 = (1 << 64) - 1
_OFFSET = 1 << 24  # keeps lattice indices non-negative before hashing


@dataclass(frozen=True)
class FieldParams:
    """Content parameters of one crater field (the image size and seed are given separately).

    Attributes:
        density: craters per square pixel (3e-4: about 20 per 256 x 256 tile, mostly small).
        diameter_range: smallest and largest crater diameter in pixels.
        slope: exponent of the cumulative size distribution ``N(>D) ~ D^-slope``.
        fresh_fraction: fraction of ``fresh`` craters; the rest are ``degraded``.
        nodata_width: mean width of the right-edge nodata band, as a fraction of the columns.
        relief: terrain roughness (height amplitude of an octave of cell c is ``relief * c^0.8``).
        sensor_noise: standard deviation of the sensor noise in DN.
        sun_azimuth: degrees clockwise from north (up in the image).
        sun_elevation: degrees above the horizon.
        varied: add albedo patches, regional slopes and overlapping, shallower degraded craters
            (:mod:`tiling.synthetic.varied`); False leaves the default field byte-identical.
    """

    density: float = 3e-4
    diameter_range: tuple[float, float] = (5.0, 150.0)
    slope: float = 2.0
    fresh_fraction: float = 0.45
    nodata_width: float = 0.05
    relief: float = 0.03
    sensor_noise: float = 250.0
    sun_azimuth: float = 315.0
    sun_elevation: float = 30.0
    varied: bool = False

    def __post_init__(self) -> None:
        lo, hi = self.diameter_range
        rules = (
            ("density", 0 < self.density <= 0.01, "in (0, 0.01]"),
            ("diameter_range", 1 <= lo < hi <= 1000, "(min, max) with 1 <= min < max <= 1000"),
            ("slope", 0 < self.slope <= 6, "in (0, 6]"),
            ("fresh_fraction", 0 <= self.fresh_fraction <= 1, "in [0, 1]"),
            ("nodata_width", 0 <= self.nodata_width <= 0.5, "in [0, 0.5]"),
            ("relief", self.relief >= 0, ">= 0"),
            ("sensor_noise", 0 <= self.sensor_noise <= 5000, "in [0, 5000] DN"),
            ("sun_elevation", 0 < self.sun_elevation <= 90, "in (0, 90] degrees"),
        )
        for name, ok, allowed in rules:
            if not ok:
                raise ConfigError(
                    f"synthetic crater field: {name}={getattr(self, name)!r} is out of range; "
                    f"use a value {allowed}"
                )


def _splitmix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of a ``uint64`` array (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _key(seed: int, *words: int) -> int:
    """A 64-bit stream key derived from the seed and some integers."""
    return int(np.random.SeedSequence([seed, *words]).generate_state(1, np.uint64)[0]) & _MASK64


def hash_grid(key: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Hash every pair of global ``rows`` (``int64[h]``) and ``cols`` (``int64[w]``) indices.

    Returns:
        ``uint64[h, w]`` pseudo-random bits, the same wherever the grid is cut.
    """
    r = (rows.astype(np.int64) + _OFFSET).astype(np.uint64) << np.uint64(32)
    c = (cols.astype(np.int64) + _OFFSET).astype(np.uint64)
    return _splitmix(_splitmix(r[:, None] | c[None, :]) ^ np.uint64(key))


def value_noise(key: int, ys: np.ndarray, xs: np.ndarray, cell: float) -> np.ndarray:
    """Smooth value noise in [-1, 1] sampled at global pixel-centre coordinates.

    Args:
        key: stream key.
        ys, xs: ``float[h]`` and ``float[w]`` global coordinates in pixels.
        cell: lattice spacing in pixels.

    Returns:
        ``float32[h, w]``: smoothstep-interpolated lattice values (a lattice hash).
    """

    def axis(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = coords / cell
        i = np.floor(u).astype(np.int64)
        t = (u - i).astype(np.float32)
        return i, t * t * (3 - 2 * t)

    iy, fy = axis(ys)
    ix, fx = axis(xs)
    ly, lx = np.arange(iy[0], iy[-1] + 2), np.arange(ix[0], ix[-1] + 2)
    lattice = (hash_grid(key, ly, lx) >> np.uint64(40)).astype(np.float32) / 2**23 - 1
    jx, jy = ix - lx[0], iy - ly[0]
    along_x = lattice[:, jx] * (1 - fx) + lattice[:, jx + 1] * fx
    fy = fy[:, None]
    return along_x[jy] * (1 - fy) + along_x[jy + 1] * fy


def sensor_noise(key: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Unit-variance, approximately Gaussian noise (sum of four uniforms) per global pixel.

    Returns:
        ``float32[len(rows), len(cols)]``.
    """
    bits = hash_grid(key, rows, cols)
    total = np.zeros(bits.shape, dtype=np.float32)
    for shift in (0, 16, 32, 48):
        total += ((bits >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.float32)
    return (total / 65536 - 2) * math.sqrt(3)


def sample_craters(
    height: int, width: int, params: FieldParams, rng: np.random.Generator
) -> pd.DataFrame:
    """Draw crater centres, diameters and classes (no nodata filtering).

    Returns:
        DataFrame sorted by ``y`` with ``x, y, diameter`` (px, rounded to 3 decimals), ``label``
        and ``relief`` (a per-crater depth factor in [0.85, 1.15]).
    """
    n = int(rng.poisson(params.density * height * width))
    lo, hi = params.diameter_range
    shrink = 1 - (lo / hi) ** params.slope
    diameter = lo * (1 - rng.random(n) * shrink) ** (-1 / params.slope)
    frame = pd.DataFrame(
        {
            "x": rng.uniform(0, width, n).round(3),
            "y": rng.uniform(0, height, n).round(3),
            "diameter": diameter.round(3),
            "label": np.where(rng.random(n) < params.fresh_fraction, "fresh", "degraded"),
            "relief": rng.uniform(0.85, 1.15, n),
        }
    )
    return frame.sort_values(["y", "x"], ignore_index=True)


def crater_profile(r: np.ndarray, diameter: float, label: str, relief: float) -> np.ndarray:
    """Height of a crater (px) at normalised radius ``r`` (distance / radius); 0 beyond ``EXTENT``.

    A parabolic bowl meets an ``r^-3`` ejecta blanket at the rim crest ``r = 1``; a smooth
    minimum of the two rounds the crest (hardly for ``fresh``, strongly for ``degraded``).
    """
    depth, rim, soft = (value * diameter for value in SHAPES[label])
    depth, rim = depth * relief, rim * relief
    bowl = rim + depth * (r * r - 1)
    cut = EXTENT**-3
    ejecta = rim * np.clip(np.maximum(r, 0.05) ** -3 - cut, 0, None) / (1 - cut)
    heights = -soft * np.logaddexp(-bowl / soft, -ejecta / soft)
    return np.where(r < EXTENT, heights, 0).astype(np.float32)


def render_craters(canvas: np.ndarray, row0: int, col0: int, craters: pd.DataFrame) -> None:
    """Add the height fields of ``craters`` to ``canvas`` (in place), clipped to it.

    Args:
        canvas: ``float32[h, w]`` heights covering global rows ``row0..`` and cols ``col0..``.
        craters: rows of :func:`sample_craters`, in a fixed (global) order; with ``width`` and
            ``height`` columns (pixels), each crater is an ellipse of those axes (a round crater
            on a map projection), its depth set by ``diameter``.
    """
    h, w = canvas.shape
    sizes = ["width", "height"] if {"width", "height"} <= set(craters) else ["diameter"] * 2
    columns = ["x", "y", "diameter", *sizes, "label", "relief"]
    for x, y, d, d_x, d_y, label, relief in craters[columns].itertuples(index=False, name=None):
        reach_x, reach_y = EXTENT * d_x / 2, EXTENT * d_y / 2
        r_lo, r_hi = max(math.floor(y - reach_y), row0), min(math.ceil(y + reach_y), row0 + h)
        c_lo, c_hi = max(math.floor(x - reach_x), col0), min(math.ceil(x + reach_x), col0 + w)
        if r_lo >= r_hi or c_lo >= c_hi:
            continue
        dy = (np.arange(r_lo, r_hi) + 0.5 - y) / (d_y / 2)
        dx = (np.arange(c_lo, c_hi) + 0.5 - x) / (d_x / 2)
        r = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
        canvas[r_lo - row0 : r_hi - row0, c_lo - col0 : c_hi - col0] += crater_profile(
            r, d, label, relief
        )


def hillshade(heights: np.ndarray, azimuth: float, elevation: float) -> np.ndarray:
    """Lambertian shading of a height field (heights in pixel units), cropped by one pixel.

    Args:
        heights: ``float32[h, w]``.
        azimuth: sun azimuth in degrees clockwise from up (north); elevation in degrees.

    Returns:
        ``float32[h - 2, w - 2]`` in [0, 1]: cosine of the incidence angle, 0 on slopes in shade.
    """
    dz_dy, dz_dx = np.gradient(heights)
    dz_dx, dz_dy = dz_dx[1:-1, 1:-1], dz_dy[1:-1, 1:-1]
    az, el = math.radians(azimuth), math.radians(elevation)
    sun_x, sun_y = math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az)
    lit = (math.sin(el) - dz_dx * sun_x - dz_dy * sun_y) / np.sqrt(1 + dz_dx**2 + dz_dy**2)
    return np.clip(lit, 0, 1).astype(np.float32)


def nodata_edge(key: int, height: int, width: int, fraction: float) -> np.ndarray:
    """Per-row first nodata column (as a float; pixels whose centre lies right of it are nodata).

    Returns:
        ``float64[height]``: ``width`` everywhere when ``fraction`` is 0.
    """
    if fraction == 0:
        return np.full(height, float(width))
    ys, x0 = np.arange(height) + 0.5, np.array([0.5])
    wiggle = value_noise(key, ys, x0, max(height / 6, 8))[:, 0]
    wiggle += 0.3 * value_noise(key ^ 1, ys, x0, max(height / 40, 4))[:, 0]
    band = fraction * width
    return width - band * (1 + 0.4 * wiggle.astype(np.float64))


def clear_of_nodata(craters: pd.DataFrame, edge: np.ndarray) -> np.ndarray:
    """``bool[N]``: True for craters whose whole disc lies left of the nodata edge."""
    x, y = craters["x"].to_numpy(), craters["y"].to_numpy()
    radius = craters["width" if "width" in craters else "diameter"].to_numpy() / 2
    keep = x + radius < edge.min()
    for k in np.flatnonzero(~keep):
        lo = max(math.floor(y[k] - radius[k]), 0)
        hi = min(math.ceil(y[k] + radius[k]) + 1, len(edge))
        keep[k] = lo < hi and x[k] + radius[k] < edge[lo:hi].min()
    return keep


@dataclass(frozen=True)
class CraterField:
    """Everything needed to render any strip of one raster.

    Attributes:
        height, width: raster size in pixels.
        params: content parameters.
        seed: the field's seed (hash keys derive from it).
        craters: all rendered craters, sorted by ``y`` (see :func:`sample_craters`).
        edge: ``float64[height]`` first nodata column per row (see :func:`nodata_edge`).
    """

    height: int
    width: int
    params: FieldParams
    seed: int
    craters: pd.DataFrame
    edge: np.ndarray

    @classmethod
    def create(cls, height: int, width: int, seed: int, params: FieldParams) -> CraterField:
        """Draw the craters and the nodata edge of a ``height x width`` field."""
        if min(height, width) < 16:
            raise ConfigError(
                f"synthetic crater field: size {height} x {width} px is too small; use >= 16"
            )
        rng = np.random.default_rng(seed)
        craters = sample_craters(height, width, params, rng)
        if params.varied:  # drawn after the default draws, which stay the same
            craters = varied.inside(varied.vary_craters(craters, rng), height, width)
        edge = nodata_edge(_key(seed, 1), height, width, params.nodata_width)
        return cls(height, width, params, seed, craters, edge)

    def catalogue(self) -> pd.DataFrame:
        """Craters clear of the nodata band: ``x, y, diameter, label``."""
        keep = clear_of_nodata(self.craters, self.edge)
        columns = ["x", "y", "diameter", "label"]
        return self.craters.loc[keep, columns].reset_index(drop=True)

    def nearby(self, top: float, bottom: float) -> pd.DataFrame:
        """Craters whose reach may touch global rows ``[top, bottom)``, in global order."""
        ys = self.craters["y"].to_numpy()
        tallest = self.craters["height"].max() if "height" in self.craters else 0.0
        reach = EXTENT * max(self.params.diameter_range[1], tallest) / 2
        lo, hi = np.searchsorted(ys, [top - reach, bottom + reach])
        return self.craters.iloc[lo:hi]

    def render_strip(self, row0: int, rows: int) -> np.ndarray:
        """Render global rows ``row0 .. row0 + rows`` as ``uint16[rows, width]`` (DN, nodata 0)."""
        p = self.params
        ys = np.arange(row0 - 1, row0 + rows + 1) + 0.5  # one-pixel halo for the gradient
        xs = np.arange(-1, self.width + 1) + 0.5
        heights = np.zeros((len(ys), len(xs)), dtype=np.float32)
        for octave, cell in enumerate(OCTAVES):
            noise = value_noise(_key(self.seed, 2, octave), ys, xs, cell)
            heights += np.float32(p.relief * cell**HURST) * noise
        if p.varied:
            slopes = value_noise(_key(self.seed, 6), ys, xs, varied.SLOPE_CELL)
            heights += varied.regional_heights(slopes)
        render_craters(heights, row0 - 1, -1, self.nearby(row0 - 1, row0 + rows + 1))
        shade = hillshade(heights, p.sun_azimuth, p.sun_elevation)
        ys, xs = ys[1:-1], xs[1:-1]
        albedo = 1 + 0.06 * value_noise(_key(self.seed, 3), ys, xs, 384)
        albedo += 0.03 * value_noise(_key(self.seed, 4), ys, xs, 48)
        if p.varied:
            albedo *= varied.albedo_patches(
                value_noise(_key(self.seed, 7), ys, xs, varied.ALBEDO_CELL)
            )
        rows_i, cols_i = np.arange(row0, row0 + rows), np.arange(self.width)
        noise = np.float32(p.sensor_noise) * sensor_noise(_key(self.seed, 5), rows_i, cols_i)
        values = np.clip(np.rint(DARK + GAIN * albedo * shade + noise), 1, 65535)
        values[xs[None, :] >= self.edge[row0 : row0 + rows, None]] = NODATA
        return values.astype(np.uint16)


def write_raster(
    field: CraterField,
    path: Path,
    transform: tuple[float, ...],
    strip_rows: int,
    crs: str = CRS,
) -> None:
    """Write ``field`` strip by strip to a tiled, deflate-compressed GeoTIFF (via a temp name).

    Args:
        field: what to render; ``path``: the GeoTIFF.
        transform: the affine geotransform ``(a, b, c, d, e, f)`` (rasterio's order).
        strip_rows: rows rendered per write; ``crs``: any CRS rasterio accepts.
    """
    import rasterio
    from affine import Affine
    from rasterio.windows import Window as RioWindow

    profile = {"driver": "GTiff", "count": 1, "dtype": "uint16", "crs": crs, "nodata": NODATA}
    profile |= {"height": field.height, "width": field.width, "tiled": True, "predictor": 2}
    profile |= {"blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate"}
    profile["transform"] = Affine(*transform)

    def write(tmp: Path) -> None:
        with rasterio.open(tmp, "w", **profile) as ds:
            for row0 in tqdm(range(0, field.height, strip_rows), desc=path.stem, unit="strip"):
                rows = min(strip_rows, field.height - row0)
                window = RioWindow(0, row0, field.width, rows)
                ds.write(field.render_strip(row0, rows)[None], window=window)
            ds.update_tags(GENERATOR="tiling.synthetic", SEED=str(field.seed))

    atomic_write(path, write)


def write_csv(catalogue: pd.DataFrame, path: Path, float_format: str = "%.3f") -> None:
    """Write the catalogue (3 decimals by default) atomically (:func:`tiling.atomic.atomic_write`)."""
    atomic_write(path, lambda tmp: catalogue.to_csv(tmp, index=False, float_format=float_format))


def generate_crater_field(
    raster_path: str | Path,
    csv_path: str | Path,
    *,
    height: int,
    width: int,
    seed: int = 0,
    origin: tuple[float, float] = (500_000.0, 4_100_000.0),
    strip_rows: int = BLOCK,
    **params: float | tuple[float, float] | bool,
) -> pd.DataFrame:
    """Write one crater-field GeoTIFF (uint16, nodata 0, EPSG:32633, 1 m pixels) and its CSV.

    Args:
        raster_path, csv_path: output files (folders created; written via temporary names).
        height, width: raster size in pixels (>= 16).
        seed: random seed; the same seed and parameters give the same bytes.
        origin: map coordinates (easting, northing) of the raster's top-left corner, metres.
        strip_rows: rows rendered per write (memory ~ 60 bytes x strip_rows x width); the pixels
            do not depend on it.
        **params: :class:`FieldParams` fields (``density``, ``diameter_range``, ``slope``,
            ``fresh_fraction``, ``nodata_width``, ``relief``, ``sensor_noise``, ``sun_azimuth``,
            ``sun_elevation``, ``varied``).

    Returns:
        The catalogue written: ``x, y, diameter, label`` (pixels, project convention).

    Raises:
        ConfigError: an unknown or out-of-range parameter, naming it.
    """
    known = {f.name for f in dataclasses.fields(FieldParams)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(
            f"synthetic crater field: unknown parameter(s) {unknown}; choose from {sorted(known)}"
        )
    if strip_rows < 1:
        raise ConfigError(f"synthetic crater field: strip_rows={strip_rows} must be >= 1")
    field = CraterField.create(height, width, seed, FieldParams(**params))  # type: ignore[arg-type]
    write_raster(field, Path(raster_path), (1.0, 0.0, origin[0], 0.0, -1.0, origin[1]), strip_rows)
    catalogue = field.catalogue()
    write_csv(catalogue, Path(csv_path))
    return catalogue


def generate_dataset(
    out_dir: str | Path, *, small: bool = False, seed: int = 0
) -> list[tuple[Path, Path]]:
    """Write the default data set: ``crater_field_a`` (6000 px) and ``crater_field_b`` (2500 px).

    Args:
        out_dir: root folder; rasters go to ``images/``, catalogues to ``datasets/``.
        small: 1024 and 768 px instead (tests, smoke runs).
        seed: random seed; each raster derives its own from it.

    Returns:
        ``[(raster_path, csv_path), ...]``, one pair per raster.
    """
    out_dir = Path(out_dir)
    pairs = []
    for index, (name, size, small_size, azimuth, elevation) in enumerate(FIELDS):
        side = small_size if small else size
        raster, csv = out_dir / "images" / f"{name}.tif", out_dir / "datasets" / f"{name}.csv"
        catalogue = generate_crater_field(
            raster,
            csv,
            height=side,
            width=side,
            seed=_key(seed, 1000 + index) >> 2,
            origin=(500_000.0 + 10_000.0 * index, 4_100_000.0),
            sun_azimuth=azimuth,
            sun_elevation=elevation,
        )
        counts = catalogue["label"].value_counts().to_dict()
        logger.info("%s: %d x %d px, craters %s -> %s", name, side, side, counts, raster)
        pairs.append((raster, csv))
    return pairs


def existing_rasters(images_dir: str | Path) -> list[Path]:
    """GeoTIFFs already present in ``images_dir`` (empty when it does not exist)."""
    folder = Path(images_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description="Write the synthetic crater-field data set (GeoTIFFs and CSV catalogues)."
    )
    parser.add_argument("--out", default="data", help="output folder (images/, datasets/)")
    parser.add_argument("--if-missing", action="store_true", help="skip if out/images has a raster")
    parser.add_argument("--small", action="store_true", help="1024 and 768 px (not 6000, 2500)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    found = existing_rasters(Path(args.out) / "images")
    if args.if_missing and found:
        logger.info("%s already holds %d raster(s); nothing generated", found[0].parent, len(found))
        return
    generate_dataset(args.out, small=args.small, seed=args.seed)


if __name__ == "__main__":
    main()
