"""Validation of frozen config dataclasses from their annotations: one validator for every field.

A field's annotation says what it accepts, and :func:`validate_fields` checks it:

- ``Literal["a", "b"]``: one of the choices (a type checker reads the same annotation);
- ``int``, ``float``, ``bool``, ``str``: that type (an ``int`` is a ``float``; a ``bool`` is no
  number; a float must be finite);
- ``Annotated[int | float, Range(low, high)]``: a number within the range;
- ``list[float]``, ``list[str]``: a list of such items;
- ``X | None``: None, or an ``X``.

Anything else (``Any``, dicts, nested tuples) is left to the dataclass's own checks. A failure is
a :class:`~tiling.errors.ConfigError` naming the class, the field, the value and what is allowed;
a number written as a string (``"1e-3"``, as PyYAML reads ``1e-3``) is named as such.
"""

from __future__ import annotations

import dataclasses
import math
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from tiling.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``low <= value <= high`` (``low < value`` with ``open_low``)."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies in the range."""
        above = value > self.low if self.open_low else value >= self.low
        return above and value <= self.high

    def describe(self, kind: str) -> str:
        """``"an integer >= 1"``, ``"a finite number in (0.0, 1.0]"``: ``kind`` within the range."""
        if math.isinf(self.high):
            return f"{kind} {'>' if self.open_low else '>='} {self.low}"
        return f"{kind} in {'(' if self.open_low else '['}{self.low}, {self.high}]"


def config_error(owner: str, field: str, value: Any, allowed: str) -> ConfigError:
    """An error naming the class, the field, the value and what is allowed."""
    hint = ""
    if isinstance(value, str) and _is_number_text(value):
        hint = (
            " (a string, not a number: write it unquoted; PyYAML's own loader reads 1e-3 as a "
            "string, ModelConfig.from_yaml and model.config.load_yaml read it as a number)"
        )
    return ConfigError(f"{owner}.{field}={value!r} is invalid: expected {allowed}{hint}.")


def validate_fields(instance: Any) -> None:
    """Check every field of a dataclass instance against its annotation (rules above).

    Raises:
        ConfigError: the first field whose value its annotation does not allow.
    """
    cls = type(instance)
    if cls not in _CHECKS:
        _CHECKS[cls] = _checks(cls)
    for name, (holds, allowed) in _CHECKS[cls].items():
        value = getattr(instance, name)
        if not holds(value):
            raise config_error(cls.__name__, name, value, allowed)


#: Per dataclass: the checks of its fields, built once from its annotations.
_CHECKS: dict[type, dict[str, tuple[Any, str]]] = {}


def _checks(cls: type) -> dict[str, tuple[Any, str]]:
    """Per field: ``(predicate, description)`` from the class's annotations."""
    hints = get_type_hints(cls, include_extras=True)
    out = {}
    for field in dataclasses.fields(cls):
        rule = _rule(hints[field.name])
        if rule is not None:
            out[field.name] = rule
    return out


def _rule(hint: Any) -> tuple[Any, str] | None:
    """``(predicate, description)`` for one annotation, or None when it is not checked here."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        base = _rule(args[0])
        bounds = next((a for a in args[1:] if isinstance(a, Range)), None)
        if base is None or bounds is None:
            return base
        return (lambda v: base[0](v) and bounds.holds(v)), bounds.describe(base[1])
    if origin is Literal:
        return (lambda v: any(v == a and type(v) is type(a) for a in args)), f"one of {list(args)}"
    if origin in (Union, types.UnionType):
        rules = [_rule(a) for a in args if a is not type(None)]
        if None in rules:
            return None
        allowed = " or ".join(r[1] for r in rules if r is not None)
        return (lambda v: v is None or any(r[0](v) for r in rules if r)), f"None or {allowed}"
    if origin is list and len(args) == 1:
        item = _rule(args[0])
        if item is None:
            return None
        noun = item[1].removeprefix("a ").removeprefix("an ")
        return (lambda v: isinstance(v, list) and all(item[0](x) for x in v)), f"a list of {noun}s"
    return _SIMPLE.get(hint)


def is_int(value: Any) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A finite ``int`` or ``float`` (not a ``bool``)."""
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_SIMPLE: dict[Any, tuple[Any, str]] = {
    int: (is_int, "an integer"),
    float: (is_real, "a finite number"),
    bool: (lambda v: isinstance(v, bool), "true or false"),
    str: (lambda v: isinstance(v, str), "a string"),
}
