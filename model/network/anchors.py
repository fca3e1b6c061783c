"""Anchor sizes from a catalogue's diameters, and the check that explicit anchors cover it.

Pure anchor maths; :func:`model.network.data_settings.resolve_config` applies it to a config.

Rule of :func:`auto_anchor_sizes` (sizes in pixels of the tile): all ``L x S`` anchors (``L``
pyramid levels of strides ``s_l = s_0 * 2**l``, ``S`` scales per level) form one geometric series
``a_{l,j} = b * s_l * 2**(j / S)``, so consecutive anchors differ by ``2**(1/S) <= 2`` and every
square object between ``a_first / sqrt(2)`` and ``a_last * sqrt(2)`` has an anchor of the same
centre with IoU >= 0.5. The one free number, the anchor-to-stride ratio ``b``, puts the smallest
anchor at ``2**0.25 * min(diameter)`` (IoU 0.71 for the smallest object, which thus lands on the
finest level) and is clipped to ``[0.5, 8]``: an anchor never shrinks below half its level's stride
(every object still overlaps an anchor cell), nor grows beyond 8 strides. When the series would
pass ``max_size`` (1.5 x tile size), the series is compressed to end there (a geometric series from
the same first anchor, ratio still <= 2). Without P2 (``stride4=False``) a 5 px object gets a ~6 px
anchor on the stride-8 level; with P2, the same anchor sits on the stride-4 level, where its
centres are dense enough to overlap well.

Quantile placement was considered and not used: the shared RetinaNet head needs the same number of
anchors at every level, and a series tied to the strides guarantees coverage by construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from model.config import ModelConfig, pyramid_strides
from tiling.errors import ConfigError

MIN_STRIDE_RATIO = 0.5  # smallest anchor / stride allowed by the auto rule
MAX_STRIDE_RATIO = 8.0  # largest anchor / stride allowed by the auto rule
COVER_IOU = 0.3  # check_anchors_cover fails when an object's best anchor IoU is below this
#: ``stride4="auto"`` (:func:`auto_stride4`): objects under this many pixels count as small...
SMALL_OBJECT_PX = 12.0
#: ...and P2 is added when at least this share of the training objects is small...
SMALL_SHARE = 0.2
#: ...and the training split holds fewer objects than this (README "Few labels": measured there).
AUTO_STRIDE4_BELOW = 1500

Sizes = tuple[tuple[float, ...], ...]


def _clean_diameters(diameters: ArrayLike) -> np.ndarray:
    """Diameters as float64 [N]; ConfigError when empty, non-finite or not positive."""
    d = np.asarray(diameters, dtype=np.float64).ravel()
    if d.size == 0:
        raise ConfigError(
            "No object diameters given: anchors cannot be derived from an empty catalogue."
        )
    bad = ~np.isfinite(d) | (d <= 0)
    if bad.any():
        raise ConfigError(
            f"Object diameters must be finite and > 0 px; {int(bad.sum())} are not "
            f"(first: {float(d[bad][0])!r}). Clean the catalogue (filters) first."
        )
    return d


def auto_anchor_sizes(
    diameters: ArrayLike,
    *,
    n_levels: int = 5,
    strides: Sequence[int] | None = None,
    scales_per_level: int = 3,
    max_size: float | None = None,
) -> Sizes:
    """Anchor sizes for a catalogue (see the module docstring for the rule).

    Args:
        diameters: object diameters in tile pixels, [N], N >= 1.
        n_levels: pyramid levels, 5 (P3-P7) or 6 (P2-P7, ``stride4``).
        strides: stride of each level in px; default (8, ..., 128) or (4, ..., 128).
        scales_per_level: anchors per level (S).
        max_size: the largest anchor allowed (px); None = no limit.

    Returns:
        ``n_levels`` tuples of ``scales_per_level`` sizes (px), strictly increasing overall.

    Raises:
        ConfigError: bad diameters, or a range the anchors cannot cover at IoU >= 0.5.
    """
    d = _clean_diameters(diameters)
    strides = tuple(strides) if strides is not None else pyramid_strides(n_levels == 6)
    if len(strides) != n_levels:
        raise ConfigError(f"strides {strides} must have n_levels={n_levels} entries.")
    d_min, d_max = float(d.min()), float(d.max())
    ratio = min(max(2**0.25 * d_min / strides[0], MIN_STRIDE_RATIO), MAX_STRIDE_RATIO)
    steps = np.arange(n_levels * scales_per_level) / scales_per_level
    series = ratio * strides[0] * np.power(2.0, steps)
    if max_size is not None and series[-1] > max_size:
        if series[0] >= max_size:
            raise ConfigError(
                f"Objects of {d_min:.3g} px and more need anchors above max_size={max_size:g} px: "
                "use a larger tile_size or drop the largest objects."
            )
        series = series[0] * np.power(max_size / series[0], steps / steps[-1])
    low, high = series[0] / math.sqrt(2), series[-1] * math.sqrt(2)
    if d_min < low - 1e-9:
        raise ConfigError(
            f"Objects of {d_min:.3g} px are smaller than the auto anchors can match at IoU >= 0.5 "
            f"(>= {low:.3g} px, anchors >= {MIN_STRIDE_RATIO} x stride {strides[0]}). "
            "Use stride4=True, or filter the smallest objects out of the catalogue."
        )
    if d_max > high + 1e-9:
        raise ConfigError(
            f"Auto anchors {series[0]:.3g}-{series[-1]:.3g} px match objects up to {high:.3g} px at "
            f"IoU >= 0.5, but the catalogue spans {d_min:.3g}-{d_max:.3g} px. Use a larger "
            "tile_size, more scales_per_level, or filter the largest objects out of the catalogue."
        )
    rounded = [round(float(a), 2) for a in series]
    return tuple(
        tuple(rounded[i * scales_per_level : (i + 1) * scales_per_level]) for i in range(n_levels)
    )


def auto_stride4(diameters: ArrayLike) -> bool:
    """What ``stride4="auto"`` stands for, from the diameters of the training objects.

    On a stride-8 grid an anchor's centre can sit 4 px off an object's in each axis: for an object
    of 8-12 px that alone caps the IoU at 0.3-0.5, under RetinaNet's 0.5 for a positive, so small
    objects train on few, poor anchors; on the stride-4 grid the offset halves. P2 quadruples the
    head's positions (about 1.85x the training time at 128 px tiles), so it is chosen where it was
    measured to pay: few labels (fewer than :data:`AUTO_STRIDE4_BELOW` objects, where it raised
    AP@0.5 by 0.1-0.2 on the few-labels benchmark) of which at least :data:`SMALL_SHARE` are
    under :data:`SMALL_OBJECT_PX`. With more labels the stride-8 model was not measured short of
    small objects (the default data set: F1 0.87 with 55 % of its craters under 12 px), and P2
    would double the default run's time.

    Args:
        diameters: one per distinct training object, in tile pixels, [N] (N = 0 gives False).

    Returns:
        Whether to add the stride-4 level.
    """
    d = np.asarray(diameters, dtype=np.float64).ravel()
    if d.size == 0 or d.size >= AUTO_STRIDE4_BELOW:
        return False
    return bool(np.mean(d < SMALL_OBJECT_PX) >= SMALL_SHARE)


def best_anchor_iou(
    diameters: ArrayLike, sizes: Sizes, aspect_ratios: Sequence[float] = (1.0,)
) -> np.ndarray:
    """IoU of each square object with its best concentric anchor (size and shape only).

    Args:
        diameters: object sides in px, [N].
        sizes: anchor sizes per level (px); anchors of size a and ratio r are a/sqrt(r) wide and
            a*sqrt(r) high (torchvision's AnchorGenerator).
        aspect_ratios: anchor height/width ratios.

    Returns:
        float64 [N] in [0, 1].
    """
    d = np.asarray(diameters, dtype=np.float64).ravel()[:, None]
    a = np.array([s for level in sizes for s in level], dtype=np.float64)
    r = np.sqrt(np.asarray(aspect_ratios, dtype=np.float64))
    w = (a[:, None] / r[None, :]).ravel()[None, :]
    h = (a[:, None] * r[None, :]).ravel()[None, :]
    inter = np.minimum(d, w) * np.minimum(d, h)
    return (inter / (d * d + w * h - inter)).max(axis=1)


def check_anchors_cover(config: ModelConfig, diameters: ArrayLike) -> float:
    """Check that explicit anchors fit every object of the catalogue.

    Args:
        config: a config with explicit ``anchor_sizes`` ("auto" passes trivially).
        diameters: object diameters in tile pixels, [N].

    Returns:
        The worst best-anchor IoU over the catalogue (1.0 for "auto").

    Raises:
        ConfigError: some object's best anchor has IoU < 0.3 (named with its diameter).
    """
    if config.anchor_sizes == "auto":
        return 1.0
    d = np.unique(_clean_diameters(diameters))
    iou = best_anchor_iou(d, config.anchor_sizes, config.aspect_ratios)
    worst = int(iou.argmin())
    if iou[worst] < COVER_IOU:
        raise ConfigError(
            f"ModelConfig.anchor_sizes={config.anchor_sizes!r} cannot cover objects of "
            f"{d[worst]:.3g} px (best anchor IoU {iou[worst]:.2f} < {COVER_IOU}); the catalogue "
            f'spans {d[0]:.3g}-{d[-1]:.3g} px. Use anchor_sizes="auto" or add anchors near that size.'
        )
    return float(iou[worst])
