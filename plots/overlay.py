"""The objects drawn over a raster view: a catalogue, detections, or an evaluation's matches.

:func:`overlay_table` turns what the notebook has into one table with a ``kind`` per row:

- from an :class:`~model.evaluate.Evaluation`: detections that match the truth
  (``true positive``), detections that match nothing (``false positive``) and true objects that
  no detection found (``missed``), as in :func:`plots.evaluation.plot_matches`;
- from a catalogue alone: ``catalogue``; from detections alone: ``detection``.

:func:`select_objects` then picks the rows to draw for one view (inside it, above a score, of
some labels and kinds), at most ``limit`` of them, the largest first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
import pandas as pd
from matplotlib.colors import to_hex

from model.evaluate import Evaluation
from plots.evaluation import COLOURS as MATCH_COLOURS
from tiling.errors import CatalogError

#: Kind of each drawn object, and its colour (matches as in plot_matches).
KIND_COLOURS = {
    "true positive": to_hex(MATCH_COLOURS["hit"]),
    "false positive": to_hex(MATCH_COLOURS["false alarm"]),
    "missed": to_hex(MATCH_COLOURS["miss"]),
    "catalogue": to_hex("tab:cyan"),
    "detection": to_hex("tab:orange"),
}

#: Columns of an overlay table.
COLUMNS = ("x", "y", "diameter", "score", "label", "kind", "truth_diameter")


def overlay_table(
    evaluation: Evaluation | None = None,
    *,
    truth: pd.DataFrame | None = None,
    pred: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per object to draw, columns :data:`COLUMNS`.

    Args:
        evaluation: matches of detections against the truth; or give ``truth`` and/or ``pred``.
        truth: a catalogue ``x``, ``y``, ``diameter`` (px), optional ``label``.
        pred: detections ``x``, ``y``, ``diameter`` (px), optional ``score`` and ``label``.

    Returns:
        ``x``, ``y``, ``diameter`` (px), ``score`` (NaN for true objects), ``label`` (str, ``""``
        when absent), ``kind`` (a key of :data:`KIND_COLOURS`), ``truth_diameter`` (the matched
        true object's diameter for true positives, else NaN).

    Raises:
        CatalogError: nothing to draw was given, or a table lacks ``x``, ``y`` or ``diameter``.
    """
    if evaluation is not None:
        return _from_evaluation(evaluation)
    if truth is None and pred is None:
        raise CatalogError("overlay_table: give an evaluation, a truth catalogue or detections")
    parts = [
        _rows(frame, name, kind)
        for frame, name, kind in ((truth, "truth", "catalogue"), (pred, "pred", "detection"))
        if frame is not None
    ]
    return pd.concat(parts, ignore_index=True)


def _from_evaluation(evaluation: Evaluation) -> pd.DataFrame:
    """Rows of :func:`overlay_table` from an evaluation's ``pred`` and ``truth`` tables."""
    pred, truth = evaluation.pred, evaluation.truth
    status = pred["status"].to_numpy()
    rows = _rows(pred, "evaluation.pred", "detection")
    rows["kind"] = np.where(status == "tp", "true positive", "false positive")
    matched = pred["match"].to_numpy() if "match" in pred else np.full(len(pred), -1)
    hit = (status == "tp") & (matched >= 0)
    rows.loc[hit, "truth_diameter"] = truth["diameter"].to_numpy(float)[matched[hit]]
    missed = _rows(truth[truth["status"] == "fn"], "evaluation.truth", "missed")
    return pd.concat([rows, missed], ignore_index=True)


def _rows(frame: pd.DataFrame, name: str, kind: str) -> pd.DataFrame:
    """``frame`` in the overlay's columns, every row of ``kind``."""
    missing = [c for c in ("x", "y", "diameter") if c not in frame]
    if missing:
        raise CatalogError(
            f"overlay_table: {name} lacks column(s) {missing}; it needs x, y, diameter in pixels"
        )
    n = len(frame)
    return pd.DataFrame(
        {
            "x": frame["x"].to_numpy(float),
            "y": frame["y"].to_numpy(float),
            "diameter": frame["diameter"].to_numpy(float),
            "score": frame["score"].to_numpy(float) if "score" in frame else np.full(n, np.nan),
            "label": frame["label"].astype(str).to_numpy() if "label" in frame else [""] * n,
            "kind": [kind] * n,
            "truth_diameter": np.full(n, np.nan),
        }
    )


def select_objects(
    table: pd.DataFrame,
    bounds: tuple[float, float, float, float],
    *,
    min_score: float = 0.0,
    labels: Collection[str] | None = None,
    kinds: Collection[str] | None = None,
    limit: int = 5000,
) -> tuple[pd.DataFrame, int]:
    """The rows of ``table`` to draw in one view.

    Args:
        table: from :func:`overlay_table`.
        bounds: ``(x0, x1, y0, y1)`` of the view in raster pixels (either order).
        min_score: detections scoring below this are left out; true objects (no score) stay.
        labels, kinds: keep only these (``None`` keeps all).
        limit: at most this many rows, the largest diameters first.

    Returns:
        ``(rows, n)``: the rows to draw and how many passed the filters before ``limit``.
    """
    if limit < 0:
        raise CatalogError(f"select_objects: limit={limit} must be >= 0")
    left, right = sorted(bounds[:2])
    top, bottom = sorted(bounds[2:])
    half = table["diameter"] / 2
    keep = (
        (table["x"] + half >= left)
        & (table["x"] - half <= right)
        & (table["y"] + half >= top)
        & (table["y"] - half <= bottom)
        & ~(table["score"] < min_score)
    )
    keep &= _among(table["label"], labels) & _among(table["kind"], kinds)
    rows = table[keep]
    return (rows.nlargest(limit, "diameter") if len(rows) > limit else rows), len(rows)


def _among(column: pd.Series, allowed: Collection[str] | None) -> pd.Series:
    """Mask of the rows whose value is in ``allowed`` (all rows when ``allowed`` is None)."""
    return column.isin(list(allowed)) if allowed is not None else column.notna()


def describe_objects(
    table: pd.DataFrame, to_world: Callable[..., tuple[np.ndarray, np.ndarray]] | None, world: str
) -> pd.DataFrame:
    """Add the text columns a hover shows: ``pixel``, ``world``, ``size``, ``score_text``.

    Args:
        table: from :func:`overlay_table`.
        to_world: pixel ``(x, y)`` -> world coordinates, or ``None`` for pixel-only rasters.
        world: ``"map"`` (map units, 2 decimals) or ``"sky"`` (RA/Dec degrees, 6 decimals).
    """
    out = table.copy()
    out["pixel"] = [f"{x:.1f}, {y:.1f}" for x, y in zip(out["x"], out["y"], strict=True)]
    if to_world is None:
        out["world"] = "none (pixel raster)"
    else:
        a, b = to_world(out["x"].to_numpy(), out["y"].to_numpy())
        fmt = "{:.6f}, {:.6f}" if world == "sky" else "{:.2f}, {:.2f}"
        out["world"] = [fmt.format(u, v) for u, v in zip(a, b, strict=True)]
    size = [f"{d:.1f} px" for d in out["diameter"]]
    matched = out["truth_diameter"].notna()
    out["size"] = np.where(
        matched,
        [f"{s} (catalogue {t:.1f} px)" for s, t in zip(size, out["truth_diameter"], strict=True)],
        size,
    )
    out["score_text"] = [("-" if np.isnan(s) else f"{s:.3f}") for s in out["score"]]
    return out
