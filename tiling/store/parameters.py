"""The notebook's data and tiling parameters as one checked set, for ``raster-detect tiles``/``train``.

Names and defaults are those of ``main.ipynb``'s parameters cell (a test holds them equal);
:meth:`StoreParameters.catalog_arguments` and :meth:`StoreParameters.store_arguments` give the
keywords the notebook passes to :func:`~tiling.catalog.collect.read_catalogs` and
:func:`~tiling.store.build.build_tile_store` (a test holds those equal too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiling import options as o
from tiling.parameters import param

_FLOATS = o.list_of(o.non_negative_float)


@dataclass(frozen=True)
class StoreParameters:
    """Where the data are, how to read the catalogues, and how to cut tiles (see ``--help``)."""

    # fmt: off
    # --- data
    images_dir: str = param("data/images", "folder of rasters (GeoTIFF, any GDAL format, FITS)", o.text)
    datasets_dir: str = param("data/datasets", "folder of CSV catalogues, paired with rasters by file stem", o.text)
    image_filenames: list[str] = param([], "raster file names paired i-th with dataset_filenames; [] pairs by file stem", o.list_of(o.text))
    dataset_filenames: list[str] = param([], "CSV file names paired i-th with image_filenames; [] pairs by file stem", o.list_of(o.text))
    columns: dict[str, str] = param({}, "catalogue column names for x/y/diameter/label, e.g. '{x: X_IMAGE}'; {} keeps them", o.mapping(o.text, o.text))
    coords: str = param("pixel", "catalogue positions: pixel | map (raster CRS) | lonlat (degrees) | sky (RA/Dec)", o.text)
    diameter_unit: str = param("px", "catalogue diameters: px | m | km | map | deg | arcmin | arcsec", o.text)
    one_based: bool = param(False, "pixel positions count from 1 (SExtractor X_IMAGE/Y_IMAGE)", o.flag)
    min_diameter: float = param(8.0, "drop catalogue objects smaller than this (0 keeps all)", o.non_negative_float, unit="px")
    max_diameter: float = param(120.0, "drop catalogue objects larger than this", o.positive_float, unit="px")
    tiles_dir: str = param("data/tiles", "parent folder of tile stores; unchanged parameters reuse a store", o.text)
    seed: int = param(0, "seeds splits, tile sampling, augmentation and training", o.integer)
    workers: int = param(2, "processes reading rasters (0 reads in this process)", o.non_negative_int)
    ray_address: str | None = param(None, "a running Ray cluster (auto, host:6379): rasters are tiled there (one task each) and, with engine ray, the trials run there; null: tiling here, trials on an embedded Ray", o.optional(o.text))
    # --- tiling
    tile_size: int | str = param("auto", "tile side (the network sees tiles at this size, never resized); auto: 128 for fewer than 2000 objects of which nine in ten are at most 64 px across, or for a raster under 256 px, else 256", o.or_auto(o.positive_int), unit="px")
    overlap: int = param(32, "pixels shared by neighbouring tiles (less than tile_size)", o.non_negative_int, unit="px")
    min_visible: float = param(0.5, "an object belongs to a tile when this fraction of its box is inside", o.probability)
    split: str = param("blocks", "blocks (spatial blocks of each raster) | raster (whole rasters per split)", o.text)
    split_fractions: list[float] = param([0.7, 0.15, 0.15], "train, val, test fractions of tiles and objects (or of rasters)", _FLOATS)
    block_size: int | str = param("auto", "side of the split blocks (whole tile strides), or auto to fit each raster", o.or_auto(o.positive_int), unit="px")
    test_rasters: list[str] = param(["crater_field_b"], "raster names held out whole for testing ([] holds none out)", o.list_of(o.text))
    max_nodata: float = param(0.5, "drop tiles whose nodata fraction is above this", o.probability)
    keep_empty: float = param(0.25, "fraction of tiles without objects that are kept", o.probability)
    # fmt: on

    def catalog_arguments(self) -> dict[str, Any]:
        """Keywords of :func:`~tiling.catalog.collect.read_catalogs` (the notebook's section 1)."""
        return {
            "images_dir": self.images_dir,
            "datasets_dir": self.datasets_dir,
            "image_filenames": self.image_filenames,
            "dataset_filenames": self.dataset_filenames,
            "columns": self.columns,
            "coords": self.coords,
            "diameter_unit": self.diameter_unit,
            "one_based": self.one_based,
            "min_diameter": self.min_diameter,
            "max_diameter": self.max_diameter,
        }

    def store_arguments(self) -> dict[str, Any]:
        """Keywords of :func:`~tiling.store.build.build_tile_store` after the sources."""
        from tiling.store import tile_filters as tf

        return {
            "out_dir": self.tiles_dir,
            "tile_size": self.tile_size,
            "overlap": self.overlap,
            "min_visible": self.min_visible,
            "workers": self.workers,
            "ray_address": self.ray_address,
            "split": self.split,
            "split_fractions": self.split_fractions,
            "block_size": self.block_size,
            "test_rasters": self.test_rasters,
            "tile_filters": [
                tf.max_nodata_fraction(self.max_nodata),
                tf.keep_empty(self.keep_empty),
            ],
            "seed": self.seed,
        }
