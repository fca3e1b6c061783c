r"""``raster-detect evaluate``: a predicted catalogue against the true one, as the notebook does.

The true catalogue is read and cleaned like the notebook's catalogues (same options and defaults:
:func:`~tiling.catalog.read.read_catalog`, then
:func:`~tiling.catalog.collect.clean_catalog`); the prediction (``raster-detect predict``'s CSV)
keeps the objects in the same diameter range; :func:`~model.evaluate.evaluate_catalog` compares
them. Written into ``--output-dir``: ``evaluation.json`` (:meth:`~model.evaluate.Evaluation.save`)
and ``figures/{matches,pr_curve,recall_by_diameter,size_frequency_comparison,miss_heatmap}.png``::

    raster-detect evaluate --pred big.csv --truth data/datasets/big.csv \
        --raster data/images/big.tif --output-dir runs/eval
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tiling import options as o
from tiling.errors import CatalogError
from tiling.outputs import check_output_file, check_output_folder, disk_full_errors

if TYPE_CHECKING:
    import pandas as pd

    from model.evaluate import Evaluation

log = logging.getLogger(__name__)

#: Writes the evaluation's figures (raster, evaluation, predictions, truth, folder) -> paths.
Figures = Callable[[Path, "Evaluation", "pd.DataFrame", "pd.DataFrame", Path], list[Path]]

SUMMARY = "compare a predicted catalogue with the true one: evaluation.json and figures"
#: The figures written (``plots.evaluation.evaluation_figures``).
FIGURES = ("matches", "pr_curve", "recall_by_diameter", "size_frequency_comparison", "miss_heatmap")
#: Options of the true catalogue, shared with the notebook's parameters (same defaults).
CATALOG_OPTIONS = (
    "columns",
    "coords",
    "diameter_unit",
    "one_based",
    "min_diameter",
    "max_diameter",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``raster-detect evaluate``."""
    from tiling.parameters import add_options
    from tiling.store.parameters import StoreParameters

    parser.add_argument("--pred", required=True, type=Path, help="predicted catalogue CSV (px)")
    parser.add_argument("--truth", required=True, type=Path, help="true catalogue CSV")
    parser.add_argument("--raster", required=True, type=Path, help="the raster both refer to")
    parser.add_argument(
        "--output-dir", required=True, type=Path, help="folder for evaluation.json and figures/"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace earlier outputs (default: refuse)"
    )
    parser.add_argument(
        "--match", choices=("iou", "center"), default="iou", help="matching rule (default: iou)"
    )
    parser.add_argument(
        "--iou", type=o.probability, default=0.5, help="minimum box IoU of a match (default: 0.5)"
    )
    for name, what in (("center", "centre distance"), ("diameter", "diameter difference")):
        parser.add_argument(
            f"--{name}-tol",
            type=o.non_negative_float,
            default=0.5,
            help=f"--match center: largest {what} / smaller diameter (default: 0.5)",
        )
    parser.add_argument(
        "--by-label",
        action="store_true",
        help="match only objects of the same label (default: any labels match)",
    )
    add_options(parser.add_argument_group("true catalogue"), StoreParameters, CATALOG_OPTIONS)


def run(args: argparse.Namespace, figures: Figures | None = None) -> int:
    """Evaluate, write ``evaluation.json``, then ``figures(...)``; exit code 0.

    Args:
        args: the parsed options.
        figures: writes the figures (the entry point passes
            :func:`plots.run_figures.evaluation_files`: no package below ``plots`` imports it).
    """
    from model.evaluate import evaluate_catalog
    from tiling.catalog import filters

    paths = output_paths(args)
    truth = read_truth(args)
    pred = filters.apply_filters(
        read_predictions(args.pred),
        filters.min_diameter(args.min_diameter),
        filters.max_diameter(args.max_diameter),
    )
    evaluation = evaluate_catalog(
        pred,
        truth,
        iou=args.iou,
        match=args.match,
        center_tol=args.center_tol,
        diameter_tol=args.diameter_tol,
        by_label=args.by_label,
    )
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    with disk_full_errors(paths[0]):
        evaluation.save(paths[0])
    if figures is not None:
        figures(args.raster, evaluation, pred, truth, args.output_dir)
    log.info("%s\n-> %s", evaluation, paths[0])
    return 0


def output_paths(args: argparse.Namespace) -> list[Path]:
    """``evaluation.json`` and the figure files, checked before any work (none may be an input)."""
    folder = check_output_folder(args.output_dir, option="--output-dir")
    paths = [folder / "evaluation.json"] + [folder / "figures" / f"{n}.png" for n in FIGURES]
    inputs = [args.pred, args.truth, args.raster]
    for path in paths:
        check_output_file(path, option="--output-dir", inputs=inputs, overwrite=args.overwrite)
    return paths


def read_truth(args: argparse.Namespace) -> pd.DataFrame:
    """The true catalogue in pixels of ``args.raster``, cleaned like the notebook's."""
    from tiling.catalog.collect import clean_catalog
    from tiling.catalog.read import read_catalog

    raw = read_catalog(
        args.truth,
        args.raster,
        columns=args.columns or None,
        coords=args.coords,
        diameter_unit=args.diameter_unit,
        one_based=args.one_based,
    )
    clean, _report = clean_catalog(
        raw, min_diameter=args.min_diameter, max_diameter=args.max_diameter
    )
    return clean


def read_predictions(path: Path) -> pd.DataFrame:
    """The predicted catalogue: ``x``, ``y``, ``diameter`` (px), ``score`` and ``label`` if present.

    Raises:
        CatalogError: unreadable file, a missing column, or a bad value (naming row and column).
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path, index_col=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise CatalogError(f"{path}: cannot read the predicted catalogue ({err})") from err
    missing = [c for c in ("x", "y", "diameter") if c not in frame.columns]
    if missing:
        raise CatalogError(
            f"{path} lacks column(s) {missing}; give the CSV written by raster-detect predict "
            "(x, y, diameter in pixels, score, label)"
        )
    for column, (what, valid) in _RULES.items():
        if column in frame.columns:
            frame[column] = _numbers(frame[column], what, valid, path)
    if "label" in frame.columns:
        frame["label"] = frame["label"].astype(str)
    return frame


#: Column -> (what it must be, mask of valid values) for a predicted catalogue.
_RULES: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "x": ("a finite number", np.isfinite),
    "y": ("a finite number", np.isfinite),
    "diameter": ("a finite number above 0", lambda v: np.isfinite(v) & (v > 0)),
    "score": ("a number between 0 and 1", lambda v: (v >= 0) & (v <= 1)),
}


def _numbers(values: pd.Series, what: str, valid: Callable[[Any], Any], path: Path) -> pd.Series:
    """``values`` as floats when ``valid`` holds for each, else a CatalogError naming the row."""
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    bad = ~np.asarray(valid(numbers.to_numpy()), dtype=bool)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = values.iloc[row]
        value = value.item() if isinstance(value, np.generic) else value
        raise CatalogError(
            f"{path}: row {row + 2}, column {values.name!r}: {value!r} is not {what}"
        )
    return numbers
