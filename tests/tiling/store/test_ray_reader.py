"""Tiling on Ray: one task per raster gives the same store as the in-process reader."""

import numpy as np
import pandas as pd
import pytest

from tests.tiling.store.test_build import make_catalog, make_raster
from tiling.errors import TilingError
from tiling.store import build_tile_store
from tiling.store.format import create_tile_array
from tiling.store.ray_reader import read_on_ray, read_one
from tiling.store.reader import RasterJob
from tiling.store.tile_filters import max_nodata_fraction

TILE, OVERLAP = 64, 16


pytestmark = pytest.mark.usefixtures("embedded_ray")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("rasters")
    shapes = [(300, 420), (200, 260), (150, 330)]
    return [
        (make_raster(root / f"r{k}.tif", h, w, seed=k), make_catalog(h, w, 20, seed=k))
        for k, (h, w) in enumerate(shapes)
    ]


@pytest.mark.slow
def test_three_rasters_as_tasks_give_the_same_store(sources, tmp_path):
    kwargs = {"tile_size": TILE, "overlap": OVERLAP, "tile_filters": [max_nodata_fraction(0.5)]}
    here = build_tile_store(sources, tmp_path / "here", workers=1, **kwargs)
    tasks = build_tile_store(sources, tmp_path / "ray", workers=1, ray_address="auto", **kwargs)
    assert tasks.path.name == here.path.name  # the engine is not part of the hash
    for k in range(3):
        assert (tasks.path / f"tiles_{k}.npy").read_bytes() == (
            here.path / f"tiles_{k}.npy"
        ).read_bytes()
    pd.testing.assert_frame_equal(tasks.tiles, here.tiles)
    pd.testing.assert_frame_equal(tasks.boxes, here.boxes)
    assert tasks.meta == here.meta
    assert tasks.tiles["nodata_fraction"].max() > 0  # the fractions came back from the tasks


def job_for(raster, folder):
    out = create_tile_array(folder, 0, "uint16", (1, 3, TILE, TILE))
    offsets = np.zeros((1, 2), dtype=np.int64)
    return RasterJob(str(raster), str(out), offsets, TILE, OVERLAP, None)


def test_a_node_that_cannot_see_the_raster_names_it(tmp_path):
    job = job_for(tmp_path / "elsewhere.tif", tmp_path)
    with pytest.raises(TilingError, match=r"elsewhere.tif is not visible on Ray node .*shared"):
        read_one(job, 0)
    with pytest.raises(TilingError, match=r"reading elsewhere.tif on Ray failed: .*not visible"):
        read_on_ray([job], 0, "auto")
