r"""``raster-detect tiles``: build (or reuse) a tile store from rasters and their catalogues.

The notebook's sections 1 and 2, with the same functions and parameters: pair and read the
catalogues (:func:`~tiling.catalog.collect.read_catalogs`), then
:func:`~tiling.store.build.build_tile_store`. Every option is one of the notebook's parameters
(:class:`~tiling.store.parameters.StoreParameters`), with the same default::

    raster-detect tiles --images-dir data/images --datasets-dir data/datasets \
        --tiles-dir data/tiles --tile-size 256 --overlap 32 --test-rasters '[]'
"""

from __future__ import annotations

import argparse
import logging

from tiling.parameters import add_options, from_namespace
from tiling.store.parameters import StoreParameters

log = logging.getLogger(__name__)

SUMMARY = "build (or reuse) a tile store from rasters and their CSV catalogues"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``raster-detect tiles``: one per data and tiling parameter."""
    add_options(parser, StoreParameters)


def run(args: argparse.Namespace) -> int:
    """Build the store described by ``args``; log its folder and split counts; exit code 0."""
    from tiling.catalog.collect import read_catalogs
    from tiling.outputs import check_output_folder
    from tiling.store.build import build_tile_store
    from tiling.store.tilestore import split_summary

    params = from_namespace(StoreParameters, args)
    check_output_folder(params.tiles_dir, option="--tiles-dir")
    data = read_catalogs(**params.catalog_arguments())
    log.info("catalogues after filtering:\n%s", data.report.to_string(index=False))
    store = build_tile_store(data.sources(), **params.store_arguments())
    log.info("tile store %s\n%s", store.path, split_summary(store).to_string())
    return 0
