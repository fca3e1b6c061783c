"""Numeric precision of training and prediction: ``"auto"`` picks bf16 where the hardware has it.

``RunConfig.precision`` takes Lightning's names (``"32"``, ``"16-mixed"``, ``"bf16-mixed"``) or
``"auto"``, which :func:`resolve_precision` turns into

- ``"bf16-mixed"`` on a CUDA GPU that supports bfloat16 (``torch.cuda.is_bf16_supported()``:
  Ampere and later);
- ``"bf16-mixed"`` on a CPU whose flags (``/proc/cpuinfo``) include ``amx_bf16`` (Intel AMX,
  Sapphire Rapids and later) or ``avx512_bf16`` (Cooper Lake, AMD Zen 4 and later): there
  oneDNN runs bf16 convolutions natively;
- ``"32"`` everywhere else (CPUs without those flags emulate bf16 and run slower than fp32; MPS).

Mixed precision keeps the weights and the optimiser in float32 and runs the convolutions under
:func:`torch.autocast`. :func:`autocast` gives the same context for prediction.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from tiling.errors import ConfigError

if TYPE_CHECKING:  # torch is imported when a function needs it (run settings load without it)
    import torch

CPUINFO = Path("/proc/cpuinfo")  # read by cpu_flags (Linux); absent elsewhere: no flags
Precision = Literal["auto", "32", "16-mixed", "bf16-mixed"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
#: Mixed precision -> the name of its torch autocast dtype.
AUTOCAST_DTYPES = {"16-mixed": "float16", "bf16-mixed": "bfloat16"}


def cpu_flags(cpuinfo: Path | None = None) -> frozenset[str]:
    """The CPU feature flags of the first ``flags`` line of ``cpuinfo`` (default :data:`CPUINFO`).

    Returns an empty set when the file does not exist (macOS, Windows) or has no flags line.
    """
    path = CPUINFO if cpuinfo is None else cpuinfo
    if not path.is_file():
        return frozenset()
    with path.open() as lines:
        for line in lines:
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                return frozenset(value.split())
    return frozenset()


def cpu_has_bf16(cpuinfo: Path | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (flag ``amx_bf16`` or ``avx512_bf16``)."""
    return bool(cpu_flags(cpuinfo) & BF16_CPU_FLAGS)


def device_type(accelerator: str) -> str:
    """``"cuda"``, ``"mps"`` or ``"cpu"``: where Lightning's ``accelerator`` will run.

    ``"auto"`` is CUDA when a GPU is visible, then MPS, else the CPU (Lightning's own order);
    ``"gpu"`` is CUDA or MPS. A device string such as ``"cuda:1"`` gives its type.
    """
    import torch

    name = accelerator.split(":")[0]
    if name in ("auto", "gpu"):
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu" if name == "auto" else "cuda"
    return name


def resolve_precision(precision: str | int, accelerator: str = "auto") -> str:
    """The Lightning precision to use: ``precision`` itself, or what ``"auto"`` means here.

    Args:
        precision: ``"auto"``, ``"32"`` (or the number 32, as papermill's ``-p precision 32``
            and YAML give it), ``"16-mixed"`` or ``"bf16-mixed"``.
        accelerator: Lightning's accelerator (``"auto"``, ``"cpu"``, ``"gpu"``, ``"cuda"``,
            ``"mps"``) or a torch device string (``"cuda:0"``).

    Returns:
        ``"bf16-mixed"`` or ``"32"`` for ``"auto"`` (rules in the module docstring); any other
        value unchanged.

    Raises:
        ConfigError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    precision = str(precision) if isinstance(precision, int) else precision
    if precision not in PRECISIONS:
        raise ConfigError(
            f"precision={precision!r} is invalid: expected one of {list(PRECISIONS)}."
        )
    if precision != "auto":
        return precision
    import torch

    kind = device_type(accelerator)
    if kind == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32"
    if kind == "cpu":
        return "bf16-mixed" if cpu_has_bf16() else "32"
    return "32"


def autocast(
    device: torch.device | str, precision: str = "auto"
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` for ``precision`` (resolved); a no-op context for "32".

    Args:
        device: where the model runs (``"cpu"``, ``"cuda"``, ``torch.device("cuda:1")``...).
        precision: as :func:`resolve_precision`.
    """
    import torch

    kind = torch.device(device).type
    resolved = resolve_precision(precision, kind)
    dtype = AUTOCAST_DTYPES.get(resolved)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(kind, dtype=getattr(torch, dtype))
