"""A tiles folder that cannot be written, and a full disk: errors naming the folder, file and bytes."""

import errno
import os
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_geotiff
from tiling.errors import TilingError
from tiling.store import build_tile_store, lock, reader, space
from tiling.store.space import write_bytes

pytestmark = pytest.mark.reliability

KW = dict(tile_size=32, overlap=0, workers=0, split="raster", split_fractions=(1, 0, 0))
Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def sources(tmp_path):
    data = np.random.default_rng(0).integers(1, 1000, (1, 96, 96)).astype(np.uint16)
    path = write_geotiff(tmp_path / "a.tif", data)
    xy = np.linspace(10, 80, 5)
    return [(path, pd.DataFrame({"x": xy, "y": xy, "diameter": 6.0, "label": "c"}))]


def refuse_writes_in(monkeypatch, folder, code=errno.EROFS):
    """Make creating files in ``folder`` fail as on a read-only mount (root ignores chmod)."""
    real = os.open

    def fake(path, flags, *args, **kwargs):
        if str(path).startswith(str(folder)) and flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(lock.os, "open", fake)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_read_only_tiles_dir(tmp_path, sources, monkeypatch, code):
    out = tmp_path / "stores"
    store = build_tile_store(sources, out, **KW)
    before = sorted(p.name for p in out.iterdir())
    refuse_writes_in(monkeypatch, out, code)
    assert build_tile_store(sources, out, **KW).path == store.path  # reused read-only
    with pytest.raises(
        TilingError, match=rf"cannot write in the tiles folder {out} \({os.strerror(code)}\)"
    ):
        build_tile_store(sources, out, **{**KW, "seed": 1})
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_tiles_dir_by_permissions(tmp_path, sources):
    out = tmp_path / "stores"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(TilingError, match=r"cannot write in the tiles folder .*Permission"):
            build_tile_store(sources, out, **KW)
    finally:
        out.chmod(0o755)


def test_disk_full_for_the_tables(tmp_path, sources, monkeypatch):
    out = tmp_path / "stores"
    calls = []

    def usage(path):
        calls.append(path)
        return Usage(10**9, 10**9, 10**9 if len(calls) == 1 else 100)  # room for the .npy only

    monkeypatch.setattr(space.shutil, "disk_usage", usage)
    with pytest.raises(
        TilingError,
        match=r"\.tmp-[0-9a-f]{16}-\d+: not enough disk space for tiles.parquet \(\d\.\d\d kB "
        r"needed, 0\.10 kB free\)",
    ):
        build_tile_store(sources, out, **KW)
    assert list(out.iterdir()) == []  # no temporary folder, no lock


def test_disk_full_while_writing_tiles(tmp_path, sources, monkeypatch):
    out = tmp_path / "stores"

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(reader.os, "pwrite", full)  # as on a file system without fallocate
    with pytest.raises(TilingError, match=r"not enough disk space for tiles_0.npy \(.* needed"):
        build_tile_store(sources, out, **KW)
    assert list(out.iterdir()) == []


def test_write_bytes_checks_then_maps_errors(tmp_path, monkeypatch):
    path = tmp_path / "meta.json"
    monkeypatch.setattr(space.shutil, "disk_usage", lambda _: Usage(10**9, 10**9, 10))
    with pytest.raises(
        TilingError, match=r"not enough disk space for meta.json \(0.02 kB needed, 0.01 kB free"
    ):
        write_bytes(path, b"x" * 20)
    assert not path.exists()
    monkeypatch.undo()

    class Full:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(space.Path, "open", lambda self, mode: Full())
    with pytest.raises(TilingError, match=r"not enough disk space for meta.json"):
        write_bytes(path, b"{}")
