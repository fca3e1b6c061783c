"""Saving figures into a run's output folder.

Every plotting function in :mod:`plots` takes data and returns a :class:`matplotlib.figure.Figure`;
the notebook shows it and hands it to :func:`save_figure`.
"""

from __future__ import annotations

import re
from pathlib import Path

from matplotlib.figure import Figure


def save_figure(fig: Figure, output_dir: str | Path, name: str, *, dpi: int = 120) -> Path:
    """Write ``fig`` as ``<output_dir>/figures/<name>.png`` and return the path.

    Args:
        fig: the figure to save.
        output_dir: the run's output folder (created if missing).
        name: a file stem; characters other than letters, digits, ``-`` and ``_`` become ``_``.
        dpi: resolution of the PNG.
    """
    folder = Path(output_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^A-Za-z0-9_-]+', '_', name)}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
