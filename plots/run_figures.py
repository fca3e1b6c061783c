"""The figures the command line writes into a run folder (the notebook draws the same ones).

The command line is an entry point like the notebook (:mod:`plots.cli`): it hands the results of
``raster-detect train`` and ``raster-detect evaluate`` to these functions, so that no package
below :mod:`plots` imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib import pyplot as plt

from plots.catalog import plot_size_frequency
from plots.evaluation import evaluation_figures
from plots.figures import save_figure
from plots.tiles import store_figures
from plots.training import grid_figures

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from model.evaluate import Evaluation
    from model.parameters import RunParameters
    from model.training.command import TrainingRun


def training_figures(result: TrainingRun, params: RunParameters) -> list[Path]:
    """Write the cheap figures of a training run into ``output_dir/figures``; their paths.

    The size-frequency plot, the store's tiles, split counts and visible fractions, and (when a
    trial finished) the grid heatmap and training curves; no augmentation draws, raster overviews
    or predictions.
    """
    figures = {"size_frequency": plot_size_frequency(result.data.catalogs)}
    figures.update(store_figures(result.store, seed=params.seed))
    if result.results["status"].isin(["done", "truncated"]).any():
        figures.update(grid_figures(result.results, params.grid, backbone=params.backbone))
    return _save(figures, Path(params.output_dir))


def evaluation_files(
    raster: Path, evaluation: Evaluation, pred: pd.DataFrame, truth: pd.DataFrame, folder: Path
) -> list[Path]:
    """Write the notebook's evaluation figures into ``folder/figures``; their paths."""
    return _save(evaluation_figures(raster, evaluation, pred, truth), folder)


def _save(figures: dict[str, Figure], folder: Path) -> list[Path]:
    """Save each figure as ``folder/figures/<name>.png`` and close them all."""
    paths = [save_figure(fig, folder, name) for name, fig in figures.items()]
    plt.close("all")
    return paths
