import errno
import os

import pytest

from tiling.errors import OutputError
from tiling.outputs import check_output_file, check_output_folder, disk_full_errors


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "input.tif"
    path.write_bytes(b"raster bytes")
    return path


def test_a_new_file_in_a_new_folder_is_fine(tmp_path, source):
    out = tmp_path / "new" / "out.csv"
    assert check_output_file(out, inputs=[source]) == out
    assert not out.parent.exists()  # checked, not created


def test_the_input_itself_is_refused(source):
    with pytest.raises(OutputError, match=r"--out .*input.tif is the input .*choose another --out"):
        check_output_file(source, option="--out", inputs=[source], overwrite=True)
    assert source.read_bytes() == b"raster bytes"


def test_the_input_under_another_name_is_refused(tmp_path, source):
    hard = tmp_path / "hard.tif"
    os.link(source, hard)
    dotted = tmp_path / "sub" / ".." / "input.tif"
    (tmp_path / "sub").mkdir()
    for alias in (hard, dotted):
        with pytest.raises(OutputError, match="is the input"):
            check_output_file(alias, inputs=[source], overwrite=True)


def test_two_new_outputs_with_one_name_are_refused(tmp_path):
    out = tmp_path / "o.csv"
    with pytest.raises(OutputError, match="is the input"):
        check_output_file(tmp_path / "." / "o.csv", inputs=[out])


def test_a_symlink_is_refused_and_kept(tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("keep")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with pytest.raises(OutputError, match=r"link.csv is a symbolic link \(to .*target.csv\)"):
        check_output_file(link, option="--out", overwrite=True)
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere.csv")
    with pytest.raises(OutputError, match="is a symbolic link"):
        check_output_file(dangling, overwrite=True)
    assert link.is_symlink() and target.read_text() == "keep"


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(
        OutputError, match=r"is a folder; give a file name, e\.g\. .*predictions.csv"
    ):
        check_output_file(tmp_path, option="--out", overwrite=True)


def test_a_device_is_refused():
    with pytest.raises(OutputError, match=r"/dev/null is a character device, not a regular file"):
        check_output_file("/dev/null", option="--out", overwrite=True)


def test_an_existing_file_needs_overwrite(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("old")
    with pytest.raises(OutputError, match=r"--out .*old.csv already exists; pass --overwrite"):
        check_output_file(old, option="--out")
    with pytest.raises(OutputError, match=r"pass overwrite=True to replace it"):
        check_output_file(old)
    assert check_output_file(old, overwrite=True) == old
    assert old.read_text() == "old"


def test_a_file_as_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"file is a regular file, so .* cannot be a folder"):
        check_output_file(tmp_path / "file" / "out.csv")
    with pytest.raises(OutputError, match=r"--output-dir .*file is a regular file, not a folder"):
        check_output_folder(tmp_path / "file", option="--output-dir")


def test_a_read_only_folder_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)  # refused by os.access for a normal user; root passes, hence the patch
    monkeypatch.setattr(os, "access", lambda path, mode: os.stat(path).st_mode & 0o200 != 0)
    try:
        with pytest.raises(OutputError, match=r"the folder .*ro is not writable"):
            check_output_folder(folder / "run", option="--output-dir")
        with pytest.raises(OutputError, match="is not writable"):
            check_output_file(folder / "out.csv")
    finally:
        folder.chmod(0o755)


def test_folders_existing_or_new_and_links_to_folders_are_fine(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    for folder in (tmp_path / "real", tmp_path / "link", tmp_path / "new" / "deeper"):
        assert check_output_folder(folder) == folder


def test_disk_full_names_the_file_and_the_bytes(tmp_path):
    out = tmp_path / "o.csv"
    with (
        pytest.raises(
            OutputError,
            match=r"disk full while writing .*o.csv: it needs 1,234 bytes, [\d,]+ bytes free in",
        ),
        disk_full_errors(out, needed=1234),
    ):
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(PermissionError), disk_full_errors(out):
        raise PermissionError(errno.EACCES, "denied")  # other errors pass through
