"""Progress bars that suit where the code runs: widgets in JupyterLab, text everywhere else.

``tqdm.auto`` picks its widget bar in *any* Jupyter kernel, papermill's included, where nobody
sees the widgets (the saved notebook keeps a frozen text repr of the first frame), and warns
``IProgress not found`` when ipywidgets is missing. Here the choice is made once, by
:func:`widgets_shown`:

- ``RASTER_DETECT_WIDGETS=1`` / ``0`` in the environment forces widgets / text;
- otherwise widgets when the code runs in an IPython kernel, ipywidgets is installed, and a
  Jupyter server started the kernel for a notebook session (JupyterLab, Notebook 7: the server
  sets ``JPY_SESSION_NAME`` in the kernel's environment; papermill, nbconvert and plain
  ``python`` do not).

Every long loop of the project takes its bar from :func:`progress_bar`; Lightning's bars take the
same class (:mod:`model.training.progress_bar`). ``TQDM_DISABLE=1`` still turns all of them off.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm.std import tqdm as text_tqdm

from tiling.errors import ConfigError

#: Environment variable that forces widget (``1``) or text (``0``) progress and interactive views.
WIDGETS_ENV = "RASTER_DETECT_WIDGETS"


def widgets_shown() -> bool:
    """True when a browser front end will render ipywidgets for this process (see module doc).

    Raises:
        ConfigError: ``RASTER_DETECT_WIDGETS`` holds something other than ``0``, ``1`` or empty.
    """
    forced = os.environ.get(WIDGETS_ENV, "").strip()
    if forced not in ("", "0", "1"):
        raise ConfigError(
            f"{WIDGETS_ENV}={forced!r}: use 1 (widgets), 0 (text) or leave it unset (automatic)"
        )
    if forced:
        return forced == "1"
    return (
        _in_kernel()
        and importlib.util.find_spec("ipywidgets") is not None
        and "JPY_SESSION_NAME" in os.environ
    )


def _in_kernel() -> bool:
    """True inside an IPython kernel (not a terminal IPython, not plain Python)."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def bar_class() -> type[text_tqdm]:
    """``tqdm.notebook.tqdm`` when :func:`widgets_shown`, else the text ``tqdm.std.tqdm``."""
    if widgets_shown():
        from tqdm.notebook import tqdm as widget_tqdm

        return widget_tqdm
    return text_tqdm


def progress_bar(iterable: Iterable[Any] | None = None, **options: Any) -> text_tqdm:
    """A tqdm bar of the class :func:`bar_class` picks.

    Args:
        iterable: what to iterate over (or ``None`` and call ``update``).
        **options: tqdm's keywords (``total``, ``desc``, ``unit``, ``disable``, ...).
    """
    return bar_class()(iterable, **options)
