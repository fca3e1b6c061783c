"""The model's data-dependent settings, resolved from a tile store: bands, mean/std, stretch, anchors.

A :class:`~model.config.ModelConfig` may leave settings to the data: ``anchor_sizes="auto"``,
``image_mean``/``image_std`` None, ``stretch_params`` None with an ``input_stretch``; and
``in_channels`` always follows the store. :func:`resolve_config` fills them in from the store's
object diameters and band statistics (:func:`tiling.store.stats.band_stats`), giving the concrete
config a trial trains and its checkpoint stores. The anchor series itself is
:mod:`model.network.anchors`; the stretch is :mod:`tiling.radiometry.stretch`.

Input stretch limits come from the band statistics: the 0.5 / 99.5 percentiles for
linear/asinh/log (the defaults of :func:`tiling.radiometry.stretch.fit_stretch`), the stored
zscale limits for zscale.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from model.budget import auto_max_steps
from model.config import MAX_ANCHOR_FACTOR, ModelConfig, default_anchor_sizes
from model.network.anchors import auto_anchor_sizes, check_anchors_cover
from tiling.errors import ConfigError
from tiling.radiometry.stretch import STRETCHES, Stretch, make_stretch

logger = logging.getLogger(__name__)

#: band_stats percentile keys used as the limits of linear/asinh/log (fit_stretch's defaults).
LIMIT_PERCENTILES = ("0.5", "99.5")
#: image_mean/image_std of stretched values when band_stats hold no quantiles (older stores).
FALLBACK_MEAN, FALLBACK_STD = 0.5, 0.25


def resolve_config(
    config: ModelConfig,
    diameters: ArrayLike | None = None,
    band_stats: Mapping[str, Any] | None = None,
) -> ModelConfig:
    """A concrete copy of ``config`` for one data set (what a checkpoint stores).

    ``anchor_sizes="auto"`` becomes :func:`~model.network.anchors.auto_anchor_sizes` of
    ``diameters`` (or :func:`~model.config.default_anchor_sizes` when no diameters are given);
    explicit anchors are checked with :func:`~model.network.anchors.check_anchors_cover`. With
    ``band_stats`` (the tile store's ``{"mean": [C], "std": [C], ...}``) ``in_channels`` becomes C
    and ``image_mean``/``image_std`` are filled from it where they are None (a std of 0, a constant
    band, becomes 1).

    With ``input_stretch`` set, ``stretch_params`` (when None) becomes the stretch fitted on the
    band statistics (:func:`stretch_from_band_stats`; ``stretch_a`` for asinh/log), and
    ``image_mean``/``image_std`` (when None) are those of the STRETCHED values in [0, 1]
    (:func:`stretched_mean_std`).

    ``max_steps="auto"`` becomes :func:`model.budget.auto_max_steps` of the tile size, batch size
    and pyramid (``stride4`` resolved first).

    Args:
        config: the requested config.
        diameters: object diameters in tile pixels, [N], or None.
        band_stats: the store's band statistics, or None.

    Returns:
        A validated ModelConfig without "auto".
    """
    changes = {} if band_stats is None else _band_changes(config, band_stats)
    if config.anchor_sizes == "auto":
        if diameters is None:
            changes["anchor_sizes"] = default_anchor_sizes(config.has_p2)
        else:
            changes["anchor_sizes"] = auto_anchor_sizes(
                diameters,
                n_levels=config.n_levels,
                scales_per_level=config.scales_per_level,
                max_size=MAX_ANCHOR_FACTOR * config.tile_size,
            )
        logger.info("auto anchor sizes resolved to %s", changes["anchor_sizes"])
    elif diameters is not None:
        check_anchors_cover(config, diameters)
    if config.max_steps == "auto":
        changes["max_steps"] = auto_max_steps(config.tile_size, config.batch_size, config.has_p2)
        logger.info("max_steps='auto' resolved to %d", changes["max_steps"])
    return config.replace(**changes)


def _band_changes(config: ModelConfig, band_stats: Mapping[str, Any]) -> dict[str, Any]:
    """``in_channels``, ``stretch_params``, ``image_mean``/``image_std`` from band statistics."""
    mean = [float(v) for v in band_stats["mean"]]
    std = [float(v) if v > 0 else 1.0 for v in band_stats["std"]]
    changes: dict[str, Any] = {"in_channels": len(mean)}
    if config.input_stretch != "none":
        if config.stretch_params is not None:
            stretch = Stretch.from_dict(config.stretch_params)
        else:
            stretch = stretch_from_band_stats(config.input_stretch, band_stats, config.stretch_a)
            changes["stretch_params"] = stretch.to_dict()
            logger.info("input stretch resolved to %s", changes["stretch_params"])
        if config.image_mean is None or config.image_std is None:
            mean, std = stretched_mean_std(stretch, band_stats)
    if config.image_mean is None:
        changes["image_mean"] = mean
    if config.image_std is None:
        changes["image_std"] = std
    return changes


def stretch_from_band_stats(
    kind: str, band_stats: Mapping[str, Any], a: float | None = None
) -> Stretch:
    """The stretch ``kind`` with limits from a tile store's band statistics.

    Args:
        kind: ``"linear"``, ``"asinh"``, ``"log"`` or ``"zscale"``.
        band_stats: ``meta["band_stats"]`` of a tile store (:func:`tiling.store.stats.band_stats`).
        a: asinh/log softening; None keeps the :mod:`tiling.radiometry.stretch` default.

    Returns:
        The fitted stretch; ``low``/``high`` per band in raw units.

    Raises:
        ConfigError: unknown kind, or band statistics without the needed percentiles/limits.
    """
    if kind not in STRETCHES:
        raise ConfigError(f"stretch kind {kind!r} unknown; use one of {sorted(STRETCHES)}")
    try:
        if kind == "zscale":
            low, high = band_stats["zscale"]["low"], band_stats["zscale"]["high"]
        else:
            low, high = (band_stats["percentiles"][q] for q in LIMIT_PERCENTILES)
    except KeyError as err:
        raise ConfigError(
            f"input_stretch={kind!r} needs band_stats[{err.args[0]!r}] (percentiles "
            f"{LIMIT_PERCENTILES} or zscale limits), missing from the store's meta.json; rebuild "
            "the store with this version of tiling.store.stats, or set stretch_params explicitly."
        ) from err
    return make_stretch(kind, low, high, a)


def stretched_mean_std(
    stretch: Stretch, band_stats: Mapping[str, Any]
) -> tuple[list[float], list[float]]:
    """Per-band mean and std of stretched pixel values, from the stored quantiles.

    The quantiles of :func:`tiling.store.stats.band_stats` sit at the centres of 100 equal-count
    bins, so the mean/std of their stretched values estimate those of the stretched pixels.
    Without quantiles (stores written before them) the result is ``0.5``/``0.25`` per band,
    logged. A std below 1e-6 (a constant band) becomes 0.25.

    Returns:
        ``(mean [C], std [C])`` in stretched units (``[0, 1]``).
    """
    channels = len(stretch.low)
    quantiles = band_stats.get("quantiles")
    if not isinstance(quantiles, Mapping) or "values" not in quantiles:
        logger.info("band_stats hold no quantiles: stretched image_mean/std set to 0.5 / 0.25")
        return [FALLBACK_MEAN] * channels, [FALLBACK_STD] * channels
    values = np.asarray(quantiles["values"], dtype=np.float64)[:, :, None]  # [C, N, 1]
    stretched = stretch.apply(values).astype(np.float64)[:, :, 0]
    std = [float(s) if s >= 1e-6 else FALLBACK_STD for s in stretched.std(axis=1)]
    return stretched.mean(axis=1).tolist(), std
