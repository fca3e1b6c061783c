"""Synthetic astronomical star field: a FITS image with a TAN WCS and its RA/Dec catalogue.

The image (float32, ADU) holds:

- stars with Moffat PSFs (beta = 3) of FWHM 1.5-4 px drawn per star, fluxes over four decades with
  power-law number counts ``N(>F) ~ F^-0.75`` (the faintest peak is ~6 sigma above the sky);
- a few extended galaxies: elliptical Sersic profiles (index 0.8-4, exponential to de
  Vaucouleurs), effective radius 4-12 px, axis ratio 0.35-1, random orientation, seen through a
  Gaussian PSF of FWHM 2.5 px;
- a flat sky of 200 ADU with noise ``sqrt(read_noise^2 + signal)`` (gain 1, read noise 5 ADU,
  sky sigma ~15 ADU), clipped at the saturation level (40 000 ADU), so bright stars are flat-topped;
- a masked NaN region: one rectangular patch and one block of bad columns.

The WCS is a north-up TAN projection at 0.4 arcsec/px centred on (RA, Dec) = (150.1, 2.2) deg.

Catalogue rule (``ra, dec, diameter_arcsec, label``; labels ``star`` and ``galaxy``): the
diameter is twice the radius at which the object's noiseless profile falls to 3 sigma of the
sky noise, i.e. its visible size; stars are clipped to [2.5, 8] FWHM (about 4-30 px, mostly
5-15 px), galaxies (major axis of the 3-sigma isophote) to [12, 80] px. Objects whose centre lies
in the NaN region are left out. Positions are the true centres, converted to RA/Dec with the WCS
(project pixel convention: pixel centre = index + 0.5, see :mod:`tiling.sources.fits`).

Memory: the default 3000 x 3000 image is built in memory as float32 (36 MB, acceptable here); the
noise is drawn strip by strip. Everything is deterministic from ``seed``.

CLI: ``python -m tiling.synthetic.starfield --out data/starfield [--small] [--seed 0]`` writes
``<out>/images/star_field.fits`` and ``<out>/datasets/star_field.csv``.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS
from scipy.ndimage import gaussian_filter

from tiling.atomic import atomic_write

logger = logging.getLogger(__name__)

SIZE, SMALL_SIZE = 3000, 768  # image side in pixels
PIXEL_SCALE = 0.4  # arcsec per pixel
CENTRE = (150.1, 2.2)  # (RA, Dec) of the image centre in degrees
SKY, READ_NOISE, SATURATION = 200.0, 5.0, 40_000.0  # ADU
SKY_SIGMA = math.sqrt(READ_NOISE**2 + SKY)
STAR_DENSITY = 2.8e-4  # stars per square pixel
GALAXY_AREA = 250_000  # square pixels per galaxy (at least MIN_GALAXIES)
MIN_GALAXIES = 6
BETA = 3.0  # Moffat index
FWHM_RANGE = (1.5, 4.0)  # px
FLUX_MIN, FLUX_DECADES, COUNT_SLOPE = 2500.0, 4.0, 0.75
GALAXY_PSF_FWHM = 2.5  # px
VISIBLE_SIGMA = 3.0  # catalogue sizes: radius where the profile falls to this many sky sigmas
STRIP_ROWS = 512
NAME = "star_field"


def make_wcs(size: int) -> WCS:
    """North-up TAN WCS at :data:`PIXEL_SCALE` with the image centre at :data:`CENTRE`."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(CENTRE)
    wcs.wcs.crpix = [size / 2 + 0.5, size / 2 + 0.5]  # 1-based: the centre of the image
    scale = PIXEL_SCALE / 3600.0
    wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    wcs.wcs.radesys = "ICRS"
    return wcs


def _moffat_alpha(fwhm: np.ndarray) -> np.ndarray:
    return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / BETA) - 1.0))


def _draw_stars(rng: np.random.Generator, size: int) -> pd.DataFrame:
    """Random stars: ``x, y`` (px), ``flux``, ``fwhm``, ``alpha``, ``peak`` (ADU), ``diameter`` (px)."""
    n = rng.poisson(STAR_DENSITY * size * size)
    u = rng.uniform(10.0 ** (-FLUX_DECADES * COUNT_SLOPE), 1.0, n)
    flux = FLUX_MIN * u ** (-1.0 / COUNT_SLOPE)
    fwhm = rng.uniform(*FWHM_RANGE, n)
    alpha = _moffat_alpha(fwhm)
    peak = flux * (BETA - 1.0) / (math.pi * alpha**2)
    ratio = np.maximum(peak / (VISIBLE_SIGMA * SKY_SIGMA), 1.0)
    radius = alpha * np.sqrt(ratio ** (1.0 / BETA) - 1.0)
    diameter = np.clip(2.0 * radius, 2.5 * fwhm, 8.0 * fwhm)
    x, y = rng.uniform(0, size, n), rng.uniform(0, size, n)
    return pd.DataFrame(
        {
            "x": x,
            "y": y,
            "flux": flux,
            "fwhm": fwhm,
            "alpha": alpha,
            "peak": peak,
            "diameter": diameter,
        }
    )


def _stamp(
    image: np.ndarray, x: float, y: float, half: int
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Slices of ``image`` around ``(x, y)`` and the pixel-centre offsets ``dx, dy`` inside them."""
    h, w = image.shape
    c0, r0 = max(0, int(x) - half), max(0, int(y) - half)
    c1, r1 = min(w, int(x) + half + 1), min(h, int(y) + half + 1)
    dy, dx = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    return (slice(r0, r1), slice(c0, c1)), dx + 0.5 - x, dy + 0.5 - y


def _render_stars(image: np.ndarray, stars: pd.DataFrame) -> None:
    """Add each star's Moffat profile (evaluated at pixel centres) to ``image`` in place."""
    faint = 0.3 * SKY_SIGMA
    for s in stars.itertuples():
        reach = s.alpha * math.sqrt(max(s.peak / faint, 1.0) ** (1.0 / BETA) - 1.0)
        half = int(min(64, max(3 * s.fwhm, reach))) + 1
        box, dx, dy = _stamp(image, s.x, s.y, half)
        image[box] += s.peak * (1.0 + (dx**2 + dy**2) / s.alpha**2) ** -BETA


def _draw_galaxies(rng: np.random.Generator, size: int, mask: np.ndarray) -> pd.DataFrame:
    """Random Sersic galaxies fully inside the image with centres outside ``mask``."""
    n = max(MIN_GALAXIES, round(size * size / GALAXY_AREA))
    index = rng.uniform(0.8, 4.0, n)
    b = 2.0 * index - 1.0 / 3.0 + 4.0 / (405.0 * index)
    r_e = np.exp(rng.uniform(math.log(4.0), math.log(12.0), n))
    i_e = rng.uniform(1.5, 6.0, n) * VISIBLE_SIGMA * SKY_SIGMA
    r_iso = r_e * (1.0 + np.log(i_e / (VISIBLE_SIGMA * SKY_SIGMA)) / b) ** index
    half = np.minimum(np.ceil(2.5 * r_iso).astype(int) + 4, size // 4)
    x = rng.uniform(half, size - half, n)
    y = rng.uniform(half, size - half, n)
    inside = ~mask[y.astype(int), x.astype(int)]
    galaxies = pd.DataFrame(
        {
            "x": x, "y": y, "n": index, "b": b, "r_e": r_e, "i_e": i_e, "half": half,
            "q": rng.uniform(0.35, 1.0, n), "theta": rng.uniform(0.0, math.pi, n),
            "diameter": np.clip(2.0 * r_iso, 12.0, 80.0),
        }
    )  # fmt: skip
    return galaxies[inside].reset_index(drop=True)


def _render_galaxies(image: np.ndarray, galaxies: pd.DataFrame) -> None:
    """Add each galaxy's PSF-convolved elliptical Sersic profile to ``image`` in place."""
    sigma_psf = GALAXY_PSF_FWHM / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    for g in galaxies.itertuples():
        box, dx, dy = _stamp(image, g.x, g.y, int(g.half))
        cos, sin = math.cos(g.theta), math.sin(g.theta)
        major, minor = dx * cos + dy * sin, -dx * sin + dy * cos
        r = np.maximum(np.hypot(major, minor / g.q), 0.3)
        profile = g.i_e * np.exp(-g.b * ((r / g.r_e) ** (1.0 / g.n) - 1.0))
        image[box] += gaussian_filter(profile, sigma_psf, mode="constant")


def _nan_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """Bool ``[size, size]``: a rectangular patch and a block of bad columns."""
    mask = np.zeros((size, size), dtype=bool)
    ph, pw = int(0.12 * size), int(0.08 * size)
    r, c = rng.integers(0, size - ph), rng.integers(0, size - pw)
    mask[r : r + ph, c : c + pw] = True
    width, length = max(3, size // 500), int(0.4 * size)
    r, c = rng.integers(0, size - length), rng.integers(0, size - width)
    mask[r : r + length, c : c + width] = True
    return mask


def _add_noise(image: np.ndarray, rng: np.random.Generator) -> None:
    """Sky, photon and read noise, then saturation, strip by strip in place."""
    for r in range(0, image.shape[0], STRIP_ROWS):
        strip = image[r : r + STRIP_ROWS]
        strip += SKY
        sigma = np.sqrt(READ_NOISE**2 + np.maximum(strip, 0.0))
        strip += sigma * rng.standard_normal(strip.shape, dtype=np.float32)
        np.minimum(strip, SATURATION, out=strip)


def _catalogue(objects: pd.DataFrame, wcs: WCS) -> pd.DataFrame:
    """RA/Dec catalogue (degrees, arcsec) of ``objects`` (x, y, diameter in px, label)."""
    ra, dec = wcs.all_pix2world(objects["x"] - 0.5, objects["y"] - 0.5, 0)
    return pd.DataFrame(
        {
            "ra": ra,
            "dec": dec,
            "diameter_arcsec": objects["diameter"].to_numpy() * PIXEL_SCALE,
            "label": objects["label"].to_numpy(),
        }
    )


def _header(wcs: WCS, seed: int) -> fits.Header:
    header = wcs.to_header()
    header["BUNIT"] = ("adu", "pixel unit")
    header["SATURATE"] = (SATURATION, "[adu] saturation level (pixels clipped here)")
    header["SKYLEVEL"] = (SKY, "[adu] sky background")
    header["GAIN"] = (1.0, "[e-/adu]")
    header["RDNOISE"] = (READ_NOISE, "[adu] read noise")
    header["SEED"] = (seed, "tiling.synthetic.starfield random seed")
    header["COMMENT"] = "Synthetic star field from tiling.synthetic.starfield; NaN = masked pixels."
    return header


def render_star_field(size: int, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame, WCS]:
    """Draw the image ``float32[size, size]``, its pixel catalogue and its WCS (no file I/O).

    The catalogue has ``x, y`` (px, project convention), ``diameter`` (px) and ``label``.
    """
    rng = np.random.default_rng(seed)
    mask = _nan_mask(rng, size)
    stars = _draw_stars(rng, size)
    galaxies = _draw_galaxies(rng, size, mask)
    image = np.zeros((size, size), dtype=np.float32)
    _render_stars(image, stars)
    _render_galaxies(image, galaxies)
    _add_noise(image, rng)
    image[mask] = np.nan
    columns = ["x", "y", "diameter"]
    objects = pd.concat(
        [stars[columns].assign(label="star"), galaxies[columns].assign(label="galaxy")],
        ignore_index=True,
    )
    keep = ~mask[objects["y"].astype(int), objects["x"].astype(int)]
    return image, objects[keep].reset_index(drop=True), make_wcs(size)


def generate_star_field(
    out_dir: str | Path, *, small: bool = False, seed: int = 0
) -> tuple[Path, Path]:
    """Write ``<out_dir>/images/star_field.fits`` and ``<out_dir>/datasets/star_field.csv``.

    Args:
        out_dir: output folder (created).
        small: 768 x 768 instead of 3000 x 3000 (tests, smoke runs).
        seed: random seed; the same seed gives the same files.

    Returns:
        ``(fits_path, csv_path)``, each written atomically (:mod:`tiling.atomic`), the FITS file
        last.
    """
    out_dir = Path(out_dir)
    size = SMALL_SIZE if small else SIZE
    image, objects, wcs = render_star_field(size, seed)
    catalogue = _catalogue(objects, wcs)
    fits_path = out_dir / "images" / f"{NAME}.fits"
    csv_path = out_dir / "datasets" / f"{NAME}.csv"
    # the catalogue first: the FITS file, written last, marks a complete data set (make run-starfield)
    atomic_write(csv_path, lambda tmp: catalogue.to_csv(tmp, index=False, float_format="%.8f"))
    atomic_write(fits_path, fits.PrimaryHDU(image, header=_header(wcs, seed)).writeto)
    logger.info(
        "star field %d x %d px, %d objects: %s, %s", size, size, len(catalogue), fits_path, csv_path
    )
    return fits_path, csv_path


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description="Write a synthetic FITS star field and its catalogue."
    )
    parser.add_argument(
        "--out", default="data/starfield", help="output folder (images/, datasets/)"
    )
    parser.add_argument("--small", action="store_true", help="768 x 768 instead of 3000 x 3000")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    generate_star_field(args.out, small=args.small, seed=args.seed)


if __name__ == "__main__":
    main()
