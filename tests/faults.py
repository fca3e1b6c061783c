"""Damaged inputs for the reliability tests: corrupt GeoTIFF blocks, cut files, broken transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import write_geotiff


def corrupt_block(path: Path, block_row: int, block_col: int, band: int = 1) -> None:
    """Overwrite the compressed bytes of one tile of a tiled GeoTIFF with garbage."""
    import rasterio

    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item(f"BLOCK_OFFSET_{block_col}_{block_row}", "TIFF", bidx=band))
        size = int(ds.get_tag_item(f"BLOCK_SIZE_{block_col}_{block_row}", "TIFF", bidx=band))
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * size)


def cut(path: Path, keep: int) -> Path:
    """Truncate ``path`` to its first ``keep`` bytes."""
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    return path


def noisy_geotiff(path: Path, size: int = 256, **kwargs: object) -> Path:
    """A tiled (64 px blocks), deflate-compressed uint8 GeoTIFF of noise."""
    data = np.random.default_rng(0).integers(1, 255, (size, size), dtype=np.uint8)
    return write_geotiff(path, data, **kwargs)  # type: ignore[arg-type]
