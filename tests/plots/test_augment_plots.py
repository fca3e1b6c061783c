import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from augment import ContentWeightedSampler, build_transform
from plots.augment import plot_augmentations, plot_sampler_effect


@pytest.mark.parametrize("bands", [1, 3, 5])
def test_plot_augmentations(bands):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4000, (bands, 48, 48), dtype=np.uint16)
    target = {
        "boxes": np.array([[4.0, 4.0, 12.0, 12.0], [20.0, 30.0, 28.0, 38.0]]),
        "labels": [0, 1],
    }
    fig = plot_augmentations(
        image, target, build_transform("default"), n=5, seed=1, labels=["a", "b"]
    )
    assert isinstance(fig, Figure)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 6
    assert all(len(ax.patches) <= 2 for ax in shown) and len(shown[0].patches) == 2
    assert shown[0].images[0].get_array().ndim == (2 if bands == 1 else 3)


def test_plot_sampler_effect():
    tiles = pd.DataFrame({"tile_id": np.arange(40)})
    boxes = pd.DataFrame(
        {
            "tile_id": np.arange(20),
            "label": ["rare"] * 2 + ["common"] * 18,
            "diameter": np.linspace(3, 30, 20),
        }
    )
    sampler = ContentWeightedSampler(tiles, boxes, num_samples=200, seed=0)
    fig = plot_sampler_effect(tiles, boxes, sampler)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    heights = [p.get_height() for p in fig.axes[2].patches]
    assert heights[0] == pytest.approx(0.5) and heights[1] < 0.2
