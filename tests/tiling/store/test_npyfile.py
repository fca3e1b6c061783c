import errno
import os
from collections import namedtuple

import numpy as np
import pytest

from tiling.errors import TilingError
from tiling.store import npyfile, space
from tiling.store.npyfile import compact_rows, new_npy, npy_header


def test_compact_rows(tmp_path):
    arr = np.arange(7 * 2 * 3 * 3, dtype=np.uint16).reshape(7, 2, 3, 3)
    path = tmp_path / "a.npy"
    np.save(path, arr)
    keep = np.array([True, False, True, True, False, False, True])
    compact_rows(path, keep, chunk_bytes=40)  # one row per chunk
    assert np.array_equal(np.load(path), arr[keep])
    compact_rows(path, np.zeros(4, bool))
    assert np.load(path).shape == (0, 2, 3, 3)


def test_new_npy_reserves_its_blocks_and_reads_back(tmp_path):
    path = tmp_path / "t.npy"
    new_npy(path, np.dtype("uint16"), (10, 3, 64, 64))
    header, shape, dtype = npy_header(path)
    nbytes = 10 * 3 * 64 * 64 * 2
    assert (shape, dtype) == ((10, 3, 64, 64), np.dtype("uint16"))
    assert path.stat().st_size == header + nbytes
    assert path.stat().st_blocks * 512 >= nbytes  # allocated, not sparse
    assert not np.load(path).any()
    new_npy(tmp_path / "empty.npy", np.dtype("uint8"), (0, 3, 8, 8))
    assert np.load(tmp_path / "empty.npy").shape == (0, 3, 8, 8)


def test_new_npy_refuses_a_full_disk_before_writing(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(space.shutil, "disk_usage", lambda _: usage(10**9, 10**9, 1000))
    with pytest.raises(
        TilingError, match=r"not enough disk space for t\.npy \(4\.10 kB needed, 1\.00 kB free"
    ):
        new_npy(tmp_path / "t.npy", np.dtype("uint8"), (1, 1, 64, 64))
    assert not (tmp_path / "t.npy").exists()


@pytest.mark.parametrize(
    ("code", "raised"),
    [(errno.ENOSPC, TilingError), (errno.EOPNOTSUPP, None), (errno.EIO, OSError)],
)
def test_fallocate_errors(tmp_path, monkeypatch, code, raised):
    def fail(fd, offset, length):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(npyfile.os, "posix_fallocate", fail)
    path = tmp_path / "t.npy"
    if raised is None:  # no fallocate on this file system: a sparse file, still a valid .npy
        new_npy(path, np.dtype("uint8"), (2, 1, 4, 4))
        assert np.load(path).shape == (2, 1, 4, 4)
    else:
        with pytest.raises(raised, match="disk space" if raised is TilingError else "Input/output"):
            new_npy(path, np.dtype("uint8"), (2, 1, 4, 4))
