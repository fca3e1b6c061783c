import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from plots.tiles import plot_split_counts, plot_tiles, plot_visible_fraction
from tests.conftest import write_geotiff
from tiling.store import build_tile_store, split_summary


@pytest.fixture(scope="module", params=[1, 3])
def store(request, tmp_path_factory):
    bands = request.param
    root = tmp_path_factory.mktemp(f"plots{bands}")
    rng = np.random.default_rng(0)
    data = rng.integers(100, 4000, size=(bands, 256, 320), dtype=np.uint16)
    data[:, :, :30] = 0
    path = write_geotiff(root / "field.tif", data, nodata=0)
    cat = pd.DataFrame(
        {
            "x": rng.uniform(0, 320, 60),
            "y": rng.uniform(0, 256, 60),
            "diameter": rng.uniform(4, 20, 60),
            "label": rng.choice(["fresh", "degraded"], 60),
        }
    )
    return build_tile_store([(path, cat)], root, tile_size=64, overlap=8, block_size=128,
                            split_fractions=(0.5, 0.25, 0.25), workers=0)  # fmt: skip


def test_plot_tiles(store):
    fig = plot_tiles(store, n=5, seed=1)
    assert isinstance(fig, Figure)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 5
    for ax in shown:
        tile_id = int(ax.get_title().split()[0][1:])
        assert len(ax.patches) == store.tiles.set_index("tile_id").loc[tile_id, "n_boxes"]
        rgb = ax.images[0].get_array()
        assert rgb.shape == (64, 64, 3) and rgb.min() >= 0 and rgb.max() <= 1
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == store.labels


def test_plot_tiles_ids_and_split(store):
    ids = store.split_ids("val")
    fig = plot_tiles(store, split="val", n=100)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == len(ids) and all(t.endswith(" val") for t in titles)
    fig = plot_tiles(store, tile_ids=[0])
    assert fig.axes[0].get_title().startswith("#0 field")
    first = fig.axes[0].images[0].get_array()
    assert np.allclose(first[:, :30], [1.0, 0.0, 1.0])  # nodata shown in magenta


def test_plot_split_counts(store):
    fig = plot_split_counts(store)
    summary = split_summary(store)
    tiles_ax, boxes_ax = fig.axes
    heights = [p.get_height() for p in tiles_ax.patches]
    assert heights[:3] == summary["tiles"].tolist()
    assert sum(p.get_height() for p in boxes_ax.patches) == len(store.boxes)


def test_plot_visible_fraction(store):
    fig = plot_visible_fraction(store)
    ax = fig.axes[0]
    total = sum(p.get_height() for p in ax.patches)
    assert total == len(store.boxes)
    assert ax.get_xlabel().startswith("visible fraction")
