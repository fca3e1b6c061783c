"""Lightning's progress bars, as widgets in JupyterLab and as text under papermill.

Lightning's :class:`~pytorch_lightning.callbacks.TQDMProgressBar` fixes its bar class when it is
imported: ``tqdm.auto`` whenever ipywidgets is installed, which draws frozen widgets in a
papermill run. :class:`ProgressBar` builds the same five bars (sanity check, train, validation,
test, predict) from :func:`tiling.progress.bar_class` instead, decided when each bar starts.
"""

from __future__ import annotations

import sys
from typing import Any

from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm
from tqdm.std import tqdm

from tiling.progress import bar_class


class ProgressBar(TQDMProgressBar):
    """Lightning's TQDM bars, drawn by the class that suits the front end (see module doc)."""

    def _bar(self, desc: str, *, leave: bool, line: int = 0, smoothing: float = 0.3) -> tqdm:
        """One bar with Lightning's options; ``line`` is its row below this process's first."""
        base = bar_class()
        padded = type(
            f"Lightning{base.__name__}", (base,), {"format_num": staticmethod(Tqdm.format_num)}
        )
        return padded(
            desc=desc,
            position=2 * self.process_position + line,
            disable=self.is_disabled,
            leave=leave,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=smoothing,
            bar_format=self.BAR_FORMAT,
        )

    def init_sanity_tqdm(self) -> Any:
        """The validation sanity check's bar (removed when done)."""
        return self._bar(self.sanity_check_description, leave=False)

    def init_train_tqdm(self) -> Any:
        """The training bar: batches of the epoch, losses in the postfix."""
        return self._bar(self.train_description, leave=True, smoothing=0)

    def init_predict_tqdm(self) -> Any:
        """The prediction bar."""
        return self._bar(self.predict_description, leave=True, smoothing=0)

    def init_validation_tqdm(self) -> Any:
        """The validation bar, under the training bar during ``fit``."""
        has_main_bar = self.trainer.state.fn != "validate"
        return self._bar(self.validation_description, leave=not has_main_bar, line=has_main_bar)

    def init_test_tqdm(self) -> Any:
        """The test bar."""
        return self._bar("Testing", leave=True)
