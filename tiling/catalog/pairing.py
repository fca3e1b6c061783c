"""Pair catalogue CSVs with their rasters: by file stem, or explicitly i-th with i-th."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tiling.errors import CatalogError


@dataclass(frozen=True)
class Pair:
    """A raster and its catalogue CSV, paired by file stem (``name``)."""

    name: str
    raster: Path
    catalog: Path


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".fits.fz", ".fits.gz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def pair_files(
    images_dir: str | Path,
    datasets_dir: str | Path,
    image_names: list[str] | None = None,
    dataset_names: list[str] | None = None,
) -> list[Pair]:
    """Pair each CSV in ``datasets_dir`` with the raster of the same stem in ``images_dir``.

    Explicit lists (i-th image with i-th dataset) override stem pairing. Raises ``CatalogError``
    naming unpaired or missing files.
    """
    images_dir, datasets_dir = Path(images_dir), Path(datasets_dir)
    missing_dirs = [str(d) for d in (images_dir, datasets_dir) if not d.is_dir()]
    if missing_dirs:
        raise CatalogError(f"folders not found: {missing_dirs}; check images_dir and datasets_dir")
    if image_names is not None or dataset_names is not None:
        if image_names is None or dataset_names is None or len(image_names) != len(dataset_names):
            raise CatalogError(
                f"image_filenames {image_names} and dataset_filenames {dataset_names} must be "
                "lists of the same length (i-th image with i-th dataset)"
            )
        pairs = [
            Pair(_stem(Path(i)), images_dir / i, datasets_dir / d)
            for i, d in zip(image_names, dataset_names, strict=True)
        ]
        missing = [str(p) for pr in pairs for p in (pr.raster, pr.catalog) if not p.exists()]
        if missing:
            raise CatalogError(f"missing files: {missing}; check the file names and folders")
        return pairs
    csvs = {_stem(p): p for p in sorted(datasets_dir.glob("*.csv"))}
    rasters = {_stem(p): p for p in sorted(images_dir.iterdir()) if p.is_file()}
    unpaired = sorted(set(csvs) - set(rasters))
    if unpaired or not csvs:
        raise CatalogError(
            f"catalogues without a raster of the same stem in {images_dir}: "
            f"{[str(csvs[s]) for s in unpaired] or 'no CSV in ' + str(datasets_dir)}; "
            "rename them or pass image_filenames/dataset_filenames"
        )
    return [Pair(s, rasters[s], csvs[s]) for s in csvs]
