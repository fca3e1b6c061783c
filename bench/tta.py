"""Benchmark: test-time augmentation in whole-raster prediction, its cost and its gain.

Cuts a ``--crop`` x ``--crop`` window from the top-left corner of ``--raster`` (written once to
``bench/out/``, with the catalogue's objects whose centre lies inside), then runs
``predict_raster`` with ``tta=None``, ``"flips"`` and ``"d4"`` over it in this one process, one
after the other, and scores each catalogue against the truth with
``model.evaluate.evaluate_catalog`` (box IoU >= 0.5). Prints, side by side: seconds and the time
ratio against ``tta=None`` (same run, same machine load), the number of detections, precision,
recall and F1 at the score threshold, the best F1 over all thresholds and AP; then precision,
recall and F1 of the same catalogue cut at the thresholds stored in the checkpoint: ``@1`` at the
one-pass one (``score_thresh_f1``), ``@own`` at the one chosen with the mode's own views (what
``predict_raster`` takes by default, :func:`model.inference.predict.choose_score_thresh`), and
at each ``--at`` threshold (for example the fixed 0.3 of older defaults).

Every mode runs at the same threshold (``--score-thresh``, default 0.05) so that AP compares the
whole ranking; precision/recall at the threshold are printed too. TTA scores are averages over
views, so the F1-best threshold differs between modes: compare ``best_f1`` rather than P/R at
one threshold.

Run (a trained checkpoint, e.g. ``raster-detect train``'s ``best.ckpt``)::

    .venv/bin/python -m bench.tta --checkpoint runs/latest/best.ckpt \
        --raster data/images/crater_field_b.tif --catalog data/datasets/crater_field_b.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).parent / "out"
MODES = (None, "flips", "d4")


def crop(raster: Path, catalog: Path, size: int) -> tuple[Path, pd.DataFrame]:
    """The top-left ``size`` x ``size`` window of ``raster`` as a GeoTIFF, and its objects."""
    import rasterio
    from rasterio.windows import Window

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"tta_{raster.stem}_{size}.tif"
    if not path.exists():
        with rasterio.open(raster) as src:
            window = Window(0, 0, min(size, src.width), min(size, src.height))
            profile = src.profile | {
                "height": window.height,
                "width": window.width,
                "transform": src.window_transform(window),
            }
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(src.read(window=window))
    truth = pd.read_csv(catalog)
    inside = (truth["x"] < size) & (truth["y"] < size)
    return path, truth[inside].reset_index(drop=True)


def in_range(catalog: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    """The objects of ``catalog`` with a diameter in [--min-diameter, --max-diameter] px."""
    keep = catalog["diameter"].between(args.min_diameter, args.max_diameter)
    return catalog[keep].reset_index(drop=True)


def best_f1(curve: pd.DataFrame) -> float:
    """Highest F1 along a precision-recall curve (one row per prediction)."""
    if curve.empty:
        return float("nan")
    p, r = curve["precision"].to_numpy(), curve["recall"].to_numpy()
    return float(np.nanmax(np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)))


def cut_at(pred: pd.DataFrame, truth: pd.DataFrame, thresh: float, name: str) -> dict[str, object]:
    """``thr<name>``, ``p<name>``, ``r<name>``, ``f1<name>`` of ``pred`` cut at score ``thresh``."""
    from model.evaluate import evaluate_catalog

    summary = evaluate_catalog(pred[pred["score"] >= thresh], truth, iou=0.5).summary
    return {
        f"thr{name}": thresh,
        f"p{name}": summary["precision"],
        f"r{name}": summary["recall"],
        f"f1{name}": summary["f1"],
    }


def measure(args: argparse.Namespace, raster: Path, truth: pd.DataFrame) -> list[dict[str, object]]:
    """One row per TTA mode: time, detections and the scores of its catalogue."""
    from model.evaluate import evaluate_catalog
    from model.inference.predict import choose_score_thresh, predict_raster

    rows = []
    for mode in MODES:
        start = time.perf_counter()
        pred = predict_raster(
            args.checkpoint,
            raster,
            score_thresh=args.score_thresh,
            batch_size=args.batch_size,
            progress=False,
            tta=mode,  # type: ignore[arg-type]
        )
        seconds = time.perf_counter() - start
        pred = in_range(pred, args)
        result = evaluate_catalog(pred, truth, iou=0.5)
        summary = result.summary
        one_pass, _ = choose_score_thresh("auto", args.checkpoint, tta=None)
        own, _ = choose_score_thresh("auto", args.checkpoint, tta=mode)  # type: ignore[arg-type]
        cuts = {**cut_at(pred, truth, one_pass, "@1"), **cut_at(pred, truth, own, "@own")}
        for thresh in args.at:
            cuts.update(cut_at(pred, truth, thresh, f"@{thresh:g}"))
        rows.append(
            {
                "tta": mode or "none",
                "seconds": seconds,
                "n_pred": summary["n_pred"],
                "precision": summary["precision"],
                "recall": summary["recall"],
                "f1": summary["f1"],
                "best_f1": best_f1(result.pr_curve),
                "ap": summary["ap"],
                **cuts,
            }
        )
    return rows


def main() -> None:
    """Parse the options, run the three modes, print the table."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--raster", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True, help="truth CSV (x, y, diameter)")
    parser.add_argument("--crop", type=int, default=1024, help="side of the window scored [px]")
    parser.add_argument("--score-thresh", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--min-diameter", type=float, default=8.0, help="px; truth and detections (the notebook's)"
    )
    parser.add_argument("--max-diameter", type=float, default=120.0, help="px; the same")
    parser.add_argument(
        "--at", type=float, nargs="*", default=[], help="also cut every catalogue at these scores"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    raster, truth = crop(args.raster, args.catalog, args.crop)
    truth = in_range(truth, args)
    table = pd.DataFrame(measure(args, raster, truth))
    table["time_ratio"] = table["seconds"] / float(table["seconds"].iloc[0])
    print(f"{args.crop} x {args.crop} px of {args.raster.name}, {len(truth)} true objects")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
