"""Atomic file writes: a file appears under its final name complete, or not at all.

Every writer of the project that produces a finished file (catalogues, GIS files, run tables,
checkpoint copies, generated rasters) goes through :func:`atomic_write`: the content is written
to a unique temporary name in the destination folder (same file system, so the rename is atomic)
and ``os.replace`` puts it in place. An exception or Ctrl-C while writing removes the temporary
file and leaves any previous file of that name untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` with a temporary path beside ``path``, then rename it to ``path``.

    The temporary path does not exist when ``write`` is called (GDAL drivers create their files
    themselves) and keeps ``path``'s suffix (drivers and libraries choose formats by it).

    Args:
        path: the final file; its folder is created.
        write: writes the whole file at the path it is given (its return value is ignored).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def copy_atomic(source: str | Path, target: str | Path) -> Path:
    """Copy ``source`` (data and metadata) to ``target`` atomically; returns ``target``."""
    return atomic_write(target, lambda tmp: shutil.copy2(source, tmp))
