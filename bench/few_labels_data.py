"""Data sets of the few-labels benchmark (:mod:`bench.few_labels`): a train and a test folder each.

Every case is two folders in the project's data layout, ``train/{images,datasets}`` and
``test/{images,datasets}``, read back with :func:`tiling.catalog.read_catalogs` exactly as the
notebook reads ``data/``:

- ``craters-N<n>``: one synthetic crater field with the ``varied`` terrain and another sun angle
  than the default data set (:mod:`tiling.synthetic.varied`), sized for :data:`FIELD_COUNT`
  objects (or the largest count when more) whatever counts the run asks for. The test raster
  is its top ``test_rows`` rows; after a gap of ``GAP`` rows (more than an ejecta blanket), the
  train raster is the contiguous band of full-width rows that holds the first ``n`` catalogue
  objects in the diameter range (all of them labelled, as a user who labels one region would).
- ``trees``: the real NEON tiles of ``/work/shared/data`` (MIT licence, ``LICENSE-deepforest``
  beside them): OSBS_029 (GeoTIFF, 61 crowns, CSV boxes) to train, SOAP_061 (PNG, 37 crowns,
  Pascal VOC boxes) to test. Both are 400 x 400 px RGB; the labels (Tree; Alive, Dead) become one
  class ``tree``. The two sites look nothing alike (green pines on sand against grey snags in
  green undergrowth), so this case measures a change of site.
- ``trees-OSBS``, ``trees-SOAP`` (``tree_half_cases``): one site each, as a user with one labelled
  raster has it: the left half (columns ``[0, 200)``) to train, the right half to test. A crown
  cut by the line is kept, clipped, on the side that holds at least half of its box.
"""

from __future__ import annotations

import dataclasses
import filecmp
import math
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from tiling.errors import ConfigError
from tiling.synthetic.craters import generate_crater_field

GAP = 192  # rows between the test and the train region of the crater field
CRATER_WIDTH = 1536  # px
CRATER_SEED = 14
CRATER_SUN = {"sun_azimuth": 200.0, "sun_elevation": 20.0}  # default data set: 315/30, 290/35
CRATER_DIAMETERS = (8.0, 120.0)  # px, the notebook's min/max_diameter
#: The crater field is sized for at least this many training objects, whatever the counts of
#: the run: one field for every run up to it, so that a case's rasters (and so its tile store
#: and finished trials) do not change with the other counts asked for beside it.
FIELD_COUNT = 1000
BOX_COLUMNS = {k: k for k in ("xmin", "ymin", "xmax", "ymax", "label")}


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark data set on disk.

    Attributes:
        name: ``craters-N100``, ``trees``...
        root: holds ``train/`` and ``test/`` (each ``images/`` + ``datasets/``).
        n_train: labelled objects in the train raster (in the diameter range).
        columns: catalogue column names for :func:`tiling.catalog.read_catalogs` ({} = x/y/diameter).
        diameters: (min, max) diameter filter in px.
    """

    name: str
    root: Path
    n_train: int
    columns: dict[str, str]
    diameters: tuple[float, float]

    def folder(self, part: str) -> tuple[Path, Path]:
        """``(images_dir, datasets_dir)`` of ``part`` ("train" or "test")."""
        return self.root / part / "images", self.root / part / "datasets"


def crater_cases(work: Path, counts: list[int], test_rows: int = 768) -> list[Case]:
    """One case per count of labelled objects, all cut from one varied crater field.

    Raises:
        ConfigError: a count larger than the field can hold.
    """
    field_dir = work / "craters-field"
    height = _field_height(max(*counts, FIELD_COUNT), test_rows)
    catalogue = generate_crater_field(
        field_dir / "field.tif", field_dir / "field.csv", height=height, width=CRATER_WIDTH,
        seed=CRATER_SEED, varied=True, **CRATER_SUN,
    )  # fmt: skip
    lo, hi = CRATER_DIAMETERS
    inside = catalogue[catalogue["diameter"].between(lo, hi)].sort_values("y")
    cases = []
    for n in counts:
        root = work / f"craters-N{n}"
        usable = inside[inside["y"] >= test_rows + GAP]
        if len(usable) < n:
            raise ConfigError(
                f"the crater field holds {len(usable)} objects below the test region, fewer than "
                f"N={n}; lower the count (the field is sized for the largest count with a 1.6x margin)"
            )
        end = min(math.ceil(usable["y"].iloc[n - 1]) + 1, height)
        _crop(field_dir / "field.tif", catalogue, root / "train", "train", test_rows + GAP, end)
        _crop(field_dir / "field.tif", catalogue, root / "test", "test", 0, test_rows)
        cases.append(Case(f"craters-N{n}", root, n, {}, CRATER_DIAMETERS))
    return cases


def _field_height(count: int, test_rows: int) -> int:
    """Rows of a field that holds ``count`` objects below the test region (a 1.6x margin)."""
    per_row = 1.2e-4 * CRATER_WIDTH  # objects of 8-120 px per row at the default density
    return 128 * math.ceil((test_rows + GAP + 1.6 * count / per_row) / 128)


def _publish(fresh: Path, dest: Path) -> None:
    """Move ``fresh`` to ``dest`` unless ``dest`` holds the same bytes already.

    A raster's modification time is part of a tile store's key, so a benchmark run that writes
    the same data again keeps the stores, and the finished trials, of the runs before it.
    """
    if dest.is_file() and filecmp.cmp(fresh, dest, shallow=False):
        fresh.unlink()
    else:
        os.replace(fresh, dest)


def _crop(raster: Path, catalogue: pd.DataFrame, out: Path, name: str, top: int, end: int) -> None:
    """Write rows ``[top, end)`` of ``raster`` and the objects centred there (y shifted)."""
    import rasterio
    from rasterio.windows import Window

    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "datasets").mkdir(parents=True, exist_ok=True)
    with rasterio.open(raster) as src:
        window = Window(0, top, src.width, end - top)
        profile = src.profile | {
            "height": end - top,
            "transform": src.window_transform(window),
        }
        pixels = src.read(window=window)
    fresh = out / "images" / f"{name}.new.tif"
    with rasterio.open(fresh, "w", **profile) as dst:
        dst.write(pixels)
    _publish(fresh, out / "images" / f"{name}.tif")
    rows = catalogue[(catalogue["y"] >= top) & (catalogue["y"] < end)]
    rows = rows.assign(y=rows["y"] - top)
    rows.to_csv(out / "datasets" / f"{name}.csv", index=False, float_format="%.3f")


def tree_case(work: Path, shared: Path) -> Case:
    """OSBS_029 to train, SOAP_061 to test (boxes, one class ``tree``).

    Raises:
        ConfigError: the NEON files are not under ``shared``.
    """
    osbs, soap = shared / "neon-osbs-029", shared / "neon-soap-061"
    needed = [osbs / "OSBS_029.tif", osbs / "OSBS_029.csv", soap / "SOAP_061.png"]
    missing = [str(p) for p in [*needed, soap / "SOAP_061.xml"] if not p.is_file()]
    if missing:
        raise ConfigError(f"NEON tree tiles not found: {missing}; pass --shared-data DIR")
    root = work / "trees"
    for part in ("train", "test"):
        for sub in ("images", "datasets"):
            (root / part / sub).mkdir(parents=True, exist_ok=True)
    for source, dest in [(needed[0], root / "train" / "images" / "OSBS_029.tif"),
                         (needed[2], root / "test" / "images" / "SOAP_061.png")]:  # fmt: skip
        fresh = dest.with_name(f"{dest.stem}.new{dest.suffix}")
        shutil.copyfile(source, fresh)
        _publish(fresh, dest)
    train = pd.read_csv(needed[1]).drop(columns=["image_path"]).assign(label="tree")
    train.to_csv(root / "train" / "datasets" / "OSBS_029.csv", index=False)
    voc_boxes(soap / "SOAP_061.xml").to_csv(
        root / "test" / "datasets" / "SOAP_061.csv", index=False
    )
    return Case("trees", root, len(train), BOX_COLUMNS, (0.0, 1000.0))


def tree_half_cases(work: Path, shared: Path) -> list[Case]:
    """Each NEON tile alone: left half to train, right half to test (PNG rasters, box CSVs).

    Raises:
        ConfigError: the NEON files are not under ``shared``.
    """
    from PIL import Image

    sites = {
        "OSBS": (shared / "neon-osbs-029" / "OSBS_029.tif", shared / "neon-osbs-029" / "OSBS_029.csv"),
        "SOAP": (shared / "neon-soap-061" / "SOAP_061.png", shared / "neon-soap-061" / "SOAP_061.xml"),
    }  # fmt: skip
    missing = [str(p) for pair in sites.values() for p in pair if not p.is_file()]
    if missing:
        raise ConfigError(f"NEON tree tiles not found: {missing}; pass --shared-data DIR")
    found = []
    for site, (raster, labels) in sites.items():
        pixels = _rgb_pixels(raster)
        if labels.suffix == ".xml":
            boxes = voc_boxes(labels)
        else:
            boxes = pd.read_csv(labels)[["xmin", "ymin", "xmax", "ymax"]].assign(label="tree")
        cut = pixels.shape[1] // 2
        root = work / f"trees-{site}"
        counts = {}
        for part, (x0, x1) in (("train", (0, cut)), ("test", (cut, pixels.shape[1]))):
            kept = _boxes_in_columns(boxes, x0, x1)
            counts[part] = len(kept)
            (root / part / "images").mkdir(parents=True, exist_ok=True)
            (root / part / "datasets").mkdir(parents=True, exist_ok=True)
            dest = root / part / "images" / f"{site}_{part}.png"
            fresh = dest.with_name(f"{dest.stem}.new.png")
            Image.fromarray(np.ascontiguousarray(pixels[:, x0:x1])).save(fresh)
            _publish(fresh, dest)
            kept.to_csv(root / part / "datasets" / f"{site}_{part}.csv", index=False)
        found.append(Case(f"trees-{site}", root, counts["train"], BOX_COLUMNS, (0.0, 1000.0)))
    return found


def _rgb_pixels(path: Path) -> np.ndarray:
    """The first three bands of an image file as uint8 [H, W, 3]."""
    import rasterio

    with rasterio.open(path) as src:
        return np.moveaxis(src.read([1, 2, 3]), 0, -1).astype(np.uint8)


def _boxes_in_columns(boxes: pd.DataFrame, x0: int, x1: int) -> pd.DataFrame:
    """Boxes clipped to columns ``[x0, x1)`` (x shifted by ``-x0``), kept when >= half remains."""
    left = boxes["xmin"].clip(x0, x1)
    right = boxes["xmax"].clip(x0, x1)
    keep = (right - left) >= 0.5 * (boxes["xmax"] - boxes["xmin"])
    out = boxes.assign(xmin=left - x0, xmax=right - x0)[keep]
    return out.reset_index(drop=True)


def voc_boxes(path: Path) -> pd.DataFrame:
    """The boxes of a Pascal VOC annotation: ``xmin, ymin, xmax, ymax`` (px) and ``label="tree"``."""
    corners = [
        [float(obj.findtext(f"bndbox/{k}", "nan")) for k in ("xmin", "ymin", "xmax", "ymax")]
        for obj in ET.parse(path).getroot().iter("object")
    ]
    frame = pd.DataFrame(np.array(corners).reshape(-1, 4), columns=["xmin", "ymin", "xmax", "ymax"])
    return frame.assign(label="tree")
