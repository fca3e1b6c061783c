from matplotlib.figure import Figure
from matplotlib.patches import Circle

from plots.catalog import plot_overview, plot_size_frequency
from tiling.catalog import read_catalog


def test_overview_and_sfd(neon_csv, neon_tif):
    df = read_catalog(neon_csv, neon_tif)
    fig = plot_overview(neon_tif, df, max_size=128)
    assert isinstance(fig, Figure)
    assert sum(isinstance(p, Circle) for p in fig.axes[0].patches) == 61
    fig = plot_size_frequency({"osbs": df})
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].lines) == 1
    assert len(plot_size_frequency(df, by="label").axes[0].lines) == 1
