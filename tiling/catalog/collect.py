"""Every catalogue of a data set, paired, read into pixels and cleaned: the notebook's first step.

:func:`read_catalogs` pairs the CSVs with their rasters (:func:`~tiling.catalog.pairing.pair_files`),
reads each into pixels of its raster (:func:`~tiling.catalog.read.read_catalog`) and applies the
same filters to each (:func:`clean_catalog`: diameter range, then duplicates). The notebook and
``raster-detect tiles``/``train`` call it with the same parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tiling.catalog import filters
from tiling.catalog.pairing import pair_files
from tiling.catalog.read import read_catalog


@dataclass(frozen=True)
class CatalogSet:
    """The cleaned catalogues of a data set.

    Attributes:
        catalogs: raster name (file stem) -> DataFrame ``x``, ``y``, ``diameter`` (px), ``label``.
        rasters: raster name -> raster path.
        report: one row per (raster, filter): ``filter``, ``before``, ``removed``, ``raster``.
    """

    catalogs: dict[str, pd.DataFrame]
    rasters: dict[str, Path]
    report: pd.DataFrame

    def sources(self) -> list[tuple[Path, pd.DataFrame]]:
        """``(raster path, catalogue)`` pairs, as ``build_tile_store`` takes them."""
        return [(self.rasters[name], catalog) for name, catalog in self.catalogs.items()]


def clean_catalog(
    catalog: pd.DataFrame, *, min_diameter: float = 0.0, max_diameter: float = math.inf
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop objects outside ``[min_diameter, max_diameter]`` px, then duplicates.

    Returns:
        ``(clean catalogue, report)``: the report has one row per filter (``filter``,
        ``before``, ``removed``).
    """
    clean, report = filters.apply_filters(
        catalog,
        filters.min_diameter(min_diameter),
        filters.max_diameter(max_diameter),
        filters.drop_duplicates(),
        report=True,
    )
    return clean, report


def read_catalogs(
    images_dir: str | Path,
    datasets_dir: str | Path,
    image_filenames: Sequence[str] | None = None,
    dataset_filenames: Sequence[str] | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    coords: str = "pixel",
    diameter_unit: str = "px",
    one_based: bool = False,
    min_diameter: float = 0.0,
    max_diameter: float = math.inf,
) -> CatalogSet:
    """Pair, read and clean every catalogue of a data set.

    Args:
        images_dir, datasets_dir: folders of rasters and of CSV catalogues.
        image_filenames, dataset_filenames: explicit pairs (i-th with i-th); None or empty
            pairs by file stem.
        columns: CSV column names for x/y/diameter/label (or boxes); None or empty keeps them.
        coords, diameter_unit, one_based: how to read positions and sizes
            (:func:`~tiling.catalog.read.read_catalog`).
        min_diameter, max_diameter: objects outside this range are dropped, in px.

    Returns:
        The :class:`CatalogSet` (catalogues in pairing order).

    Raises:
        CatalogError: unpaired or missing files, or a catalogue that cannot be read (naming the
            file, row and column).
    """
    images = list(image_filenames or []) or None
    datasets = list(dataset_filenames or []) or None
    pairs = pair_files(images_dir, datasets_dir, images, datasets)
    catalogs, reports = {}, []
    for pair in pairs:
        raw = read_catalog(
            pair.catalog,
            pair.raster,
            columns=dict(columns) if columns else None,
            coords=coords,
            diameter_unit=diameter_unit,
            one_based=one_based,
        )
        clean, report = clean_catalog(raw, min_diameter=min_diameter, max_diameter=max_diameter)
        catalogs[pair.name] = clean
        reports.append(report.assign(raster=pair.name))
    rasters = {pair.name: pair.raster for pair in pairs}
    return CatalogSet(catalogs, rasters, pd.concat(reports, ignore_index=True))
