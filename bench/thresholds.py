"""Benchmark: the cost of choosing a trial's score thresholds with test-time views.

After training, every trial runs :func:`model.training.thresholds.validation_report`: its best
checkpoint over the validation tiles (thresholds) and, when a threshold was found, once over the
test tiles (``test/*`` in one pass). With ``tta`` the views of that mode run over the validation
tiles instead of one pass (the one pass is their identity view). This bench times
:func:`view_detections` over each split for ``tta=None``, ``"flips"`` and ``"d4"`` in one
process, one after the other, and prints seconds per split, ``report_s`` (the mode's validation
passes plus the one-pass test pass: the report's cost when a threshold is found) and its ratio
against None.

The checkpoint is ``--checkpoint``, or by default a freshly initialised model of the notebook's
default config resolved for the store: its forward passes cost what a trained model's do, but it
finds no objects, so the fusion of the views' boxes (a trained model's cost on top) is not timed
then; pass a trained checkpoint to include it::

    .venv/bin/python -m bench.thresholds --store data/tiles/c77ebcaad8543d9e

Times are of this machine under its load; compare the rows of one run only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

MODES = (None, "flips", "d4")


def default_checkpoint(store: object, folder: Path) -> Path:
    """A default-config model for ``store``, untrained, saved in ``folder``."""
    from model.network.checkpoint import save_model_checkpoint
    from model.network.factory import build_retinanet
    from model.parameters import RunParameters
    from model.training.grid import trial_config

    config = trial_config(RunParameters().model_config(), {}, store)  # type: ignore[arg-type]
    torch.manual_seed(0)
    return save_model_checkpoint(build_retinanet(config).eval(), config, folder / "model.ckpt")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="a tile store folder")
    parser.add_argument("--checkpoint", type=Path, help="default: an untrained default model")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from model.network.checkpoint import load_model
    from model.training.thresholds import view_detections
    from tiling.store import TileStore

    store = TileStore(args.store)
    counts = store.tiles["split"].value_counts()
    print(f"store {args.store.name}: tile {store.tile_size} px, tiles {counts.to_dict()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or default_checkpoint(store, Path(tmp))
        _, config = load_model(checkpoint)
        for mode in MODES:
            row: dict[str, object] = {"tta": str(mode)}
            for split in ("val", "test"):
                start = time.perf_counter()
                found = view_detections(checkpoint, store, config, split=split, tta=mode)
                row[f"{split}_s"] = time.perf_counter() - start
                row[f"{split}_boxes"] = len(found[mode].scores)
            rows.append(row)
            print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.1f"), flush=True)
    table = pd.DataFrame(rows)
    table["report_s"] = table["val_s"] + table["test_s"].iloc[0]  # the test tiles: one pass
    table["ratio"] = table["report_s"] / table["report_s"].iloc[0]
    print()
    print(table.to_string(index=False, float_format="%.2f"))


if __name__ == "__main__":
    main()
