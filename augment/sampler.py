"""Data-set level augmentation: draw tiles by what they contain.

Weight of a tile ``t`` (from the tile store's tables, ``tiles.parquet`` and ``boxes.parquet``)::

    w_t = max over the boxes b of t of  L(label_b) * S(diameter_b)     (tile with boxes)
    w_t = empty_weight                                                  (tile without boxes)

    L(c) = N / (K * n_c)      label_weight="balanced": inverse frequency of label c among the N
                              boxes of these tiles (K labels present); mean over boxes = 1
    L(c) = label_weight[c]    a dict of explicit weights per label; 1 for label_weight=None
    S(d) = (d / median d) ** size_weight   size_weight > 0 favours large objects, < 0 small ones

A tile is worth as much as its most valuable object (the max keeps one rare object from being
diluted by many common ones). Since ``L`` and ``S`` are about 1 for a typical object,
``empty_weight=0.1`` makes an empty tile about 10 times less likely than a typical tile with
objects. Tiles are drawn with replacement, ``num_samples`` per epoch, from
``torch.Generator().manual_seed(seed + epoch)`` (``set_epoch`` is called by Lightning), so each
epoch differs and every run is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Sampler

from tiling.errors import ConfigError


def tile_weights(
    tiles_df: pd.DataFrame,
    boxes_df: pd.DataFrame,
    *,
    label_weight: str | Mapping[str, float] | None = "balanced",
    size_weight: float = 0.0,
    empty_weight: float = 0.1,
) -> np.ndarray:
    """Un-normalised weight of each row of ``tiles_df`` (formula in the module docstring).

    Args:
        tiles_df: needs column ``tile_id``.
        boxes_df: needs ``tile_id``, ``label``, and ``diameter`` when ``size_weight != 0``;
            boxes of tiles not in ``tiles_df`` are ignored.

    Returns:
        ``float64[len(tiles_df)]``, in the order of ``tiles_df``'s rows.
    """
    _require(tiles_df, ["tile_id"], "tiles_df")
    _require(boxes_df, ["tile_id", "label"] + (["diameter"] if size_weight else []), "boxes_df")
    if empty_weight < 0:
        raise ConfigError(f"empty_weight={empty_weight} must be >= 0 (e.g. 0.1)")
    boxes = boxes_df[boxes_df["tile_id"].isin(tiles_df["tile_id"])]
    weight = _label_factor(boxes["label"], label_weight)
    if size_weight:
        d = boxes["diameter"].to_numpy(np.float64)
        weight = weight * (d / np.median(d)) ** size_weight
    per_tile = pd.Series(weight, index=boxes["tile_id"].to_numpy()).groupby(level=0).max()
    return per_tile.reindex(tiles_df["tile_id"].to_numpy()).fillna(empty_weight).to_numpy()


def _label_factor(labels: pd.Series, label_weight: str | Mapping[str, float] | None) -> np.ndarray:
    """``L(label)`` for each box."""
    if label_weight is None or label_weight == "none":
        return np.ones(len(labels))
    if label_weight == "balanced":
        counts = labels.value_counts()
        return (len(labels) / (len(counts) * counts)).reindex(labels).to_numpy(np.float64)
    if isinstance(label_weight, Mapping):
        missing = sorted(set(labels) - set(label_weight))
        if missing:
            raise ConfigError(
                f"label_weight has no weight for label(s) {missing}; give one for each of "
                f"{sorted(set(labels))}"
            )
        return labels.map(dict(label_weight)).to_numpy(np.float64)
    raise ConfigError(
        f"label_weight={label_weight!r} is not allowed; use 'balanced', 'none', None or a "
        "dict {label: weight}"
    )


def _require(df: pd.DataFrame, columns: list[str], what: str) -> None:
    """Raise ConfigError naming the columns missing from ``df``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(
            f"{what} lacks column(s) {missing}; it needs {columns} (the tile store's tables)"
        )


class ContentWeightedSampler(Sampler[int]):
    """Oversample tiles by content: rare labels, large or small objects; fewer empty tiles.

    Yields positions ``0..len(tiles_df)-1`` (rows of ``tiles_df``): build the data set over the
    same rows in the same order (e.g. ``store.tiles[store.tiles.split == "train"]``);
    ``self.tile_ids[i]`` is the tile of position ``i``.

    Args:
        tiles_df, boxes_df: the tile store's tables (``tile_id``; ``tile_id``, ``label``,
            ``diameter``).
        label_weight, size_weight, empty_weight: see :func:`tile_weights`.
        num_samples: draws per epoch (default ``len(tiles_df)``).
        replacement: draw with replacement (without: ``num_samples <= len(tiles_df)``).
        seed: base seed; epoch ``e`` draws from ``seed + e``.

    Attributes:
        weights: ``DoubleTensor[len(tiles_df)]``, probabilities (sum 1).
        tile_ids: ``int64[len(tiles_df)]``.
    """

    def __init__(
        self,
        tiles_df: pd.DataFrame,
        boxes_df: pd.DataFrame,
        *,
        label_weight: str | Mapping[str, float] | None = "balanced",
        size_weight: float = 0.0,
        empty_weight: float = 0.1,
        num_samples: int | None = None,
        replacement: bool = True,
        seed: int = 0,
    ) -> None:
        w = tile_weights(
            tiles_df,
            boxes_df,
            label_weight=label_weight,
            size_weight=size_weight,
            empty_weight=empty_weight,
        )
        if len(w) == 0 or not w.sum() > 0:
            raise ConfigError(
                f"all {len(w)} tile weights are zero; raise empty_weight or give tiles with boxes"
            )
        self.num_samples = len(w) if num_samples is None else int(num_samples)
        if self.num_samples <= 0 or (not replacement and self.num_samples > len(w)):
            raise ConfigError(
                f"num_samples={num_samples} must be > 0 (and <= {len(w)} tiles without replacement)"
            )
        self.weights = torch.as_tensor(w / w.sum(), dtype=torch.float64)
        self.tile_ids = tiles_df["tile_id"].to_numpy(np.int64)
        self.replacement = replacement
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (its draws come from ``seed + epoch``)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        idx = torch.multinomial(self.weights, self.num_samples, self.replacement, generator=gen)
        return iter(idx.tolist())

    def __len__(self) -> int:
        return self.num_samples
