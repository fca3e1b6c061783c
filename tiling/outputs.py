"""Output paths that cannot destroy anything: the one check every command and writer calls.

Rules for an output *file* (:func:`check_output_file`): it must not be one of the inputs (the same
file under any name: hard links and links to it included), a folder, a device or other special
file, or a symbolic link (writing would replace the link with a regular file); a regular file
that exists is replaced only with ``overwrite``. An output *folder* (:func:`check_output_folder`)
is a folder (a link to one is fine) or does not exist yet, under a writable parent. A full disk
while writing (:func:`disk_full_errors`) is one error naming the file and the free space.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from tiling.errors import OutputError

#: ``errno`` values of a full disk or an exhausted quota.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def check_output_file(
    path: str | Path,
    *,
    option: str = "output",
    inputs: Iterable[str | Path] = (),
    overwrite: bool = False,
) -> Path:
    """Refuse an output file that would destroy something; the path when it is safe to write.

    Args:
        path: the file to be written.
        option: how the user named it, for the message: a command-line option (``"--out"``) or a
            parameter (``"output"``); an option makes the hint ``--overwrite``.
        inputs: the files the command reads (the output may be none of them).
        overwrite: replace an existing regular file.

    Raises:
        OutputError: ``path`` is an input, a link, a folder, a device or special file, an
            existing file without ``overwrite``, or its folder is a file.
    """
    path = Path(path)
    for source in inputs:
        if _same_file(path, Path(source)):
            raise OutputError(
                f"{option} {path} is the input {source}: writing it would destroy the input; "
                f"choose another {option}"
            )
    if path.is_symlink():
        raise OutputError(
            f"{option} {path} is a symbolic link (to {os.readlink(path)}): writing would replace "
            f"the link; give the real path or another {option}"
        )
    if path.exists():
        _check_existing(path, option, overwrite)
    _check_parent(path.parent, option)
    return path


def check_output_folder(path: str | Path, *, option: str = "output folder") -> Path:
    """Refuse an output folder that is a file or a device, or that cannot be created or written.

    Returns:
        ``path`` (not created).

    Raises:
        OutputError: ``path`` exists and is not a folder, or its nearest existing folder is not
            writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(
            f"{option} {path} is {_kind(path)}, not a folder; give a folder (it is created when "
            "missing)"
        )
    _check_parent(path, option)
    return path


@contextlib.contextmanager
def disk_full_errors(path: str | Path, needed: int | None = None) -> Iterator[None]:
    """Turn a full disk (or quota) while writing ``path`` into an :class:`OutputError` naming it.

    Args:
        path: the file being written.
        needed: its size in bytes, when known (said in the message).
    """
    try:
        yield
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise
        folder = Path(path).parent
        free = _free_bytes(folder)
        need = f"it needs {needed:,} bytes, " if needed is not None else ""
        raise OutputError(
            f"disk full while writing {path}: {need}{free} free in {folder}; free some space or "
            "write to another disk (nothing was left under that name)"
        ) from err


def _same_file(output: Path, source: Path) -> bool:
    """Whether ``output`` names the file ``source`` (same inode, or the same resolved path)."""
    if output.exists() and source.exists():
        with contextlib.suppress(OSError):
            return output.samefile(source)
    return output.resolve() == source.resolve()


def _check_existing(path: Path, option: str, overwrite: bool) -> None:
    """Refuse an existing folder, special file, or regular file without ``overwrite``."""
    if path.is_dir():
        raise OutputError(
            f"{option} {path} is a folder; give a file name, e.g. {path / 'predictions.csv'}"
        )
    if not path.is_file():
        raise OutputError(f"{option} {path} is {_kind(path)}, not a regular file; give a file name")
    if not overwrite:
        hint = "--overwrite" if option.startswith("--") else "overwrite=True"
        raise OutputError(
            f"{option} {path} already exists; pass {hint} to replace it, or choose another name"
        )


def _check_parent(folder: Path, option: str) -> None:
    """Refuse when the nearest existing ancestor of ``folder`` is a file or is not writable."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    if not existing.is_dir():
        raise OutputError(
            f"{option}: {existing} is {_kind(existing)}, so {folder} cannot be a folder; "
            "choose another path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(
            f"{option}: the folder {existing} is not writable; choose a folder you can write to"
        )


def _kind(path: Path) -> str:
    """A few words saying what ``path`` is: "a regular file", "a character device", ..."""
    mode = path.stat().st_mode
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def _free_bytes(folder: Path) -> str:
    """Free space of the disk holding ``folder``, as text ("1,234 bytes" or "unknown space")."""
    try:
        return f"{shutil.disk_usage(folder).free:,} bytes"
    except OSError:
        return "unknown space"
