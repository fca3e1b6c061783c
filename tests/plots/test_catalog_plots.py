from matplotlib.figure import Figure
from matplotlib.patches import Circle

from plots.catalog import plot_overview, plot_size_frequency
from tiling.catalog import read_catalog


def test_overview_and_sfd(neon_csv, neon_tif):
    df = read_catalog(neon_csv, neon_tif)
    fig = plot_overview(neon_tif, df, max_size=128)
    assert isinstance(fig, Figure)
    circles = [p for p in fig.axes[0].patches if isinstance(p, Circle)]
    assert len(circles) == 61
    # the overview covers the raster's extent, so circles sit at the catalogue's own pixels
    first = df.iloc[0]
    assert circles[0].center == (first.x, first.y) and circles[0].radius == first.diameter / 2
    left, right, bottom, top = fig.axes[0].images[0].get_extent()
    assert (left, top) == (0, 0) and right == 400 and bottom == 400
    fig = plot_size_frequency({"osbs": df})
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].lines) == 1
    assert len(plot_size_frequency(df, by="label").axes[0].lines) == 1
