"""The model's input stretch: fitted from a tile store's band statistics, applied in torch.

``ModelConfig.input_stretch`` maps each raw band to ``[0, 1]`` with a :mod:`tiling.radiometry.stretch` curve
before the network's mean/std normalisation, so that a few very bright pixels (stars of 40,000 ADU
over a sky of 200) do not set the scale of the input. Limits come from the store's
``band_stats`` (:mod:`tiling.store.stats`): the 0.5 / 99.5 percentiles for linear/asinh/log (the
defaults of :func:`tiling.radiometry.stretch.fit_stretch`), the stored zscale limits for zscale.
:class:`InputStretch` applies the same formulas as :meth:`tiling.radiometry.stretch.Stretch.apply` to batched
tensors on their device.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tiling.errors import ConfigError
from tiling.radiometry.stretch import STRETCHES, Stretch

logger = logging.getLogger(__name__)

#: band_stats percentile keys used as the limits of linear/asinh/log (fit_stretch's defaults).
LIMIT_PERCENTILES = ("0.5", "99.5")
#: image_mean/image_std of stretched values when band_stats hold no quantiles (older stores).
FALLBACK_MEAN, FALLBACK_STD = 0.5, 0.25


def stretch_from_band_stats(
    kind: str, band_stats: Mapping[str, Any], a: float | None = None
) -> Stretch:
    """The stretch ``kind`` with limits from a tile store's band statistics.

    Args:
        kind: ``"linear"``, ``"asinh"``, ``"log"`` or ``"zscale"``.
        band_stats: ``meta["band_stats"]`` of a tile store (:func:`tiling.store.stats.band_stats`).
        a: asinh/log softening; None keeps the :mod:`tiling.radiometry.stretch` default (ignored otherwise).

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
    extra = {"a": float(a)} if a is not None and kind in ("asinh", "log") else {}
    return STRETCHES[kind](tuple(map(float, low)), tuple(map(float, high)), **extra)


def stretched_mean_std(
    stretch: Stretch, band_stats: Mapping[str, Any]
) -> tuple[list[float], list[float]]:
    """Per-band mean and std of stretched pixel values, from the stored quantiles.

    The quantiles of :func:`tiling.store.stats.band_stats` sit at the centres of 100 equal-count bins,
    so the mean/std of their stretched values estimate those of the stretched pixels. Without
    quantiles (stores written before them) the result is ``0.5``/``0.25`` per band, logged. A
    std below 1e-6 (a constant band) becomes 0.25.

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


class InputStretch(nn.Module):
    """A :class:`tiling.radiometry.stretch.Stretch` as a torch module: raw bands to ``[0, 1]``.

    Computes ``clip(curve(clip((x - low) / (high - low), 0, 1)), 0, 1)`` per band in float64 (float32
    on MPS, which has no float64), NaN -> 0, like ``Stretch.apply``. ``low``/``span`` are
    non-persistent buffers: they follow ``.to(device)`` but stay out of the state dict (the
    config holds them).

    Args:
        stretch: the fitted stretch (C bands).
    """

    def __init__(self, stretch: Stretch) -> None:
        super().__init__()
        self.stretch = stretch
        low = torch.tensor(stretch.low, dtype=torch.float64)
        span = torch.tensor(stretch.high, dtype=torch.float64) - low
        span = torch.where(span > 0, span, torch.ones_like(span))  # flat band: as Stretch.apply
        self.register_buffer("low", low[:, None, None], persistent=False)
        self.register_buffer("span", span[:, None, None], persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        """Stretch ``images`` ``[..., C, H, W]`` (raw units) to ``[0, 1]``, same shape and dtype."""
        work = torch.float32 if images.device.type == "mps" else torch.float64
        low, span = self.low.to(images.device, work), self.span.to(images.device, work)
        u = ((images.to(work) - low) / span).clamp(0.0, 1.0)
        out = self.stretch.curve(u).clamp(0.0, 1.0).nan_to_num(0.0)
        return out.to(images.dtype)

    def stretch_list(self, images: list[Tensor]) -> list[Tensor]:
        """Stretch a list of ``[C, H, W]`` images, as one batch when they share shape and device."""
        if not images:
            return images
        first = images[0]
        key = (first.shape, first.device, first.dtype)
        if all((i.shape, i.device, i.dtype) == key for i in images):
            return list(self(torch.stack(images)).unbind(0))
        return [self(image) for image in images]

    def extra_repr(self) -> str:
        """The stretch kind and band count."""
        return f"kind={self.stretch.kind}, bands={len(self.stretch.low)}"
