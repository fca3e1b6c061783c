import os
import pickle

import numpy as np
import pytest
import torch

from model.network.checkpoint import load_model
from model.network.torch_file import file_kind
from tiling.errors import ConfigError

LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 44012345\n"


def make(tmp_path, kind):
    path = tmp_path / "model.ckpt"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"state_dict": {}}, protocol=4))
    elif kind == "truncated":
        torch.save({"state_dict": {"model.w": torch.zeros(100)}}, path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        data = {
            "text": b"epoch,loss\n1,0.5\n",
            "empty": b"",
            "random": np.random.default_rng(0).bytes(4096),
            "lfs": LFS,
        }[kind]
        path.write_bytes(data)
    return path


CASES = {
    "text": r"is a text file \(17 bytes, starting 'epoch,loss'\)",
    "folder": r"is a folder, not a file",
    "fifo": r"is a device or other special file",
    "empty": r"is an empty file \(0 bytes\)",
    "random": r"is not a torch file \(4096 bytes, starting with bytes [0-9a-f ]{23}\)",
    "lfs": r"is a Git LFS pointer \(\d+ bytes\), not the file it stands for; fetch that with `git lfs pull`",
    "pickle": r"is a Python pickle, not a torch.save file",
    "truncated": r"is a damaged or truncated torch file \(PytorchStreamReader failed",
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_file_that_is_no_checkpoint_gets_one_clear_error(tmp_path, kind):
    path = make(tmp_path, kind)
    with pytest.raises(ConfigError, match=rf"^Checkpoint file .*model.ckpt {CASES[kind]}") as err:
        load_model(path)
    message = str(err.value)
    assert "A checkpoint is one file written by torch.save (a zip archive" in message
    assert "weights_only" not in message and "\n" not in message


def test_arbitrary_objects_are_refused_without_torchs_advice(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": np.random.default_rng(0)}, path)
    with pytest.raises(
        ConfigError,
        match=r"holds Python objects such as [\w.]+, not only tensors .* could run code",
    ):
        load_model(path)


def test_torch_files_pass_the_sniffing(tmp_path):
    torch.save({"a": torch.zeros(1)}, tmp_path / "new.pt")
    torch.save({"a": torch.zeros(1)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert file_kind(tmp_path / "new.pt") is None and file_kind(tmp_path / "old.pt") is None
    assert torch.load(tmp_path / "old.pt", weights_only=True)["a"].shape == (1,)


def test_a_utf8_character_cut_at_512_bytes_is_still_text(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("a" * 511 + "é" * 10, encoding="utf-8")
    assert file_kind(path).startswith("a text file")
