"""Shared fixtures: tiny rasters written into ``tmp_path``; nothing writes into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
os.environ.setdefault("TQDM_DISABLE", "1")

DATA = Path(__file__).parent / "data"


@pytest.fixture
def neon_tif() -> Path:
    """The real 400 x 400 RGB GeoTIFF (UTM 17N) from NEON site OSBS, MIT licence."""
    return DATA / "OSBS_029.tif"


@pytest.fixture
def neon_csv() -> Path:
    """Its 61 tree-crown boxes: image_path,xmin,ymin,xmax,ymax,label."""
    return DATA / "OSBS_029.csv"


def write_geotiff(
    path: Path,
    array: np.ndarray,
    *,
    crs: str | None = "EPSG:32617",
    transform: tuple[float, ...] = (1.0, 0.0, 500000.0, 0.0, -1.0, 4000000.0),
    nodata: float | None = None,
    tiled: bool = True,
) -> Path:
    """Write ``array`` (``[C, H, W]`` or ``[H, W]``) as a GeoTIFF and return its path."""
    import rasterio
    from affine import Affine

    if array.ndim == 2:
        array = array[None]
    profile = {
        "driver": "GTiff",
        "height": array.shape[1],
        "width": array.shape[2],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": Affine(*transform),
        "nodata": nodata,
    }
    if tiled:
        profile.update(tiled=True, blockxsize=64, blockysize=64, compress="deflate")
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(array)
    return path


@pytest.fixture
def make_geotiff(tmp_path: Path):
    """Factory: ``make_geotiff(name, array, **kwargs)`` writes into ``tmp_path``."""

    def make(name: str, array: np.ndarray, **kwargs: object) -> Path:
        return write_geotiff(tmp_path / name, array, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="module")
def embedded_ray():
    """One embedded Ray with 2 CPUs for a test module (a start costs seconds); the code under
    test joins it (``ray_session`` or ``ray_address="auto"``) instead of starting its own."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
