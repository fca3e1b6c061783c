"""``raster-detect train``: the notebook's grid search from a run file, into the same run folder.

A run file is YAML holding any of the notebook's parameters (:class:`model.parameters.RunParameters`;
the others keep the notebook's defaults). The command runs the notebook's sections 1, 2 and 4 with
the same functions and keywords (:func:`train`) and writes into ``output_dir`` what the notebook
writes there::

    parameters.yaml        every parameter of this run (smoke settings applied)
    grid_results.csv, best.ckpt, best_config.yaml, trials/<id>/      (run_grid)
    figures/*.png          size_frequency, tiles_train, split_counts, visible_fraction,
                           grid_heatmap, training_curves (the cheap ones: no augmentation draws,
                           raster overviews or predictions; written by the entry point through
                           :func:`plots.run_figures.training_figures`)

Like the notebook, a second run into the same folder reuses finished trials and resumes
interrupted ones; the command asks for ``--overwrite`` before writing into a folder that holds a
run, so that a mistyped ``--output-dir`` cannot replace another run's tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.parameters import RunParameters
from tiling.errors import OutputError
from tiling.outputs import check_output_file, check_output_folder, disk_full_errors

if TYPE_CHECKING:
    import pandas as pd

    from tiling.catalog.collect import CatalogSet

log = logging.getLogger(__name__)

SUMMARY = "run the notebook's grid search from a YAML file of its parameters"
#: Files whose presence marks a folder as holding a run.
RUN_FILES = ("parameters.yaml", "grid_results.csv")


#: Writes a run's figures into its folder and returns their paths.
Figures = Callable[["TrainingRun", RunParameters], list[Path]]


@dataclasses.dataclass
class TrainingRun:
    """What :func:`train` produced: the cleaned catalogues, the tile store, the grid's table."""

    data: CatalogSet
    store: Any
    results: pd.DataFrame


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``raster-detect train``; the run file's keys are listed in the epilog."""
    from tiling.parameters import describe

    parser.add_argument(
        "--config", required=True, type=Path, help="run file: YAML of notebook parameters (below)"
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="run folder (default: the run file's output_dir, else runs/latest)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a folder that holds a run: finished trials of the same settings are "
        "reused, tables, best.ckpt and figures replaced (default: refuse)",
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "run file keys (name: help [unit] (default)):\n" + describe(RunParameters)


def run(args: argparse.Namespace, figures: Figures | None = None) -> int:
    """Read the run file, check the run folder, train, then ``figures(run, params)``; exit 0.

    Args:
        args: the parsed options.
        figures: writes the run's figures (the entry point passes
            :func:`plots.run_figures.training_figures`: no package below ``plots`` imports it).
    """
    from model.training.grid import best_trial
    from tiling.atomic import write_text_atomic

    changes = {"output_dir": str(args.output_dir)} if args.output_dir else {}
    params = RunParameters.from_yaml(args.config, **changes).resolved()
    out = check_run_folder(Path(params.output_dir), args.config, overwrite=args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    with disk_full_errors(out / "parameters.yaml"):
        write_text_atomic(out / "parameters.yaml", params.to_yaml())
    result = train(params)
    if figures is not None:
        figures(result, params)
    best = best_trial(result.results)
    log.info("best trial %s: val/map_50 = %.3f -> %s", best["trial"], best["val/map_50"], out)
    return 0


def check_run_folder(folder: Path, config: Path, *, overwrite: bool) -> Path:
    """Refuse a run folder that is a file, or that holds a run without ``overwrite``.

    Raises:
        OutputError: see :func:`tiling.outputs.check_output_folder`; or the folder holds
            ``parameters.yaml``/``grid_results.csv`` and ``overwrite`` is False; or the run
            file itself is the folder's ``parameters.yaml``.
    """
    check_output_folder(folder, option="--output-dir")
    check_output_file(
        folder / "parameters.yaml", option="--output-dir", inputs=[config], overwrite=True
    )
    held = [name for name in RUN_FILES if (folder / name).exists()]
    if held and not overwrite:
        raise OutputError(
            f"--output-dir {folder} holds a run already ({', '.join(held)}); pass --overwrite to "
            "continue it (finished trials reused, tables replaced), or choose another --output-dir"
        )
    return folder


def train(params: RunParameters) -> TrainingRun:
    """The notebook's sections 1, 2, 3b and 4: catalogues, tile store, pretraining, grid search.

    Args:
        params: the run's parameters, smoke settings applied (:meth:`RunParameters.resolved`).

    Returns:
        The :class:`TrainingRun`; the grid's files are in ``params.output_dir``.
    """
    import torch

    from model.pretrain import pretrain_backbone
    from model.training.grid import run_grid
    from tiling.catalog.collect import read_catalogs
    from tiling.store.build import build_tile_store

    torch.manual_seed(params.seed)
    if params.threads:  # as the notebook: the same numbers on any number of cores
        torch.set_num_threads(params.threads)
    data = read_catalogs(**params.catalog_arguments())
    store = build_tile_store(data.sources(), **params.store_arguments())
    path = Path(params.output_dir) / "pretrained_backbone.pt"
    pretrained = pretrain_backbone(store, path=path, **params.pretrain_arguments())
    if pretrained is not None:  # the notebook's section 3b: the grid starts from these weights
        params = dataclasses.replace(params, weights=str(pretrained))
    results = run_grid(store=store, output_dir=params.output_dir, **params.grid_arguments())
    return TrainingRun(data, store, results)
