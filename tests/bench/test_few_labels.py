"""The few-labels benchmark's run parameters (its trials, not its timings)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.few_labels import parameters
from bench.few_labels_data import Case


@pytest.mark.parametrize(("tta", "grid_tta"), [("d4", "d4"), ("flips", "flips"), ("none", None)])
def test_trials_choose_thresholds_with_the_views_of_the_tta_rows(
    tmp_path: Path, tta: str, grid_tta: str | None
) -> None:
    """``--tta d4`` rows are scored at ``@d4`` thresholds: the grid must measure those views."""
    args = argparse.Namespace(tile_size=128, workers=0, seed=0, precision="32", tta=tta)
    case = Case("craters-N100", tmp_path, 100, {}, (8.0, 120.0))

    arguments = parameters(args, case, 300).grid_arguments()

    assert arguments["tta"] == grid_tta
    assert arguments["base"].max_steps == 300
