"""Catalogue figures: overview with objects drawn, cumulative size-frequency distribution."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from tiling.radiometry.stretch import fit_stretch
from tiling.sources import RasterSource, open_raster


def display_stretch(
    img: np.ndarray, nodata: float | None, pct: tuple[float, float]
) -> np.ma.MaskedArray:
    """[C, h, w] raster dtype -> masked [h, w, 3] or [h, w] float in 0..1, nodata masked.

    Percentiles ``pct`` of the valid pixels (not nodata, not NaN) map to 0 and 1, per band: a
    linear :mod:`tiling.radiometry.stretch` fitted on them (NaN shown as 0).
    """
    bands = (img[:3] if img.shape[0] >= 3 else img[:1]).astype(float)
    mask = np.isnan(bands).any(0)
    if nodata is not None and not np.isnan(nodata):
        mask |= (bands == nodata).all(0)
    out: np.ndarray = np.zeros(bands.shape, float)
    if not mask.all():
        stretch = fit_stretch("linear", bands[:, ~mask], p_low=pct[0], p_high=pct[1])
        out = stretch.apply(bands, dtype=np.float64)
    out = np.moveaxis(out, 0, -1) if out.shape[0] == 3 else out[0]
    m = np.broadcast_to(mask[..., None], out.shape) if out.ndim == 3 else mask
    return np.ma.masked_array(out, m)


def plot_overview(
    raster: str | Path | RasterSource,
    catalog: pd.DataFrame,
    *,
    max_size: int = 1024,
    percentiles: tuple[float, float] = (2, 98),
    title: str | None = None,
) -> Figure:
    """Downsampled overview (``read_overview``, never whole) with objects as circles by label.

    The axes are in full-resolution raster pixels (the overview is drawn over the raster's extent),
    so the catalogue's ``x``, ``y``, ``diameter`` are drawn as they are.
    """
    src = open_raster(raster) if not isinstance(raster, RasterSource) else raster
    img, scale = src.read_overview(max_size)
    name, nodata, extent = Path(src.path).name, src.nodata, (0, src.width, src.height, 0)
    if src is not raster:
        src.close()
    fig = Figure(figsize=(7, 7))
    ax = fig.add_subplot()
    ax.set_facecolor("0.5")
    ax.imshow(
        display_stretch(img, nodata, percentiles),
        cmap="gray",
        interpolation="nearest",
        extent=extent,
    )
    cmap = mpl.colormaps["tab10"]
    for k, (lab, grp) in enumerate(catalog.groupby("label", sort=True)):
        for x, y, d in grp[["x", "y", "diameter"]].to_numpy():
            ax.add_patch(Circle((x, y), d / 2, fill=False, lw=0.8, color=cmap(k % 10)))
        ax.plot([], [], "o", mfc="none", color=cmap(k % 10), label=f"{lab} ({len(grp)})")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])  # circles at the border do not widen the view
    if len(catalog):
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"{name}: {len(catalog)} objects (overview scale {scale:.3g})")
    ax.set_xlabel("column (px)")
    ax.set_ylabel("row (px)")
    return fig


def plot_size_frequency(
    catalogs: dict[str, pd.DataFrame] | pd.DataFrame, *, by: str | None = "label"
) -> Figure:
    """Cumulative size-frequency N(>=D) vs D (px) on log-log axes, one line per raster or label."""
    if isinstance(catalogs, pd.DataFrame):
        groups = dict(tuple(catalogs.groupby(by))) if by else {"all": catalogs}
    else:
        groups = catalogs
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    for name, df in groups.items():
        d = np.sort(df["diameter"].to_numpy(float))[::-1]
        ax.step(d, np.arange(1, len(d) + 1), where="post", label=f"{name} ({len(d)})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("diameter D (px)")
    ax.set_ylabel("cumulative number N(≥D)")
    ax.set_title("Cumulative size-frequency distribution")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return fig
