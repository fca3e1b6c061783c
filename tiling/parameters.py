"""Parameter sets: one dataclass declares each parameter's default, unit, check and help, once.

A parameter set (:class:`tiling.store.parameters.StoreParameters`, the notebook's data and tiling
parameters; :class:`model.parameters.RunParameters`, all of the notebook's parameters) is a frozen
dataclass whose fields are declared with :func:`param`. From that one declaration come

- the command-line options (:func:`add_options`): ``tile_size`` becomes ``--tile-size``, typed and
  range-checked by its checker (:mod:`tiling.options`), with help, unit and default in ``--help``;
- the reading of a run file (:func:`from_mapping`): unknown keys and bad values are errors that
  name the file and the key;
- the list of keys for a help text (:func:`describe`).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from tiling import options
from tiling.errors import ConfigError

T = TypeVar("T")


def param(default: Any, help: str, check: options.Checker, *, unit: str | None = None) -> Any:
    """A dataclass field with its help text, unit (for ``--help``) and checker.

    Args:
        default: the default value (lists and dicts are copied for each instance).
        help: what the parameter does, in a few words (no unit: see ``unit``).
        check: a checker of :mod:`tiling.options` (returns the typed value or raises).
        unit: the unit of a number ("px", "minutes"), or None.
    """
    meta = {"help": help, "check": check, "unit": unit}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def default_of(field: dataclasses.Field[Any]) -> Any:
    """The default value of a field declared with :func:`param`."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def help_of(field: dataclasses.Field[Any], *, with_default: bool = True) -> str:
    """``"<help> [<unit>] (default: <value>)"`` of a field."""
    unit = field.metadata.get("unit")
    text = field.metadata["help"] + (f" [{unit}]" if unit else "")
    return f"{text} (default: {default_of(field)!r})" if with_default else text


def add_options(
    parser: argparse.ArgumentParser | Any, cls: type, names: Iterable[str] | None = None
) -> None:
    """Add one ``--name`` option per field of ``cls`` (or of ``names``), typed by its checker.

    Booleans get ``--name``/``--no-name``. Defaults are the dataclass's, so an option left out
    gives the same value as the notebook's parameter.
    """
    wanted = set(names) if names is not None else None
    for field in dataclasses.fields(cls):
        if wanted is not None and field.name not in wanted:
            continue
        flag = "--" + field.name.replace("_", "-")
        default, help_text = default_of(field), help_of(field).replace("%", "%%")
        if field.metadata["check"] is options.flag:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
        else:
            parser.add_argument(flag, type=field.metadata["check"], default=default, help=help_text)


def from_namespace(cls: type[T], args: argparse.Namespace) -> T:
    """The parameter set from parsed options (those added by :func:`add_options`)."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


def from_mapping(cls: type[T], data: Any, source: str) -> T:
    """The parameter set from a mapping read from a run file; missing keys keep their default.

    Args:
        cls: the parameter set.
        data: the mapping (e.g. :func:`tiling.options.read_yaml` of a file).
        source: the file, for the messages.

    Raises:
        ConfigError: not a mapping, an unknown key, or a value its checker refuses.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source} must hold one 'name: value' line per parameter; it holds "
            f"{type(data).__name__}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in data if k not in fields)
    if unknown:
        raise ConfigError(
            f"{source}: unknown parameter(s) {unknown}; fix the spelling (the parameters are "
            f"{sorted(fields)})"
        )
    values = {}
    for key, raw in data.items():
        try:
            values[key] = fields[key].metadata["check"](raw)
        except argparse.ArgumentTypeError as err:
            raise ConfigError(f"{source}: {key}: {err}") from err
    return cls(**values)


def to_mapping(params: Any) -> dict[str, Any]:
    """The parameter set as a plain dict (field order), e.g. to write it back as YAML."""
    return {f.name: copy.deepcopy(getattr(params, f.name)) for f in dataclasses.fields(params)}


def describe(cls: type) -> str:
    """One line per field: ``name: default  help [unit]``, for a help text."""
    fields = dataclasses.fields(cls)
    width = max(len(f.name) for f in fields)
    return "\n".join(
        f"  {f.name:<{width}}  {help_of(f, with_default=False)} (default: {default_of(f)!r})"
        for f in fields
    )
