import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from model.evaluate import evaluate_catalog
from plots.evaluation import (
    plot_matches,
    plot_miss_heatmap,
    plot_pr_curve,
    plot_recall_by_diameter,
    plot_size_frequency_comparison,
)
from tests.conftest import write_geotiff
from tiling.errors import CatalogError


@pytest.fixture
def catalogues():
    rng = np.random.default_rng(1)
    truth = pd.DataFrame(
        {
            "x": rng.uniform(0, 300, 40),
            "y": rng.uniform(0, 200, 40),
            "diameter": rng.uniform(4, 20, 40),
        }
    )
    pred = truth.iloc[:30].assign(score=rng.uniform(0, 1, 30))
    pred = pd.concat(
        [pred, pd.DataFrame({"x": [5.0], "y": [5.0], "diameter": [6.0], "score": [0.9]})]
    )
    return pred, truth


def test_plots_return_figures(tmp_path, catalogues):
    pred, truth = catalogues
    ev = evaluate_catalog(pred, truth)
    path = write_geotiff(
        tmp_path / "r.tif", np.random.default_rng(0).integers(0, 255, (3, 200, 300), dtype=np.uint8)
    )
    fig = plot_matches(path, ev, max_size=150)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["hit (30)", "miss (10)", "false alarm (1)"]
    assert isinstance(plot_matches(path, pred=pred, truth=truth), Figure)
    assert "AP = " in plot_pr_curve(ev).axes[0].get_title()
    assert isinstance(plot_recall_by_diameter(ev), Figure)
    assert len(plot_size_frequency_comparison(pred, truth).axes[0].lines) == 2
    heat = plot_miss_heatmap(ev, (200, 300), cell=100)
    assert heat.axes[0].collections[0].get_array().shape == (2, 3)


def test_plot_matches_needs_catalogues(tmp_path):
    path = write_geotiff(tmp_path / "r.tif", np.zeros((1, 20, 20), np.uint8))
    with pytest.raises(CatalogError, match="give an evaluation"):
        plot_matches(path)
