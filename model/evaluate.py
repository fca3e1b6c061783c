"""Compare a predicted catalogue with the truth: one-to-one matching, P/R/F1, AP, size bins.

Two objects may match (a *candidate pair*) when

- ``match="iou"``: the IoU of their boxes (``x +- w/2``, ``y +- h/2``, with ``width`` and
  ``height`` where the catalogue has them, else ``w = h = diameter``) is >= ``iou``; or
- ``match="center"`` (crater-catalogue practice): their centre distance is
  <= ``center_tol * min(d1, d2)`` and ``|d1 - d2| / min(d1, d2) <= diameter_tol``;

and, with ``by_label=True`` and a ``label`` column in both, they share the label. Candidate
pairs come from a KD-tree query (radius bounded by the rule), never an N x M matrix.

**Counts (TP/FP/FN, precision, recall, F1, size bins, errors)** use the *optimal* one-to-one
assignment: the candidate graph is split into connected components and
``scipy.optimize.linear_sum_assignment`` runs on each (small, dense) component, maximising first
the number of matches and then their quality (IoU, or 1 - distance / min diameter).

**Average precision** follows COCO/VOC: predictions sorted by decreasing score are matched
*greedily* (each takes the best still-unmatched candidate truth; ties in score keep the input
order), giving a precision-recall curve; AP is the area under its all-point interpolated
envelope (precision made monotonically non-increasing), i.e. VOC2010+ "all points" AP.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from tiling.errors import CatalogError

MATCH_RULES = ("iou", "center")


@dataclasses.dataclass
class Evaluation:
    """Result of :func:`evaluate_catalog`.

    Attributes:
        summary: scalar metrics (counts, precision, recall, f1, ap, median errors, parameters).
        pr_curve: DataFrame ``score``, ``precision``, ``recall`` (greedy matching, by score).
        by_diameter: DataFrame per diameter bin ``d_min``, ``d_max``, ``n_truth``, ``recall``,
            ``n_pred``, ``precision``.
        pred: predictions ``x``, ``y``, ``diameter`` (+ ``score``, ``label``) and ``status``
            ("tp"/"fp") and ``match`` (truth row index or -1).
        truth: truth ``x``, ``y``, ``diameter`` (+ ``label``) and ``status`` ("tp"/"fn").
    """

    summary: dict[str, Any]
    pr_curve: pd.DataFrame
    by_diameter: pd.DataFrame
    pred: pd.DataFrame
    truth: pd.DataFrame

    @property
    def pred_status(self) -> pd.Series:
        """Status per prediction: "tp" or "fp"."""
        return self.pred["status"]

    @property
    def truth_status(self) -> pd.Series:
        """Status per true object: "tp" or "fn"."""
        return self.truth["status"]

    def to_frame(self) -> pd.DataFrame:
        """The summary as a one-column table (metric -> value)."""
        return pd.DataFrame({"value": pd.Series(self.summary, dtype=object)})

    def __str__(self) -> str:
        return self.to_frame().to_string()

    def _repr_html_(self) -> str:
        return self.to_frame().to_html()

    def save(self, path: str | Path) -> Path:
        """Write everything as JSON (tables as lists of records)."""
        path = Path(path)
        data = {"summary": self.summary}
        for name in ("pr_curve", "by_diameter", "pred", "truth"):
            data[name] = json.loads(getattr(self, name).to_json(orient="split", index=False))
        path.write_text(json.dumps(data))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Evaluation:
        """Read an Evaluation written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text())
            tables = {
                name: pd.DataFrame(data[name]["data"], columns=data[name]["columns"])
                for name in ("pr_curve", "by_diameter", "pred", "truth")
            }
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise CatalogError(f"{path} is not an Evaluation JSON file ({err})") from err
        return cls(summary=data["summary"], **tables)


def evaluate_catalog(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    iou: float = 0.5,
    match: str = "iou",
    center_tol: float = 0.5,
    diameter_tol: float = 0.5,
    bins: np.ndarray | int | None = None,
    by_label: bool = False,
) -> Evaluation:
    """Match ``pred`` to ``truth`` one-to-one and compute detection metrics.

    Args:
        pred: catalogue with ``x``, ``y``, ``diameter`` (px) and optionally ``score``, ``label``.
        truth: catalogue with ``x``, ``y``, ``diameter`` and optionally ``label``.
        iou: IoU threshold for ``match="iou"``, in (0, 1].
        match: ``"iou"`` or ``"center"`` (see module docstring).
        center_tol, diameter_tol: tolerances of ``match="center"``, relative to min diameter.
        bins: diameter bin edges (px), a bin count, or None (8 log bins over both catalogues).
        by_label: match only objects of the same label (when both have a ``label`` column).

    Returns:
        The :class:`Evaluation`.

    Raises:
        CatalogError: missing columns, bad rule or thresholds.
    """
    _check_inputs(pred, truth, match, iou)
    p, t = _clean(pred, "pred"), _clean(truth, "truth")
    same_label = by_label and "label" in p and "label" in t
    pi, ti, quality = candidate_pairs(p, t, match, iou, center_tol, diameter_tol, same_label)
    mp, mt = optimal_matches(pi, ti, quality, len(p), len(t))
    p["match"] = -1
    p.loc[mp, "match"] = mt
    p["status"] = np.where(p["match"] >= 0, "tp", "fp")
    t["status"] = "fn"
    t.loc[mt, "status"] = "tp"
    curve = pr_curve(pi, ti, quality, p.get("score"), len(t))
    summary = _summary(p, t, mp, mt, curve)
    summary.update(match=match, iou=iou, center_tol=center_tol, diameter_tol=diameter_tol)
    summary["by_label"] = bool(same_label)
    return Evaluation(summary, curve, diameter_bins(p, t, bins), p, t)


def _check_inputs(pred: pd.DataFrame, truth: pd.DataFrame, match: str, iou: float) -> None:
    if match not in MATCH_RULES:
        raise CatalogError(f"match={match!r} is not one of {MATCH_RULES}")
    if not 0 < iou <= 1:
        raise CatalogError(f"iou={iou} must be in (0, 1]")
    for name, frame in (("pred", pred), ("truth", truth)):
        missing = {"x", "y", "diameter"} - set(frame.columns)
        if missing:
            raise CatalogError(f"{name} catalogue lacks column(s) {sorted(missing)}")


def _clean(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``x, y, diameter, width, height`` (+ ``score``, ``label``); squares where no box is given."""
    cols = [c for c in ("x", "y", "diameter", "width", "height", "score", "label") if c in frame]
    out = frame[cols].reset_index(drop=True).copy()
    if not {"width", "height"} <= set(out.columns):
        out["width"], out["height"] = out["diameter"], out["diameter"]
    for col in ("diameter", "width", "height"):
        if (out[col] <= 0).any():
            row = int(np.flatnonzero(out[col].to_numpy() <= 0)[0])
            raise CatalogError(f"{name} catalogue row {row}: {col} must be > 0")
    return out


def candidate_pairs(
    p: pd.DataFrame,
    t: pd.DataFrame,
    match: str,
    iou: float,
    center_tol: float,
    diameter_tol: float,
    same_label: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs ``(pred idx [K], truth idx [K], quality [K] in (0, 1])`` from a KD-tree."""
    pxy, txy = p[["x", "y"]].to_numpy(float), t[["x", "y"]].to_numpy(float)
    pd_, td = p["diameter"].to_numpy(float), t["diameter"].to_numpy(float)
    ps, ts = p[["width", "height"]].to_numpy(float), t[["width", "height"]].to_numpy(float)
    if len(p) == 0 or len(t) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    # radius bound: IoU >= iou needs each side of t <= that of p / iou, and overlapping boxes
    reach = np.hypot(ps[:, 0], ps[:, 1]) * (1 + 1 / iou) / 2
    radius = reach if match == "iou" else center_tol * pd_
    hits = cKDTree(txy).query_ball_point(pxy, radius)
    pi = np.repeat(np.arange(len(p)), [len(h) for h in hits])
    ti = np.fromiter((j for h in hits for j in h), dtype=int, count=len(pi))
    if match == "iou":
        quality = box_iou_pairs(pxy[pi], ps[pi], txy[ti], ts[ti])
        ok = quality >= iou
    else:
        dmin = np.minimum(pd_[pi], td[ti])
        dist = np.hypot(*(pxy[pi] - txy[ti]).T) / dmin
        ok = (dist <= center_tol) & (np.abs(pd_[pi] - td[ti]) / dmin <= diameter_tol)
        quality = 1.0 - dist / (center_tol + 1.0)
    if same_label:
        ok &= p["label"].to_numpy()[pi] == t["label"].to_numpy()[ti]
    return pi[ok], ti[ok], quality[ok]


def box_iou_pairs(xy1: np.ndarray, s1: np.ndarray, xy2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """IoU [K] of boxes centred at ``xy1``, ``xy2`` [K, 2] with sizes ``s1``, ``s2``.

    Args:
        xy1, xy2: ``[K, 2]`` centres ``(x, y)``.
        s1, s2: ``[K, 2]`` box ``(width, height)``, or ``[K]`` sides of squares.
    """
    s1 = np.broadcast_to(np.asarray(s1, float).reshape(len(xy1), -1), xy1.shape)
    s2 = np.broadcast_to(np.asarray(s2, float).reshape(len(xy2), -1), xy2.shape)
    half = (s1 + s2) / 2
    overlap = np.clip(np.minimum(half, half - np.abs(xy1 - xy2)), 0, None)
    overlap = np.minimum(overlap, np.minimum(s1, s2))
    inter = overlap.prod(1)
    return inter / (s1.prod(1) + s2.prod(1) - inter)


def optimal_matches(
    pi: np.ndarray, ti: np.ndarray, quality: np.ndarray, n_pred: int, n_truth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-cardinality, then maximum-quality one-to-one matching, per connected component."""
    if len(pi) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    graph = sparse.coo_matrix((np.ones(len(pi)), (pi, n_pred + ti)), shape=(n_pred + n_truth,) * 2)
    _, comp = connected_components(graph, directed=False)
    order = np.argsort(comp[pi], kind="stable")
    edge_comp = comp[pi][order]
    starts = np.flatnonzero(np.r_[True, edge_comp[1:] != edge_comp[:-1]])
    out_p, out_t = [], []
    for edges in np.split(order, starts[1:]):
        rows, r_inv = np.unique(pi[edges], return_inverse=True)
        cols, c_inv = np.unique(ti[edges], return_inverse=True)
        big = float(len(rows) + len(cols) + 1)
        cost = np.full((len(rows), len(cols)), 2 * big)
        cost[r_inv, c_inv] = -big + (1.0 - quality[edges])  # any match beats none
        r, c = linear_sum_assignment(cost)
        valid = cost[r, c] < 0
        out_p.append(rows[r[valid]])
        out_t.append(cols[c[valid]])
    return np.concatenate(out_p), np.concatenate(out_t)


def pr_curve(
    pi: np.ndarray, ti: np.ndarray, quality: np.ndarray, scores: pd.Series | None, n_truth: int
) -> pd.DataFrame:
    """Greedy-by-score precision-recall curve (COCO style), one row per prediction."""
    if scores is None:
        return pd.DataFrame({"score": [], "precision": [], "recall": []})
    s = scores.to_numpy(float)
    rank = np.empty(len(s), int)
    rank[np.argsort(-s, kind="stable")] = np.arange(len(s))
    order = np.lexsort((-quality, rank[pi]))
    used_p, used_t = np.zeros(len(s), bool), np.zeros(n_truth, bool)
    for k in order:
        if not used_p[pi[k]] and not used_t[ti[k]]:
            used_p[pi[k]] = used_t[ti[k]] = True
    hit = used_p[np.argsort(rank)]
    tp = np.cumsum(hit)
    n = np.arange(1, len(s) + 1)
    return pd.DataFrame(
        {
            "score": np.sort(s)[::-1],
            "precision": tp / n,
            "recall": tp / max(n_truth, 1),
        }
    )


def average_precision(curve: pd.DataFrame) -> float:
    """All-point interpolated area under the P-R curve (NaN without scores)."""
    if curve.empty:
        return float("nan")
    recall = np.r_[0.0, curve["recall"].to_numpy()]
    precision = np.maximum.accumulate(curve["precision"].to_numpy()[::-1])[::-1]
    return float(np.sum(np.diff(recall) * precision))


def _summary(
    p: pd.DataFrame, t: pd.DataFrame, mp: np.ndarray, mt: np.ndarray, curve: pd.DataFrame
) -> dict[str, Any]:
    tp, n_pred, n_truth = len(mp), len(p), len(t)
    precision = tp / n_pred if n_pred else float("nan")
    recall = tp / n_truth if n_truth else float("nan")
    f1 = 2 * tp / (n_pred + n_truth) if n_pred + n_truth else float("nan")
    dpos = np.hypot(
        p["x"].to_numpy()[mp] - t["x"].to_numpy()[mt], p["y"].to_numpy()[mp] - t["y"].to_numpy()[mt]
    )
    dt = t["diameter"].to_numpy()[mt]
    ddia = np.abs(p["diameter"].to_numpy()[mp] - dt) / dt
    med = lambda a: float(np.median(a)) if len(a) else float("nan")  # noqa: E731
    return {
        "n_pred": n_pred,
        "n_truth": n_truth,
        "tp": tp,
        "fp": n_pred - tp,
        "fn": n_truth - tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ap": average_precision(curve),
        "median_position_error_px": med(dpos),
        "median_relative_diameter_error": med(ddia),
    }


def diameter_bins(p: pd.DataFrame, t: pd.DataFrame, bins: np.ndarray | int | None) -> pd.DataFrame:
    """Recall (by true diameter) and precision (by predicted diameter) per diameter bin."""
    d_all = np.r_[p["diameter"].to_numpy(float), t["diameter"].to_numpy(float)]
    if bins is None or np.isscalar(bins):
        n = 8 if bins is None else int(bins)  # type: ignore[arg-type]
        lo, hi = (d_all.min(), d_all.max() * 1.0001) if len(d_all) else (1.0, 2.0)
        edges = np.geomspace(lo, max(hi, lo * 1.0001), n + 1)
    else:
        edges = np.asarray(bins, float)
    rows = []
    for a, b in itertools.pairwise(edges):
        tin = t[(t["diameter"] >= a) & (t["diameter"] < b)]
        pin = p[(p["diameter"] >= a) & (p["diameter"] < b)]
        rows.append(
            {
                "d_min": a,
                "d_max": b,
                "n_truth": len(tin),
                "recall": (tin["status"] == "tp").mean() if len(tin) else np.nan,
                "n_pred": len(pin),
                "precision": (pin["status"] == "tp").mean() if len(pin) else np.nan,
            }
        )
    return pd.DataFrame(rows)
