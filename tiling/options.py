"""Option values checked once, for the command line (argparse ``type=``) and for run files (YAML).

Each checker takes a raw value (a command-line string, or a value read from YAML) and returns the
typed value, or raises :class:`argparse.ArgumentTypeError` with a message saying what is accepted.
argparse prefixes that message with the option (``argument --batch-size: ...``); run files prefix
it with the file and the key (:mod:`tiling.parameters`). Ranges are rules, not one patch per
option: counts are whole numbers of at least 1 (or 0 where 0 means "none"), thresholds and
fractions lie in [0, 1], sizes are finite and positive, and NaN is never a number.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

Checker = Callable[[Any], Any]
_Invalid = argparse.ArgumentTypeError

#: Numbers that YAML 1.2 reads as floats but PyYAML (YAML 1.1) as strings: ``1e-3``, ``.5e2``.
_FLOAT = re.compile(r"^[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)[eE][-+]?\d+$")


def _number(raw: Any, what: str) -> float:
    """``raw`` as a float: a number, or text that reads as one (never a bool)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _Invalid(f"{raw!r} is not {what}")
    try:
        return float(raw)
    except ValueError:
        raise _Invalid(f"{raw!r} is not {what}") from None


def _whole(raw: Any, what: str) -> int:
    """``raw`` as an int: a whole number, or text of one ("8", not "8.5" or "eight")."""
    value = _number(raw, what)
    if not value.is_integer():
        raise _Invalid(f"{raw!r} is not {what}")
    return int(value)


def positive_int(raw: Any) -> int:
    """A count of at least 1 (batch size, tile size, epochs)."""
    value = _whole(raw, "a whole number")
    if value < 1:
        raise _Invalid(f"{raw!r} is not a positive whole number; give 1 or more")
    return value


def non_negative_int(raw: Any) -> int:
    """A count where 0 means none (worker processes, overlap in pixels)."""
    value = _whole(raw, "a whole number")
    if value < 0:
        raise _Invalid(f"{raw!r} is negative; give 0 or more")
    return value


def integer(raw: Any) -> int:
    """Any whole number (a seed)."""
    return _whole(raw, "a whole number")


def probability(raw: Any) -> float:
    """A threshold or fraction in [0, 1] (scores, IoU, nodata fraction)."""
    value = _number(raw, "a number between 0 and 1")
    if not 0.0 <= value <= 1.0:  # False for NaN too
        raise _Invalid(f"{raw!r} is not a number between 0 and 1; give e.g. 0.5")
    return value


def positive_float(raw: Any) -> float:
    """A finite size or duration above 0."""
    value = _number(raw, "a number")
    if not (math.isfinite(value) and value > 0):
        raise _Invalid(f"{raw!r} is not a finite number above 0")
    return value


def non_negative_float(raw: Any) -> float:
    """A finite size or weight of 0 or more."""
    value = _number(raw, "a number")
    if not (math.isfinite(value) and value >= 0):
        raise _Invalid(f"{raw!r} is not a finite number of 0 or more")
    return value


def text(raw: Any) -> str:
    """A name or path given as text (a bare number in YAML is refused: quote it)."""
    if not isinstance(raw, str):
        raise _Invalid(f"{raw!r} is not text; write it in quotes")
    return raw


def token(raw: Any) -> str:
    """A short name that may look like a number (``precision: 32``): text, or a number as text."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _Invalid(f"{raw!r} is not a name; write it in quotes")
    return str(raw)


def choice(*allowed: str) -> Checker:
    """A checker of one of ``allowed`` (names; a number such as ``32`` may be given unquoted)."""

    def check(raw: Any) -> str:
        value = token(raw)
        if value not in allowed:
            raise _Invalid(f"{raw!r} is not one of {' | '.join(allowed)}")
        return value

    return check


def flag(raw: Any) -> bool:
    """A yes/no value: a YAML boolean, or true/false/yes/no/1/0 as text."""
    if isinstance(raw, bool):
        return raw
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if isinstance(raw, str) and raw.strip().lower() in words:
        return words[raw.strip().lower()]
    raise _Invalid(f"{raw!r} is not true or false")


def optional(check: Checker) -> Checker:
    """``check``, or None for None, ``""``, ``"none"`` and ``"null"``."""

    def checked(raw: Any) -> Any:
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
            return None
        return check(raw)

    checked.__name__ = f"optional_{getattr(check, '__name__', 'value')}"
    return checked


def or_auto(check: Checker) -> Checker:
    """``check``, or the word ``"auto"`` (the value is then chosen from the data)."""

    def checked(raw: Any) -> Any:
        if isinstance(raw, str) and raw.strip().lower() == "auto":
            return "auto"
        return check(raw)

    checked.__name__ = f"auto_or_{getattr(check, '__name__', 'value')}"
    return checked


def list_of(check: Checker) -> Checker:
    """A list of values each passing ``check``: a YAML list, or its text (``"[0.7, 0.3]"``)."""

    def checked(raw: Any) -> list[Any]:
        value = _structure(raw)
        if value is None or value == "":
            return []
        if isinstance(value, str):  # "a,b" and a single bare name
            value = [part.strip() for part in value.split(",")]
        if not isinstance(value, list):
            raise _Invalid(f"{raw!r} is not a list; write e.g. [a, b]")
        return [check(item) for item in value]

    checked.__name__ = f"list_of_{getattr(check, '__name__', 'value')}"
    return checked


def mapping(keys: Checker, values: Checker) -> Checker:
    """A mapping of checked keys to checked values: YAML, or its text (``"{x: X_IMAGE}"``)."""

    def checked(raw: Any) -> dict[Any, Any]:
        value = _structure(raw)
        if value is None or value == "":
            return {}
        if not isinstance(value, Mapping):
            raise _Invalid(f"{raw!r} is not a mapping; write e.g. {{name: value}}")
        return {keys(k): values(v) for k, v in value.items()}

    checked.__name__ = "mapping"
    return checked


def device(raw: Any) -> str:
    """A torch device that exists here: ``cpu``, ``cuda``, ``cuda:<index>`` or ``mps``."""
    import torch

    name = text(raw).strip().lower()
    try:
        kind = torch.device(name)
    except RuntimeError:
        raise _Invalid(f"unknown device {raw!r}; use cpu, cuda, cuda:<index> or mps") from None
    if kind.type == "cpu":
        return name
    if kind.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise _Invalid(f"{raw!r}: no CUDA GPU is available on this machine; use cpu")
        if kind.index is not None and kind.index >= count:
            raise _Invalid(f"{raw!r}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}")
        return name
    if kind.type == "mps" and torch.backends.mps.is_available():
        return name
    raise _Invalid(f"device {raw!r} is not available here; use cpu, cuda or mps")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, plus YAML 1.2's floats without a dot (``1e-3``)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file, with numbers such as ``1e-3`` read as floats (YAML 1.2), not strings."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


def _structure(raw: Any) -> Any:
    """A list or mapping as given, or parsed from its YAML/JSON text."""
    if not isinstance(raw, str):
        return raw
    try:
        return yaml.safe_load(raw) if raw.strip()[:1] in "[{" else raw.strip()
    except yaml.YAMLError as err:
        raise _Invalid(f"{raw!r} is not valid YAML ({err.__class__.__name__})") from None
