"""Radiometric transforms for any band count and bit depth; boxes are never touched.

Images are float tensors in the data's own units (16-bit counts as float32, radiances, fluxes).
Nothing assumes RGB or a ``[0, 1]`` range: every parameter is relative to statistics of each
image and band (over its ``H x W`` pixels), so a transform commutes with any positive affine
change of units, ``T(a * x + b) = a * T(x) + b`` for ``a > 0`` (a test checks it):

======================  ==============================================================
transform               effect on band ``x`` of one image (``u``: a per-sample draw)
======================  ==============================================================
:class:`Brightness`     ``x + u * std(x)``, ``u ~ U(-max_delta, max_delta)``
:class:`Contrast`       ``mean(x) + u * (x - mean(x))``, ``u ~ U(1 - f, 1 + f)``
:class:`Gamma`          ``lo + (hi - lo) * ((x - lo) / (hi - lo)) ** u``, lo/hi = min/max,
                        ``log u ~ U(-max_log_gamma, max_log_gamma)``
:class:`GaussianNoise`  ``x + u * std(x) * N(0, 1)``, ``u ~ U(0, max_sigma)``
:class:`GaussianBlur`   Gaussian of ``u ~ U(0, max_sigma)`` pixels (all bands alike)
:class:`PercentileStretch`  maps percentiles ``(p_lo, p_hi)`` to ``(min, max)``, clipped;
                        ``p_lo ~ U(0, max_low)``, ``p_hi ~ U(100 - max_high, 100)``
======================  ==============================================================

With ``per_band=True`` (default) each band draws its own ``u`` (params ``[B, C]``), else one
``u`` per image (``[B, 1]``). The output dtype and shape are the input's.

Why not ``torchvision.transforms.v2``: its float colour ops assume ``[0, 1]`` images and clamp to
that range (``adjust_brightness(x=1000., 1.1)`` returns 1.0, so does ``gaussian_noise``),
``adjust_contrast`` accepts only 1 or 3 bands (grey weights of RGB), and ``gaussian_blur`` takes
one sigma per call. Ours are vectorised over batch and bands with per-sample parameters; the blur
is checked against v2's ``gaussian_blur`` in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as nnf
from torch import Tensor

from augment.base import PackedTargets, Params, Transform, uniform
from tiling.errors import ConfigError
from tiling.radiometry.stretch import linear_map

EPS = 1e-12
QUANTILE_PIXELS = 16384


def band_param(params: Params, key: str, images: Tensor) -> Tensor:
    """``params[key]`` (``[B, C]`` or ``[B, 1]``) as ``[B, C|1, 1, 1]`` in the images' dtype."""
    value = params[key]
    if value.shape[1] not in (1, images.shape[1]):
        raise ConfigError(
            f"params '{key}' were drawn for {value.shape[1]} bands, images have "
            f"{images.shape[1]}; draw them with sample_like(images)"
        )
    return value.to(images.dtype)[:, :, None, None]


def band_quantiles(images: Tensor, q: Tensor) -> Tensor:
    """Per-image, per-band quantiles ``q[B, C|1, K]`` (fractions) -> ``[B, C, K]``.

    Linear interpolation between order statistics of at most ~16k pixels (a regular stride
    through the band), which keeps it cheap for large tiles.
    """
    b, c = images.shape[:2]
    flat = images.reshape(b, c, -1)
    step = max(1, flat.shape[-1] // QUANTILE_PIXELS)
    values = flat[..., ::step].sort(dim=-1).values
    pos = q.to(images.dtype).expand(b, c, -1) * (values.shape[-1] - 1)
    lo = pos.floor().long().clamp(0, values.shape[-1] - 1)
    hi = (lo + 1).clamp_max(values.shape[-1] - 1)
    frac = pos - lo
    return values.gather(-1, lo) * (1 - frac) + values.gather(-1, hi) * frac


@dataclass
class Radiometric(Transform):
    """Base of the per-band transforms: draws one ``u`` per sample (and band) in ``[lo, hi)``."""

    per_band: bool = field(default=True, kw_only=True)

    def bounds(self) -> tuple[float, float]:
        """Range of the uniform draw ``u``."""
        raise NotImplementedError

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        channels: int = 1,
        size: tuple[int, int] | None = None,
    ) -> Params:
        """``{"u": [B, C]}`` (``[B, 1]`` when not per band)."""
        lo, hi = self.bounds()
        return {"u": uniform(lo, hi, [batch_size, channels if self.per_band else 1], generator)}

    def apply_packed(
        self, images: Tensor, targets: PackedTargets, params: Params
    ) -> tuple[Tensor, PackedTargets]:
        """Transform pixel values; targets pass through."""
        return self.pixels(images, band_param(params, "u", images)), targets

    def pixels(self, images: Tensor, u: Tensor) -> Tensor:
        """New values of ``images[B, C, H, W]`` given ``u[B, C|1, 1, 1]``."""
        raise NotImplementedError


def check_positive(name: str, key: str, value: float, upper: float = math.inf) -> None:
    """Raise ConfigError unless ``0 <= value < upper``."""
    if not 0 <= value < upper:
        raise ConfigError(f"{name} {key}={value} must lie in [0, {upper})")


@dataclass
class Brightness(Radiometric):
    """Add ``u * std`` per band, ``u ~ U(-max_delta, max_delta)``."""

    max_delta: float = 0.2
    name: ClassVar[str] = "brightness"

    def __post_init__(self) -> None:
        check_positive(self.name, "max_delta", self.max_delta)

    def bounds(self) -> tuple[float, float]:
        """``(-max_delta, max_delta)``."""
        return -self.max_delta, self.max_delta

    def pixels(self, images: Tensor, u: Tensor) -> Tensor:
        """``x + u * std(x)``."""
        return images + u * images.std(dim=(-2, -1), keepdim=True)


@dataclass
class Contrast(Radiometric):
    """Scale deviations from the band mean by ``u ~ U(1 - max_factor, 1 + max_factor)``."""

    max_factor: float = 0.2
    name: ClassVar[str] = "contrast"

    def __post_init__(self) -> None:
        check_positive(self.name, "max_factor", self.max_factor, 1.0)

    def bounds(self) -> tuple[float, float]:
        """``(1 - max_factor, 1 + max_factor)``."""
        return 1 - self.max_factor, 1 + self.max_factor

    def pixels(self, images: Tensor, u: Tensor) -> Tensor:
        """``mean + u * (x - mean)``."""
        mean = images.mean(dim=(-2, -1), keepdim=True)
        return mean + u * (images - mean)


@dataclass
class Gamma(Radiometric):
    """Gamma ``exp(u)``, ``u ~ U(-max_log_gamma, max_log_gamma)``, on the band's min-max range."""

    max_log_gamma: float = 0.2
    name: ClassVar[str] = "gamma"

    def __post_init__(self) -> None:
        check_positive(self.name, "max_log_gamma", self.max_log_gamma)

    def bounds(self) -> tuple[float, float]:
        """``(-max_log_gamma, max_log_gamma)`` (the log of the gamma)."""
        return -self.max_log_gamma, self.max_log_gamma

    def pixels(self, images: Tensor, u: Tensor) -> Tensor:
        """``lo + (hi - lo) * t ** exp(u)`` with ``t = (x - lo) / (hi - lo)``; flat bands kept."""
        lo = images.amin(dim=(-2, -1), keepdim=True)
        span = images.amax(dim=(-2, -1), keepdim=True) - lo
        t = ((images - lo) / span.clamp_min(EPS)).clamp(0, 1)
        return torch.where(span > 0, lo + span * t.pow(u.exp()), images)


@dataclass
class GaussianNoise(Radiometric):
    """Add white noise of ``u * std`` per band, ``u ~ U(0, max_sigma)``.

    The standard-normal field is drawn in :meth:`sample` (``size`` is required), so batch and
    per-sample modes see the same noise.
    """

    max_sigma: float = 0.05
    name: ClassVar[str] = "noise"

    def __post_init__(self) -> None:
        check_positive(self.name, "max_sigma", self.max_sigma)

    def bounds(self) -> tuple[float, float]:
        """``(0, max_sigma)``."""
        return 0.0, self.max_sigma

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        channels: int = 1,
        size: tuple[int, int] | None = None,
    ) -> Params:
        """``{"u": [B, C|1], "noise": [B, C, H, W]}``."""
        if size is None:
            raise ConfigError("noise needs the image size: call sample(..., size=(H, W))")
        params = super().sample(batch_size, generator, channels=channels)
        device = generator.device if generator is not None else None
        shape = (batch_size, channels, *size)
        params["noise"] = torch.randn(shape, generator=generator, device=device)
        return params

    def apply_packed(
        self, images: Tensor, targets: PackedTargets, params: Params
    ) -> tuple[Tensor, PackedTargets]:
        """``x + u * std(x) * noise``."""
        u = band_param(params, "u", images)
        noise = params["noise"].to(images.dtype)
        if noise.shape[1:] != images.shape[1:]:
            raise ConfigError(
                f"noise was drawn for shape {tuple(noise.shape[1:])}, images are "
                f"{tuple(images.shape[1:])}; draw params with sample_like(images)"
            )
        std = images.std(dim=(-2, -1), keepdim=True)
        return images + u * std * noise, targets


@dataclass
class GaussianBlur(Radiometric):
    """Separable Gaussian blur of sigma ``u ~ U(0, max_sigma)`` px per sample, all bands alike.

    Kernel radius ``ceil(3 * max_sigma)``, reflect padding; ``u -> 0`` is the identity. One
    grouped convolution over ``B * C`` channels with a kernel per sample.
    """

    max_sigma: float = 1.0
    per_band: bool = field(default=False, kw_only=True)
    name: ClassVar[str] = "blur"

    def __post_init__(self) -> None:
        check_positive(self.name, "max_sigma", self.max_sigma, 20.0)

    def bounds(self) -> tuple[float, float]:
        """``(0, max_sigma)``."""
        return 0.0, self.max_sigma

    def pixels(self, images: Tensor, u: Tensor) -> Tensor:
        """Blur each image (and band) with its own sigma."""
        b, c, h, w = images.shape
        radius = min(math.ceil(3 * self.max_sigma), h - 1, w - 1)
        if radius < 1:
            return images
        x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
        sigma = u.reshape(b, -1, 1).expand(b, c, 1).reshape(b * c, 1).clamp_min(1e-3)
        kernel = torch.exp(-0.5 * (x / sigma) ** 2)
        kernel = kernel / kernel.sum(-1, keepdim=True)  # [B*C, K]
        flat = nnf.pad(images.reshape(1, b * c, h, w), (radius,) * 4, mode="reflect")
        flat = nnf.conv2d(flat, kernel[:, None, None, :], groups=b * c)
        flat = nnf.conv2d(flat, kernel[:, None, :, None], groups=b * c)
        return flat.reshape(b, c, h, w)


@dataclass
class PercentileStretch(Radiometric):
    """Stretch per band so percentile ``p_lo`` lands on the band min and ``p_hi`` on its max.

    ``p_lo ~ U(0, max_low)`` and ``p_hi ~ U(100 - max_high, 100)`` (percent); values beyond are
    clipped to the band's ``[min, max]``, so the value range (and any normalisation fitted on it)
    is kept while the tails saturate, as a display stretch of a different strength would do.
    """

    max_low: float = 2.0
    max_high: float = 2.0
    name: ClassVar[str] = "stretch"

    def __post_init__(self) -> None:
        check_positive(self.name, "max_low", self.max_low, 50.0)
        check_positive(self.name, "max_high", self.max_high, 50.0)

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        *,
        channels: int = 1,
        size: tuple[int, int] | None = None,
    ) -> Params:
        """``{"low": [B, C|1], "high": [B, C|1]}`` percentiles as fractions."""
        shape = [batch_size, channels if self.per_band else 1]
        return {
            "low": uniform(0.0, self.max_low / 100, shape, generator),
            "high": uniform(1.0 - self.max_high / 100, 1.0, shape, generator),
        }

    def apply_packed(
        self, images: Tensor, targets: PackedTargets, params: Params
    ) -> tuple[Tensor, PackedTargets]:
        """Map ``[q(p_lo), q(p_hi)]`` linearly onto ``[min, max]`` per band, clipped."""
        low = band_param(params, "low", images)[..., 0, 0]
        high = band_param(params, "high", images)[..., 0, 0]
        q = torch.stack(torch.broadcast_tensors(low, high), dim=-1)  # [B, C|1, 2]
        ql, qh = band_quantiles(images, q)[..., None, None].unbind(2)
        lo = images.amin(dim=(-2, -1), keepdim=True)
        hi = images.amax(dim=(-2, -1), keepdim=True)
        out = linear_map(images, ql, qh, lo, hi)  # the project's one linear stretch
        return torch.where(qh > ql, out, images), targets
