"""Concurrent builds of one store, on this host and (faked) on others sharing the folder."""

import json
import logging
import multiprocessing
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_geotiff
from tiling.store import build_tile_store, lock
from tiling.store.lock import BuildLock, Owner, break_lock, is_stale, lock_path, read_owner
from tiling.store.tile_filters import TileFilter

pytestmark = pytest.mark.reliability

KW = dict(tile_size=32, overlap=0, workers=0, split="raster", split_fractions=(1, 0, 0))


@pytest.fixture
def sources(tmp_path):
    data = np.random.default_rng(0).integers(1, 1000, (1, 96, 96)).astype(np.uint16)
    path = write_geotiff(tmp_path / "a.tif", data)
    xy = np.linspace(10, 80, 5)
    return [(path, pd.DataFrame({"x": xy, "y": xy, "diameter": 6.0, "label": "c"}))]


def key_of(sources, tmp_path):
    """The key of the store these sources and KW build (built once elsewhere)."""
    return build_tile_store(sources, tmp_path / "scratch", **KW).path.name


def fake_lock(out, key, host, pid, age_s=0.0):
    out.mkdir(parents=True, exist_ok=True)
    path = lock_path(out, key)
    started = time.time() - age_s
    path.write_text(json.dumps({"host": host, "pid": pid, "token": "theirs", "started": started}))
    os.utime(path, (started, started))
    return path


class Seen(logging.Handler):
    """Sets an event when a log message contains ``text``."""

    def __init__(self, text):
        super().__init__()
        self.text, self.event = text, threading.Event()

    def emit(self, record):
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def waiting():
    handler = Seen("waiting for it")
    logger = logging.getLogger("tiling.store.lock")
    logger.addHandler(handler)
    yield handler.event
    logger.removeHandler(handler)


# --- two processes ------------------------------------------------------------------------------


def gated_filter(root):
    """A filter that records its caller and holds the build until ``root/go`` exists."""

    def mask(tiles, boxes, seed):
        (root / "calls").mkdir(exist_ok=True)
        (root / "calls" / str(os.getpid())).touch()
        for _ in range(1200):
            if (root / "go").exists():
                break
            time.sleep(0.05)
        return np.ones(len(tiles), bool)

    return TileFilter("gated", mask)


def build_in_child(sources, out, root, name):
    handler = logging.FileHandler(root / f"{name}.log")
    logging.getLogger("tiling.store").addHandler(handler)
    logging.getLogger("tiling.store").setLevel(logging.INFO)
    store = build_tile_store(sources, out, tile_filters=[gated_filter(root)], **KW)
    (root / f"{name}.path").write_text(str(store.path))


def wait_for(condition, what):
    for _ in range(1200):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_processes_build_one_store(tmp_path, sources):
    ctx = multiprocessing.get_context("spawn")  # forking a threaded pytest worker can deadlock
    out, root = tmp_path / "stores", tmp_path / "sync"
    root.mkdir()
    first = ctx.Process(target=build_in_child, args=(sources, out, root, "first"))
    second = ctx.Process(target=build_in_child, args=(sources, out, root, "second"))
    try:
        first.start()
        wait_for(lambda: (root / "calls").exists(), "the first build to start")
        second.start()
        log = root / "second.log"
        wait_for(lambda: log.exists() and "waiting for it" in log.read_text(), "the second to wait")
        (root / "go").touch()
        first.join(120), second.join(120)
    finally:
        for child in (first, second):
            if child.is_alive():
                child.kill()
    assert (first.exitcode, second.exitcode) == (0, 0)
    path = (root / "first.path").read_text()
    assert (root / "second.path").read_text() == path
    assert [p.name for p in (root / "calls").iterdir()] == [str(first.pid)]  # built once
    assert "built meanwhile by another process" in log.read_text()
    assert [p.name for p in out.iterdir()] == [Path(path).name]  # no temporary folder, no lock


# --- other hosts (faked lock files) -------------------------------------------------------------


def test_fresh_lock_of_another_host_is_waited_for(tmp_path, sources, waiting, monkeypatch):
    monkeypatch.setattr(lock, "POLL_S", 0.02)
    out = tmp_path / "stores"
    key = key_of(sources, tmp_path)
    theirs = fake_lock(out, key, "other-host", os.getpid())  # a pid that exists here too
    (out / f".tmp-{key}-4242").mkdir()  # their build in progress
    kept = []

    def other_host_fails():
        waiting.wait(60)
        kept.append((out / f".tmp-{key}-4242").exists())  # not deleted while they build
        theirs.unlink()  # their build failed and removed its lock (its folder stays behind)

    thread = threading.Thread(target=other_host_fails)
    thread.start()
    store = build_tile_store(sources, out, **KW)
    thread.join()
    assert waiting.is_set() and kept == [True] and store.path.name == key
    assert [p.name for p in out.iterdir()] == [key]


def test_stale_lock_of_another_host_is_taken_over(tmp_path, sources, caplog):
    out = tmp_path / "stores"
    key = key_of(sources, tmp_path)
    fake_lock(out, key, "other-host", 4242, age_s=lock.STALE_S + 60)
    (out / f".tmp-{key}-4242").mkdir()
    with caplog.at_level(logging.WARNING, logger="tiling.store.lock"):
        store = build_tile_store(sources, out, **KW)
    assert "taking over the stale tile store build lock of other-host pid 4242" in caplog.text
    assert [p.name for p in out.iterdir()] == [store.path.name]


def test_other_builds_in_the_folder_are_left_alone(tmp_path, sources):
    out = tmp_path / "stores"
    other = "0123456789abcdef"
    fake_lock(out, other, "other-host", os.getpid() + 10**6)  # a pid that is not alive here
    (out / f".tmp-{other}-{os.getpid() + 10**6}").mkdir()
    orphan = out / f".tmp-{'f' * 16}-1"  # no lock: its owner is gone
    orphan.mkdir()
    store = build_tile_store(sources, out, **KW)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [store.path.name, f".lock-{other}", f".tmp-{other}-{os.getpid() + 10**6}"]
    )


def test_dead_process_on_this_host_is_stale_at_once(tmp_path):
    path = fake_lock(tmp_path, "k" * 16, socket.gethostname(), 2**22 + 4321)
    assert is_stale(path, read_owner(path))
    mine = fake_lock(tmp_path, "m" * 16, socket.gethostname(), os.getpid())
    assert not is_stale(mine, read_owner(mine))


def test_a_held_flock_keeps_an_old_lock_alive(tmp_path):
    import fcntl

    path = fake_lock(tmp_path, "k" * 16, "other-host", 1, age_s=lock.STALE_S * 2)
    assert is_stale(path, read_owner(path))
    fd = os.open(path, os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert not is_stale(path, read_owner(path))
    finally:
        os.close(fd)


def test_breaking_never_removes_a_newer_lock(tmp_path):
    path = fake_lock(tmp_path, "k" * 16, "other-host", 1, age_s=lock.STALE_S * 2)
    stale = read_owner(path)
    newer = BuildLock(tmp_path, "k" * 16)
    path.unlink()
    assert newer.acquire(ready=lambda: False)  # took its place meanwhile
    try:
        break_lock(path, stale)  # a late breaker that read the old owner
        assert read_owner(path).token == newer._token
        assert [p.name for p in tmp_path.iterdir()] == [path.name]
    finally:
        newer.release()
    assert not path.exists()


def test_heartbeat_refreshes_the_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    held = BuildLock(tmp_path, "k" * 16)
    assert held.acquire(ready=lambda: False)
    try:
        os.utime(held.path, (0, 0))
        wait_for(lambda: held.path.stat().st_mtime > 0, "a heartbeat")
        owner = read_owner(held.path)
        assert owner == Owner(socket.gethostname(), os.getpid(), held._token, owner.started,
                              owner.heartbeat)  # fmt: skip
    finally:
        held.release()
