"""Writing a tile store: a folder that cannot be written and a full disk, as errors with numbers.

Every file of a store goes through these checks: the ``.npy`` arrays reserve their blocks up front
(:mod:`tiling.store.npyfile`), and the tables and ``meta.json`` are encoded in memory first and
written by :func:`write_bytes`, so their size is known before the first byte goes to disk. Each
error names the folder or file, the bytes needed and those free, and what to change.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import NoReturn

from tiling.errors import TilingError

#: ``errno`` values meaning "no space left" (a full disk, or a full quota).
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
#: ``errno`` values meaning "this folder cannot be written".
READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def no_space(path: Path, nbytes: int, free: int | None = None) -> TilingError:
    """The error for ``nbytes`` that do not fit beside ``path`` (``free`` measured when None)."""
    if free is None:
        free = shutil.disk_usage(path.parent).free
    return TilingError(
        f"{path.parent}: not enough disk space for {path.name} ({size_text(nbytes)} needed, "
        f"{size_text(free)} free); free some space, put the store on another disk (out_dir), "
        "or tile less (a smaller overlap, fewer rasters, fewer empty tiles kept)"
    )


def size_text(nbytes: int) -> str:
    """``nbytes`` in GB, MB or kB (decimal units), with two significant decimals."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale / 100:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes / 1e3:.2f} kB"


def not_writable(folder: Path, err: OSError) -> TilingError:
    """The error for a tiles folder the process may not write into."""
    return TilingError(
        f"cannot write in the tiles folder {folder} ({err.strerror}); make it writable, or pass "
        "another folder (tiles_dir / out_dir). A complete store there is still reused read-only"
    )


def io_error(path: Path, err: OSError, nbytes: int) -> TilingError | None:
    """The project error for ``err`` raised while writing ``nbytes`` to ``path``, if it is one."""
    if err.errno in NO_SPACE:
        return no_space(path, nbytes)
    if err.errno in READ_ONLY:
        return not_writable(path.parent, err)
    return None


def reraise(path: Path, err: OSError, nbytes: int) -> NoReturn:
    """Raise :func:`io_error`'s error for ``err`` (chained to it), or ``err`` itself."""
    mapped = io_error(path, err, nbytes)
    if mapped is None:
        raise err
    raise mapped from err


def check_space(path: Path, nbytes: int) -> None:
    """Raise :func:`no_space`'s error unless ``nbytes`` fit in the file system of ``path``."""
    free = shutil.disk_usage(path.parent).free
    if nbytes > free:
        raise no_space(path, nbytes, free)


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) for a store; unwritable places raise :class:`TilingError`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reraise(folder / ".", err, 0)


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` after checking the space it needs.

    Raises:
        TilingError: no space (naming the file, the bytes needed and free) or no permission;
            other ``OSError`` pass through.
    """
    check_space(path, len(data))
    try:
        with path.open("wb") as fh:
            fh.write(data)
    except OSError as err:
        path.unlink(missing_ok=True)
        reraise(path, err, len(data))


def unallocated_bytes(fd: int) -> int:
    """Bytes of the open file ``fd`` that have no disk blocks yet (a sparse file's holes)."""
    stat = os.fstat(fd)
    return max(0, stat.st_size - stat.st_blocks * 512)
