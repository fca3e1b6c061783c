"""One build of a tile store at a time, across processes and hosts sharing the tiles folder.

The lock of store ``<key>`` is the file ``<out_dir>/.lock-<key>``:

- **Taking it** is creating it with ``O_CREAT | O_EXCL`` (atomic on local file systems and on NFS
  v3 and later). It holds JSON ``{"host", "pid", "token", "started"}``. While it builds, the owner
  also holds a ``flock`` on it where the file system supports one (NFS does, through its lock
  manager) and refreshes the file's modification time every :data:`HEARTBEAT_S` seconds from a
  background thread. The owner removes it when its build ends, completed or not.
- **Waiting**: another build of the same store polls every :data:`POLL_S` seconds until the
  owner's store is complete (it then reuses it: one store, no second build), or the lock is gone
  (the owner failed: it takes the lock and builds), or the lock is stale.
- **Stale rule**: a lock is stale when no process holds its ``flock`` (asked only where the file
  system answers) and either its owner runs on this host and its process id no longer exists, or
  its heartbeat is older than :data:`STALE_S` (10 minutes, by this host's clock, so clocks may
  differ by less than that), whatever the host. A stale lock is broken (renamed away, checked to
  be the one read, then deleted) and taken over.

Temporary build folders belong to the lock of their key: whoever holds the lock removes the old
ones of that key, and anyone removes those of a key that has no lock (their owner is gone).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tiling.store.space import reraise

log = logging.getLogger(__name__)

#: Seconds between two refreshes of a held lock's modification time.
HEARTBEAT_S = 30.0
#: A lock whose heartbeat is older than this many seconds is stale (whatever its host).
STALE_S = 600.0
#: Seconds between two looks at a lock held by another build.
POLL_S = 1.0


def lock_path(out_dir: Path, key: str) -> Path:
    """The lock file of store ``key``."""
    return out_dir / f".lock-{key}"


@dataclass(frozen=True)
class Owner:
    """What a lock file says about its owner, and when its heartbeat last beat (epoch seconds)."""

    host: str
    pid: int
    token: str
    started: float
    heartbeat: float

    def describe(self) -> str:
        """``host pid N since <time>``, for messages."""
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"{self.host} pid {self.pid} since {since}"


class BuildLock:
    """The lock of one store build (see the module docstring for the protocol).

    Args:
        out_dir: the tiles folder. key: the store's key.
    """

    def __init__(self, out_dir: Path, key: str) -> None:
        self.path = lock_path(out_dir, key)
        self._fd: int | None = None
        self._token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self, ready: Callable[[], bool]) -> bool:
        """Take the lock, waiting for another build while it is alive.

        Args:
            ready: True once the store exists (checked before each attempt).

        Returns:
            True when this build holds the lock; False when the store became ready meanwhile.

        Raises:
            TilingError: the tiles folder cannot be written (read-only, no permission, full).
        """
        told = False
        while not ready():
            if self._create():
                return True
            owner = read_owner(self.path)
            if owner is None:
                continue  # released between the two looks
            if is_stale(self.path, owner):
                log.warning("taking over the stale tile store build lock of %s", owner.describe())
                break_lock(self.path, owner)
                continue
            if not told:
                log.warning(
                    "tile store %s is being built by %s; waiting for it (%s)",
                    self.path.name.removeprefix(".lock-"), owner.describe(), self.path,
                )  # fmt: skip
                told = True
            time.sleep(POLL_S)
        return False

    def _create(self) -> bool:
        """Create the lock file; False when it exists."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as err:
            reraise(self.path, err, 0)
        info = {"host": socket.gethostname(), "pid": os.getpid(), "token": self._token}
        try:
            os.write(fd, json.dumps({**info, "started": time.time()}).encode())
            _try_flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            reraise(self.path, err, 0)
        self._fd = fd
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="store-lock", daemon=True)
        self._beat.start()
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                log.warning("the lock %s was broken by another build; building on", self.path)
                return

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file (a no-op when not held)."""
        if self._fd is None:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        owner = read_owner(self.path)
        if owner is not None and owner.token == self._token:  # not a lock that replaced ours
            self.path.unlink(missing_ok=True)
        os.close(self._fd)  # releases the flock
        self._fd = None


def _try_flock(fd: int, operation: int) -> bool | None:
    """``flock`` ``fd``: True if granted, False if another process holds it, None if unsupported."""
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP, EINVAL: a file system without locks
        return None
    return True


def read_owner(path: Path) -> Owner | None:
    """The owner recorded in lock ``path``, or None when it is gone (or being written)."""
    try:
        text = path.read_text()
        heartbeat = path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        info = json.loads(text)
        return Owner(str(info["host"]), int(info["pid"]), str(info["token"]),
                     float(info["started"]), heartbeat)  # fmt: skip
    except (ValueError, KeyError, TypeError):
        # a lock being written, or garbage: judge it by its age alone
        return Owner("?", -1, "", heartbeat, heartbeat)


def is_stale(path: Path, owner: Owner) -> bool:
    """The stale rule of the module docstring."""
    if _flock_held(path):
        return False
    if owner.host == socket.gethostname() and owner.pid > 0 and not _alive(owner.pid):
        return True
    return time.time() - owner.heartbeat > STALE_S


def _flock_held(path: Path) -> bool:
    """True when some process holds a ``flock`` on ``path`` (False if none, or unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        granted = _try_flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    return granted is False


def _alive(pid: int) -> bool:
    """True if a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def break_lock(path: Path, owner: Owner) -> None:
    """Remove the stale lock ``owner`` was read from, and never a newer lock that replaced it."""
    grave = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex}")
    try:
        os.rename(path, grave)
    except FileNotFoundError:
        return  # another build broke it first
    moved = read_owner(grave)
    if moved is not None and moved.token != owner.token:
        with contextlib.suppress(FileExistsError):
            os.link(grave, path)  # a fresh lock took its place meanwhile: put it back
    grave.unlink(missing_ok=True)
