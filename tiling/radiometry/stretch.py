"""Stretches for high-dynamic-range data (astronomy, 16-bit imagery): fitted on a sample.

A stretch maps each band to ``[0, 1]``: values are first normalised between per-band limits
``low`` and ``high`` (``u = clip((x - low) / (high - low), 0, 1)``), then a curve is applied:

- ``linear``: ``u``; limits are the ``p_low``/``p_high`` percentiles (default 0.5 / 99.5).
- ``asinh``: ``asinh(u / a) / asinh(1 / a)`` (default ``a = 0.1``; smaller ``a`` lifts faint
  light more), limits as for ``linear``.
- ``log``: ``log(a u + 1) / log(a + 1)`` (default ``a = 1000``), limits as for ``linear``.
- ``zscale``: linear between IRAF's zscale limits (:mod:`tiling.radiometry.zscale`, ``contrast`` default
  0.25), the display default of DS9 and IRAF.

Limits are fitted on a sample of pixels (:func:`sample_pixels` reads a few random windows through
the raster interface), never on the whole image. A fitted :class:`Stretch` is a frozen value
that round-trips through :meth:`Stretch.to_dict` / :meth:`Stretch.from_dict` (plain JSON types),
so it can be stored in a tile store's meta or a model config. :meth:`Stretch.invert` maps
stretched values back to raw units.

This is the project's one stretch: :meth:`Stretch.apply` takes numpy arrays or torch tensors
``[..., C, H, W]`` (the model's input stretch calls it on batches on their device, the plots on
numpy tiles) and :func:`linear_map` is its linear part, which augmentation's ``PercentileStretch``
calls with per-image limits.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import numpy as np

from tiling.errors import ConfigError, RasterError
from tiling.radiometry.zscale import zscale_limits
from tiling.sources.base import RasterSource, Window

if TYPE_CHECKING:  # torch is imported only by callers that pass tensors (it costs ~0.6 GB)
    from torch import Tensor

ArrayT = TypeVar("ArrayT", np.ndarray, "Tensor")


def linear_map(
    x: Any,
    low: Any,
    high: Any,
    out_low: Any = 0.0,
    out_high: Any = 1.0,
) -> Any:
    """Map ``[low, high]`` linearly onto ``[out_low, out_high]``, values beyond clipped.

    ``out_low + (x - low) * (out_high - out_low) / (high - low)``, clipped to the output range; a
    flat range (``high <= low``) divides by 1 instead. All arguments broadcast (e.g. limits
    ``[C, 1, 1]`` per band or ``[B, C, 1, 1]`` per image); NaN stays NaN.
    """
    span = high - low
    lib = _array_module(span)
    span = lib.where(span > 0, span, lib.ones_like(span))
    scaled = out_low + (x - low) * (out_high - out_low) / span
    if _is_tensor(scaled):
        return scaled.clamp(out_low, out_high)
    return np.clip(scaled, out_low, out_high)


@dataclass(frozen=True)
class Stretch:
    """Base class: per-band limits ``low``/``high`` (tuples of C floats) and an identity curve.

    Subclasses set :attr:`kind` and override :meth:`curve`.
    """

    kind: ClassVar[str] = ""
    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high) or not self.low:
            raise ConfigError(
                f"{self.kind} stretch: low {self.low} and high {self.high} need one value per "
                "band, the same number of bands"
            )

    def curve(self, u: Any) -> Any:
        """Map normalised values ``u`` in [0, 1] to [0, 1]."""
        return u

    def inverse_curve(self, y: float) -> float:
        """The ``u`` in [0, 1] whose :meth:`curve` is ``y`` in [0, 1] (scalars)."""
        return y

    def invert(self, values: Sequence[float]) -> tuple[float, ...]:
        """Raw value per band whose stretch is ``values[c]`` (clipped to [0, 1]); ``low`` for a flat band.

        Args:
            values: one stretched value per band, e.g. a model's ``image_mean``.

        Returns:
            C raw values, in the units of ``low``/``high``.
        """
        if len(values) != len(self.low):
            raise ConfigError(
                f"{self.kind} stretch fitted on {len(self.low)} bands cannot invert "
                f"{len(values)} values"
            )
        out = []
        for y, low, high in zip(values, self.low, self.high, strict=True):
            span = high - low if high > low else 0.0
            out.append(low + span * self.inverse_curve(min(max(float(y), 0.0), 1.0)))
        return tuple(out)

    def apply(self, array: ArrayT, fill: float | None = 0.0, dtype: Any = None) -> ArrayT:
        """Stretch ``array`` ``[..., C, H, W]`` (numpy or torch) to ``[0, 1]``.

        ``curve(linear_map(x, low, high))`` per band, computed in float64 (float32 on MPS, which
        has no float64) on the array's device.

        Args:
            array: raw values; axis ``-3`` holds the ``C`` fitted bands.
            fill: value given to NaN pixels (nodata); ``None`` keeps them NaN.
            dtype: dtype of the result (numpy's for an array, torch's for a tensor); float32 when
                None.

        Returns:
            An array or tensor (as the input) of the input's shape.
        """
        if array.ndim < 3 or array.shape[-3] != len(self.low):
            raise ConfigError(
                f"{self.kind} stretch fitted on {len(self.low)} bands cannot apply to an array of "
                f"shape {tuple(array.shape)}; expected [..., C={len(self.low)}, H, W]"
            )
        if _is_tensor(array):
            torch, tensor = sys.modules["torch"], cast(Any, array)
            work = torch.float32 if tensor.device.type == "mps" else torch.float64
            low = torch.tensor(self.low, dtype=work, device=tensor.device)[:, None, None]
            high = torch.tensor(self.high, dtype=work, device=tensor.device)[:, None, None]
            out = self.curve(linear_map(tensor.to(work), low, high)).clamp(0.0, 1.0)
            out = out if fill is None else out.nan_to_num(fill)
            return cast(ArrayT, out.to(dtype or torch.float32))
        x = np.asarray(array, dtype=np.float64)
        low_np, high_np = np.asarray(self.low)[:, None, None], np.asarray(self.high)[:, None, None]
        values = np.clip(self.curve(linear_map(x, low_np, high_np)), 0.0, 1.0)
        values = values if fill is None else np.nan_to_num(values, nan=fill)
        return cast(ArrayT, values.astype(dtype or np.float32))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict with ``kind`` and every field (limits as lists)."""
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {"kind": self.kind, **data}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Stretch:
        """Rebuild a stretch written by :meth:`to_dict`."""
        data = dict(data)
        kind = data.pop("kind", None)
        cls = STRETCHES.get(kind)
        if cls is None:
            raise ConfigError(f"stretch kind {kind!r} unknown; use one of {sorted(STRETCHES)}")
        names = {f.name for f in fields(cls)}
        if set(data) != names:
            raise ConfigError(
                f"{kind} stretch needs exactly the keys {sorted(names)}, got {sorted(data)}"
            )
        data["low"], data["high"] = tuple(data["low"]), tuple(data["high"])
        return cls(**data)


@dataclass(frozen=True)
class LinearStretch(Stretch):
    """Linear between percentiles."""

    kind: ClassVar[str] = "linear"


@dataclass(frozen=True)
class ZScaleStretch(Stretch):
    """Linear between zscale limits."""

    kind: ClassVar[str] = "zscale"


@dataclass(frozen=True)
class AsinhStretch(Stretch):
    """``asinh(u / a) / asinh(1 / a)``: linear near 0, logarithmic for bright values."""

    kind: ClassVar[str] = "asinh"
    a: float = 0.1

    def curve(self, u: Any) -> Any:  # noqa: D102 - see class docstring
        return _array_module(u).arcsinh(u / self.a) / math.asinh(1.0 / self.a)

    def inverse_curve(self, y: float) -> float:  # noqa: D102 - see Stretch.inverse_curve
        return self.a * math.sinh(y * math.asinh(1.0 / self.a))


@dataclass(frozen=True)
class LogStretch(Stretch):
    """``log(a u + 1) / log(a + 1)``."""

    kind: ClassVar[str] = "log"
    a: float = 1000.0

    def curve(self, u: Any) -> Any:  # noqa: D102 - see class docstring
        return _array_module(u).log1p(self.a * u) / math.log1p(self.a)

    def inverse_curve(self, y: float) -> float:  # noqa: D102 - see Stretch.inverse_curve
        return math.expm1(y * math.log1p(self.a)) / self.a


STRETCHES: dict[str, type[Stretch]] = {
    c.kind: c for c in (LinearStretch, AsinhStretch, LogStretch, ZScaleStretch)
}


def _is_tensor(value: Any) -> bool:
    """True for a torch tensor; torch is not imported for numpy input (it costs ~0.6 GB)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _array_module(value: Any) -> Any:
    """``torch`` for a tensor, else ``numpy``: the functions of one implementation."""
    return sys.modules["torch"] if _is_tensor(value) else np


def make_stretch(
    kind: str, low: Sequence[float], high: Sequence[float], a: float | None = None
) -> Stretch:
    """The stretch ``kind`` with per-band limits ``low``/``high`` (raw units).

    Args:
        kind: ``"linear"``, ``"asinh"``, ``"log"`` or ``"zscale"``.
        low, high: one limit per band.
        a: asinh/log softening; None keeps the class default (ignored for linear and zscale).

    Raises:
        ConfigError: unknown kind.
    """
    if kind not in STRETCHES:
        raise ConfigError(f"stretch kind {kind!r} unknown; use one of {sorted(STRETCHES)}")
    extra = {"a": float(a)} if a is not None and kind in ("asinh", "log") else {}
    return STRETCHES[kind](tuple(map(float, low)), tuple(map(float, high)), **extra)


def fit_stretch(kind: str, sample: np.ndarray, **params: float) -> Stretch:
    """Fit the limits of a stretch on ``sample`` ``[C, n]`` (valid pixels, e.g. from :func:`sample_pixels`).

    Args:
        kind: ``"linear"``, ``"asinh"``, ``"log"`` or ``"zscale"``.
        sample: pixel values per band; NaN values are ignored.
        **params: ``p_low``/``p_high`` (percentiles, for linear/asinh/log), ``a`` (asinh, log),
            ``contrast`` (zscale).

    Raises:
        ConfigError: unknown kind or parameter, percentiles out of order, or an empty sample.
    """
    make_stretch(kind, (0.0,), (1.0,))  # an unknown kind fails before any work
    sample = np.asarray(sample, dtype=np.float64)
    if sample.ndim != 2 or sample.shape[1] == 0 or np.isnan(sample).all(axis=1).any():
        raise ConfigError(
            f"stretch sample of shape {sample.shape} has a band without values; pass [C, n] "
            "valid pixels (sample_pixels with more windows)"
        )
    allowed = {"zscale": {"contrast"}}.get(
        kind, {"p_low", "p_high"} | ({"a"} if kind != "linear" else set())
    )
    unknown = set(params) - allowed
    if unknown:
        raise ConfigError(
            f"{kind} stretch: unknown parameters {sorted(unknown)}; allowed {sorted(allowed)}"
        )
    if kind == "zscale":
        contrast = params.get("contrast", 0.25)
        if not contrast > 0:
            raise ConfigError(f"zscale stretch: contrast={contrast} must be > 0 (default 0.25)")
        return make_stretch(kind, *_zscale_limits(sample, contrast))
    p_low, p_high = params.get("p_low", 0.5), params.get("p_high", 99.5)
    if not 0.0 <= p_low < p_high <= 100.0:
        raise ConfigError(f"{kind} stretch: need 0 <= p_low < p_high <= 100, got {p_low}, {p_high}")
    low, high = np.nanpercentile(sample, [p_low, p_high], axis=1)
    return make_stretch(kind, low, high, params.get("a"))


def _zscale_limits(
    sample: np.ndarray, contrast: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band zscale limits of ``sample[C, n]`` (:func:`tiling.radiometry.zscale.zscale_limits`)."""
    low, high = zip(*(zscale_limits(band, contrast) for band in sample), strict=True)
    return tuple(map(float, low)), tuple(map(float, high))


def sample_pixels(
    raster: RasterSource, n_windows: int = 32, window_size: int = 128, seed: int = 0
) -> np.ndarray:
    """Valid pixels from ``n_windows`` random square windows, read through ``raster.read``.

    A pixel is valid when no band is NaN or equal to ``raster.nodata``. Windows larger than the
    raster are shrunk to it. Deterministic for a given ``seed``.

    Returns:
        float64 ``ndarray[C, n]`` with ``n <= n_windows * window_size**2``.

    Raises:
        RasterError: bad counts, or no valid pixel in any window.
    """
    if n_windows < 1 or window_size < 1:
        raise RasterError(
            f"sample_pixels: n_windows {n_windows} and window_size {window_size} must be >= 1"
        )
    rng = np.random.default_rng(seed)
    h, w = min(window_size, raster.height), min(window_size, raster.width)
    rows = rng.integers(0, raster.height - h + 1, n_windows)
    cols = rng.integers(0, raster.width - w + 1, n_windows)
    parts = []
    for row, col in zip(rows, cols, strict=True):
        data = raster.read(Window(int(row), int(col), h, w)).reshape(raster.count, -1)
        values = data.astype(np.float64)
        bad = np.isnan(values).any(axis=0)
        if raster.nodata is not None and not math.isnan(raster.nodata):
            bad |= (data == raster.nodata).any(axis=0)
        parts.append(values[:, ~bad])
    sample = np.concatenate(parts, axis=1)
    if sample.shape[1] == 0:
        raise RasterError(
            f"{raster.path}: no valid pixel in {n_windows} windows of {window_size} px; raise "
            "n_windows or check the nodata value"
        )
    return sample
