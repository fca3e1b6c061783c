"""Random search: ``num_samples`` trials drawn from ranges, fixed before any trial runs.

``run_grid(base, space, store, out, search="random", num_samples=8)`` draws its trials here. Each
entry of ``space`` is either a list (one of its values, uniformly) or a range::

    {"lr": {"loguniform": [1e-4, 3e-3]}, "focal_gamma": {"uniform": [1.0, 3.0]},
     "batch_size": [4, 8], "fpn_channels": {"randint": [64, 192]}}

The draws are seeded (the base config's ``seed``) and rounded to 4 significant digits, so the
same call gives the same trials, with the same ids, on any machine and engine: an interrupted
random search resumes like a grid (the trials are concrete configs before Ray or the loop sees
them). Ray Tune's own samplers are not used for that reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tiling.errors import ConfigError

RANGES = ("loguniform", "uniform", "randint")


def sample_space(space: Mapping[str, Any], num_samples: int, seed: int) -> list[dict[str, Any]]:
    """``num_samples`` parameter dicts drawn from ``space`` (see the module docstring).

    Raises:
        ConfigError: ``num_samples`` below 1, or an entry that is neither a non-empty list nor
            one range ``{"loguniform"|"uniform"|"randint": [low, high]}`` with low < high
            (and low > 0 for loguniform).
    """
    if not (isinstance(num_samples, int) and num_samples >= 1):
        raise ConfigError(f"num_samples={num_samples!r} must be a whole number >= 1.")
    rng = np.random.default_rng(seed)
    draws: list[dict[str, Any]] = [{} for _ in range(num_samples)]
    for key, spec in space.items():
        values = _draw(key, spec, num_samples, rng)
        for draw, value in zip(draws, values, strict=True):
            draw[key] = value
    return draws


def _draw(key: str, spec: Any, n: int, rng: np.random.Generator) -> list[Any]:
    """``n`` values of one entry of the space."""
    if isinstance(spec, Sequence) and not isinstance(spec, str | bytes) and len(spec) > 0:
        return [spec[int(i)] for i in rng.integers(0, len(spec), n)]
    if isinstance(spec, Mapping) and len(spec) == 1:
        ((kind, bounds),) = spec.items()
        if kind in RANGES and _is_pair(bounds):
            low, high = float(bounds[0]), float(bounds[1])
            if low < high and (kind != "loguniform" or low > 0):
                return _from_range(kind, low, high, n, rng)
    raise ConfigError(
        f"search space[{key!r}]={spec!r}: give a non-empty list of values or one range "
        '{"loguniform": [low, high]} (low > 0), {"uniform": [low, high]} or '
        '{"randint": [low, high]}, with low < high.'
    )


def _is_pair(bounds: Any) -> bool:
    return (
        isinstance(bounds, Sequence)
        and len(bounds) == 2
        and all(isinstance(b, int | float) and math.isfinite(b) for b in bounds)
    )


def _from_range(kind: str, low: float, high: float, n: int, rng: np.random.Generator) -> list[Any]:
    """``n`` draws of a range, rounded to 4 significant digits (whole numbers for randint)."""
    if kind == "randint":
        return [int(v) for v in rng.integers(math.ceil(low), math.floor(high) + 1, n)]
    if kind == "loguniform":
        raw = np.exp(rng.uniform(math.log(low), math.log(high), n))
    else:
        raw = rng.uniform(low, high, n)
    return [float(f"{v:.4g}") for v in raw]
