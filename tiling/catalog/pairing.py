"""Pair catalogue CSVs with their rasters, by file stem or explicitly i-th with i-th, and report.

Stem pairing (``a.csv`` with ``a.tif``, ``a.fits.fz``, ...) looks at every entry of both folders
and accounts for each one: a file is either paired or skipped with a reason, and
:func:`pair_files` returns both (a :class:`Pairing`), logs the report and warns once about the
skipped files that look like a mistake (a raster without a catalogue, a file in the catalogue
folder that is not a ``.csv``, a folder). Hidden entries (names starting with ``.``) are ignored.

- Catalogues are the ``.csv`` files (any case) of ``datasets_dir``; one without a raster of the
  same stem is an error (it would be dropped silently otherwise), as are two with one stem.
- Rasters are the other files of ``images_dir``, except raster sidecars (world files, ``.aux.xml``,
  ``.ovr``, ``.prj``, ENVI ``.hdr``, ...: :data:`SIDECAR_SUFFIXES`), which are skipped as such.
- Several files with a catalogue's stem are ambiguous (an error naming them), except a PDS label
  (``.lbl``/``.xml``) beside its raw data file (``.img``, ...): the label is what GDAL opens.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

from tiling.errors import CatalogError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: Files that accompany a raster and are not rasters themselves.
SIDECAR_SUFFIXES = (
    ".aux.xml", ".aux", ".tfw", ".tifw", ".tfwx", ".wld", ".jgw", ".pgw", ".pngw", ".j2w",
    ".prj", ".ovr", ".msk", ".rrd", ".hdr", ".md5", ".sha256",
)  # fmt: skip
#: Detached labels that GDAL opens in place of their data file (PDS3 ``.lbl``, PDS4 ``.xml``).
LABEL_SUFFIXES = (".lbl", ".xml")
#: Raw data files that a detached label describes.
LABELLED_DATA_SUFFIXES = (".img", ".dat", ".raw", ".qub")


@dataclass(frozen=True)
class Pair:
    """A raster and its catalogue CSV, paired by file stem (``name``)."""

    name: str
    raster: Path
    catalog: Path


@dataclass(frozen=True)
class Skipped:
    """A file of either folder that was not paired, and why (``expected``: no warning needed)."""

    path: Path
    reason: str
    expected: bool = False


class Pairing(Sequence[Pair]):
    """The pairs (a sequence of :class:`Pair`) and the files that were skipped.

    Attributes:
        pairs: the pairs, in catalogue order.
        skipped: every other visible entry of both folders, with the reason.
    """

    def __init__(self, pairs: list[Pair], skipped: list[Skipped]) -> None:
        self.pairs, self.skipped = list(pairs), list(skipped)

    @overload
    def __getitem__(self, index: int) -> Pair: ...
    @overload
    def __getitem__(self, index: slice) -> list[Pair]: ...
    def __getitem__(self, index: int | slice) -> Pair | list[Pair]:
        return self.pairs[index]

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.pairs)

    def table(self) -> pd.DataFrame:
        """One row per file: ``file``, ``status`` (``paired``/``skipped``), ``with``, ``reason``."""
        import pandas as pd

        rows = [
            {"file": str(f), "status": "paired", "with": str(o), "reason": ""}
            for p in self.pairs
            for f, o in ((p.catalog, p.raster), (p.raster, p.catalog))
        ]
        rows += [
            {"file": str(s.path), "status": "skipped", "with": "", "reason": s.reason}
            for s in self.skipped
        ]
        return pd.DataFrame(rows, columns=["file", "status", "with", "reason"])

    def __repr__(self) -> str:
        return f"Pairing({len(self.pairs)} pairs, {len(self.skipped)} files skipped)"


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".fits.fz", ".fits.gz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def pair_files(
    images_dir: str | Path,
    datasets_dir: str | Path,
    image_names: list[str] | None = None,
    dataset_names: list[str] | None = None,
) -> Pairing:
    """Pair each CSV in ``datasets_dir`` with the raster of the same stem in ``images_dir``.

    Explicit lists (i-th image with i-th dataset) override stem pairing.

    Returns:
        A :class:`Pairing`: iterate it for the pairs; ``.skipped`` and ``.table()`` report the
        files left out (also logged, with one warning for those that look like a mistake).

    Raises:
        CatalogError: a missing folder or file, a catalogue without a raster, or several files
            for one stem, naming them.
    """
    images_dir, datasets_dir = Path(images_dir), Path(datasets_dir)
    missing_dirs = [str(d) for d in (images_dir, datasets_dir) if not d.is_dir()]
    if missing_dirs:
        raise CatalogError(f"folders not found: {missing_dirs}; check images_dir and datasets_dir")
    if image_names is not None or dataset_names is not None:
        pairing = _explicit(images_dir, datasets_dir, image_names, dataset_names)
    else:
        pairing = _by_stem(images_dir, datasets_dir)
    _report(pairing)
    return pairing


def _explicit(
    images_dir: Path,
    datasets_dir: Path,
    image_names: list[str] | None,
    dataset_names: list[str] | None,
) -> Pairing:
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
    used = {p for pr in pairs for p in (pr.raster, pr.catalog)}
    skipped = [
        Skipped(p, "not in image_filenames/dataset_filenames", expected=True)
        for folder in (images_dir, datasets_dir)
        for p in _visible(folder)
        if p not in used
    ]
    return Pairing(pairs, skipped)


def _by_stem(images_dir: Path, datasets_dir: Path) -> Pairing:
    skipped: list[Skipped] = []
    csvs: dict[str, list[Path]] = {}
    for p in _visible(datasets_dir):
        if p.is_file() and p.suffix.lower() == ".csv":
            csvs.setdefault(_stem(p), []).append(p)
        else:
            kind = "a folder" if p.is_dir() else "not a .csv file"
            skipped.append(Skipped(p, f"{kind} in the catalogue folder"))
    rasters: dict[str, list[Path]] = {}
    for p in _visible(images_dir):
        if p.is_dir():
            skipped.append(Skipped(p, "a folder in the image folder"))
        elif p.name.lower().endswith(SIDECAR_SUFFIXES):
            skipped.append(Skipped(p, "a raster sidecar (world file, overview, ...)", True))
        else:
            rasters.setdefault(_stem(p), []).append(p)
    _check_catalogs(csvs, rasters, images_dir, datasets_dir)
    pairs = []
    for stem, (csv,) in csvs.items():
        raster, extra = _one_raster(stem, rasters.pop(stem))
        pairs.append(Pair(stem, raster, csv))
        skipped += [Skipped(p, f"raw data of the label {raster.name}", True) for p in extra]
    skipped += [
        Skipped(p, f"no catalogue {stem}.csv in {datasets_dir}")
        for stem, paths in rasters.items()
        for p in paths
    ]
    return Pairing(pairs, skipped)


def _check_catalogs(
    csvs: dict[str, list[Path]],
    rasters: dict[str, list[Path]],
    images_dir: Path,
    datasets_dir: Path,
) -> None:
    """Refuse no catalogue at all, catalogues without a raster and two catalogues for a stem."""
    unpaired = sorted(s for s in csvs if s not in rasters)
    if unpaired or not csvs:
        shown = [str(p) for s in unpaired for p in csvs[s]] or f"no CSV in {datasets_dir}"
        raise CatalogError(
            f"catalogues without a raster of the same stem in {images_dir}: {shown}; "
            "rename them or pass image_filenames/dataset_filenames"
        )
    twice = {s: [str(p) for p in ps] for s, ps in csvs.items() if len(ps) > 1}
    if twice:
        raise CatalogError(
            f"several catalogues share a stem: {twice}; keep one per raster, or pass "
            "image_filenames/dataset_filenames"
        )


def _one_raster(stem: str, paths: list[Path]) -> tuple[Path, list[Path]]:
    """The raster of a stem and the data files its label describes; ambiguous stems raise."""
    if len(paths) == 1:
        return paths[0], []
    labels = [p for p in paths if p.suffix.lower() in LABEL_SUFFIXES]
    data = [p for p in paths if p.suffix.lower() in LABELLED_DATA_SUFFIXES]
    if len(labels) == 1 and len(labels) + len(data) == len(paths):
        return labels[0], data
    raise CatalogError(
        f"several files could be the raster of catalogue {stem}.csv: {[str(p) for p in paths]}; "
        "keep one per stem in the image folder, or pass image_filenames/dataset_filenames"
    )


def _report(pairing: Pairing) -> None:
    """Log every pair and skipped file; warn once about skipped files that look like mistakes."""
    for p in pairing.pairs:
        log.info("paired %s with %s", p.catalog, p.raster)
    for s in pairing.skipped:
        log.info("skipped %s: %s", s.path, s.reason)
    odd = [s for s in pairing.skipped if not s.expected]
    if odd:
        shown = "; ".join(f"{s.path.name} ({s.reason})" for s in odd[:10])
        more = f"; and {len(odd) - 10} more" if len(odd) > 10 else ""
        warnings.warn(
            f"paired {len(pairing)} catalogue(s) with rasters; skipped {len(odd)} file(s): "
            f"{shown}{more} (see pair_files(...).table())",
            stacklevel=3,
        )
