import os

import pytest

from tiling.atomic import atomic_write, copy_atomic, write_text_atomic


def test_interrupted_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    def boom(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "x.csv", boom)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "x.csv").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "x.csv", boom)
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]
    assert (tmp_path / "x.csv").read_text() == "old"


def test_write_gets_a_fresh_path_with_the_suffix(tmp_path):
    seen = []

    def write(tmp):
        seen.append((tmp.exists(), tmp.suffix, tmp.parent))
        tmp.write_text("new")

    out = atomic_write(tmp_path / "sub" / "a.gpkg", write)
    assert out == tmp_path / "sub" / "a.gpkg" and out.read_text() == "new"
    assert seen == [(False, ".gpkg", tmp_path / "sub")]


def test_text_and_copy(tmp_path):
    source = write_text_atomic(tmp_path / "a.txt", "héllo")
    assert source.read_text(encoding="utf-8") == "héllo"
    os.utime(source, (1_000_000, 1_000_000))
    target = copy_atomic(source, tmp_path / "b.txt")
    assert target.read_text(encoding="utf-8") == "héllo"
    assert target.stat().st_mtime == 1_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
