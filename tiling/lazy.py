"""Lazy package namespaces: a sub-package lists its public names without importing its modules.

Importing a sub-package (``tiling.store``) costs nothing until one of its names is used: the
tile readers' worker processes import ``tiling.store.reader`` and must not pull in torch through
``tiling.store.build``, nor astropy through ``tiling.sources.fits``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_namespace(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` (PEP 562) for a package that exports names lazily.

    Args:
        package: the package's ``__name__``.
        exports: module path -> the public names it defines, e.g.
            ``{"tiling.store.build": ("build_tile_store",)}``.

    Returns:
        ``(getattr, dir)``: the module-level hooks that import a name's module on first use.
        The package also lists the names in ``__all__`` (a literal, for linters and readers).
    """
    owner = {name: module for module, names in exports.items() for name in names}

    def getattr_(name: str) -> Any:
        if name not in owner:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(owner[name]), name)

    def dir_() -> list[str]:
        return sorted(owner)

    return getattr_, dir_
