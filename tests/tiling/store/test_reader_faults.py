"""A damaged raster block stops a store build with the raster and the window, in any process."""

import numpy as np
import pandas as pd
import pytest

from tests.faults import corrupt_block, noisy_geotiff
from tiling.errors import RasterError
from tiling.store import build_tile_store

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_block_names_raster_and_window(tmp_path, workers):
    path = noisy_geotiff(tmp_path / "cor.tif")
    corrupt_block(path, 2, 3)  # rows 128-192, columns 192-256 of the 256 x 256 raster
    xy = np.linspace(10, 240, 8)
    cat = pd.DataFrame({"x": xy, "y": xy, "diameter": 6.0, "label": "c"})
    out = tmp_path / "stores"
    with pytest.raises(RasterError) as info:
        build_tile_store(
            [(path, cat)], out, tile_size=64, overlap=0, workers=workers, split="raster",
            split_fractions=(1, 0, 0),
        )  # fmt: skip
    message = str(info.value)  # the window read (row buffers read 512-row chunks): all of it
    assert message.startswith(f"{path}: cannot read window rows 0-256, columns 0-256 (")
    assert "IReadBlock failed" in message and "damaged" in message and "\n" not in message
    assert list(out.iterdir()) == []  # no temporary folder, no lock
