"""Catalogue filters: small named callables ``DataFrame -> DataFrame`` applied in order."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filter:
    """A named row mask over a catalogue DataFrame (columns x, y, diameter, label)."""

    name: str
    mask: Callable[[pd.DataFrame], np.ndarray]

    def __call__(self, df: pd.DataFrame) -> pd.DataFrame:
        """Return the rows of ``df`` kept by this filter, re-indexed 0..n-1."""
        return df[np.asarray(self.mask(df), bool)].reset_index(drop=True)

    def __repr__(self) -> str:
        return self.name


def min_diameter(d: float) -> Filter:
    """Keep objects with diameter >= ``d`` pixels."""
    return Filter(f"min_diameter({d})", lambda df: df["diameter"].to_numpy() >= d)


def max_diameter(d: float) -> Filter:
    """Keep objects with diameter <= ``d`` pixels."""
    return Filter(f"max_diameter({d})", lambda df: df["diameter"].to_numpy() <= d)


def within_raster(height: int, width: int, margin: float = 0) -> Filter:
    """Keep objects whose centre lies at least ``margin`` px inside a ``height x width`` raster."""
    return Filter(
        f"within_raster({height}, {width}, margin={margin})",
        lambda df: (
            (df.x >= margin) & (df.x < width - margin) & (df.y >= margin) & (df.y < height - margin)
        ).to_numpy(),
    )


def labels(keep: Iterable[str]) -> Filter:
    """Keep objects whose label is in ``keep``."""
    keep = sorted(set(keep))
    return Filter(f"labels({keep})", lambda df: df["label"].isin(keep).to_numpy())


def where(func: Callable[[pd.DataFrame], object], name: str = "where") -> Filter:
    """Wrap any function returning a boolean mask (or a filtered DataFrame) of its input."""

    def mask(df: pd.DataFrame) -> np.ndarray:
        out = func(df)
        if isinstance(out, pd.DataFrame):
            return df.index.isin(out.index)
        return np.asarray(out, bool)

    return Filter(name, mask)


def drop_duplicates(tolerance: float = 0.25, diameter_ratio: float = 1.25) -> Filter:
    """Drop objects within ``tolerance * diameter`` (px) of an earlier one of similar diameter.

    Similar means max/min diameter <= ``diameter_ratio``. KD-tree over centres; the first is kept.
    """

    def mask(df: pd.DataFrame) -> np.ndarray:
        xy, d = df[["x", "y"]].to_numpy(float), df["diameter"].to_numpy(float)
        keep = np.ones(len(df), bool)
        if len(df) < 2:
            return keep
        pairs = cKDTree(xy).query_pairs(tolerance * d.max(), output_type="ndarray")
        i, j = pairs.min(1), pairs.max(1)
        dist = np.linalg.norm(xy[i] - xy[j], axis=1)
        lo, hi = np.minimum(d[i], d[j]), np.maximum(d[i], d[j])
        dup = (dist <= tolerance * lo) & (hi / lo <= diameter_ratio)
        keep[np.unique(j[dup])] = False
        return keep

    return Filter(f"drop_duplicates({tolerance}, ratio={diameter_ratio})", mask)


def apply_filters(
    df: pd.DataFrame, *filters: Filter, report: bool = False
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Apply ``filters`` in order; log (and optionally return) rows removed by each."""
    rows = []
    for f in filters:
        before = len(df)
        df = f(df)
        rows.append({"filter": repr(f), "before": before, "removed": before - len(df)})
        log.info("%s removed %d of %d objects", f, before - len(df), before)
    return (df, pd.DataFrame(rows, columns=["filter", "before", "removed"])) if report else df
