"""Benchmark rasters for ``bench.gpu``: large deflate-tiled GeoTIFFs written fast, cached on disk.

``bench.predict.write_raster`` draws each disc over a whole strip (fine at 8,192 px, minutes at
16,384 px); here a disc touches only its own bounding box and GDAL compresses with every core
(``NUM_THREADS=ALL_CPUS``), so a 16,384² 3-band raster takes seconds, not minutes, on a machine
with many cores. Content: Gaussian noise (it compresses about as badly as real imagery, so the
decode rate is honest) plus bright discs of 3-30 px radius.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "out"
BLOCK = 512
#: dtype name -> (bands, noise mean, noise sd, disc brightness)
KINDS: dict[str, tuple[int, float, float, float]] = {
    "uint8": (3, 90.0, 20.0, 120.0),
    "uint16": (1, 1000.0, 50.0, 800.0),
}


def bench_raster(size: int, dtype: str) -> Path:
    """Path of the ``size`` x ``size`` benchmark raster of ``dtype`` (written on first use).

    Args:
        size: side in pixels (a multiple of 512 is fastest; any size works).
        dtype: ``"uint8"`` (3 bands) or ``"uint16"`` (1 band).

    Returns:
        ``bench/out/gpu_<dtype>_<size>.tif``: tiled 512 x 512, deflate, EPSG:32617.
    """
    import rasterio
    from affine import Affine

    bands = KINDS[dtype][0]
    path = OUT / f"gpu_{dtype}_{size}.tif"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", height=size, width=size, count=bands, dtype=dtype,
                   crs="EPSG:32617", transform=Affine(1, 0, 500000, 0, -1, 4000000), tiled=True,
                   blockxsize=BLOCK, blockysize=BLOCK, compress="deflate",
                   num_threads="all_cpus")  # fmt: skip
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as ds:
        for row in range(0, size, BLOCK):
            strip = make_strip(rng, dtype, min(BLOCK, size - row), size)
            ds.write(strip, window=((row, row + strip.shape[1]), (0, size)))
    tmp.rename(path)
    return path


def make_strip(rng: np.random.Generator, dtype: str, height: int, width: int) -> np.ndarray:
    """One strip ``ndarray[C, height, width]`` of ``dtype``: noise plus ``width // 64`` discs."""
    bands, mean, sd, bright = KINDS[dtype]
    strip = rng.standard_normal((bands, height, width), dtype=np.float32) * sd + mean
    for cx, cy, r in zip(
        rng.uniform(0, width, width // 64),
        rng.uniform(0, height, width // 64),
        rng.uniform(3, 30, width // 64),
        strict=True,
    ):
        x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
        y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        strip[:, y0:y1, x0:x1] += bright * (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r)
    info = np.iinfo(dtype)
    return np.clip(strip, info.min, info.max).astype(dtype)
