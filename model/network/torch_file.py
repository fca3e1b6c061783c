"""What a file given as a checkpoint or weights file is, before and when torch reads it.

``torch.load`` on a wrong file fails with messages about zip central directories, magic numbers or
``weights_only``. :func:`file_kind` says what the file is instead (a folder, empty, a Git LFS
pointer, text, a plain pickle, other bytes) from its first bytes, and :func:`load_error` turns
torch's failure on a file that looked right (truncated, or holding arbitrary Python objects) into
one line, so the error names the file, says what it is, and shows what is expected.
"""

from __future__ import annotations

import re
from pathlib import Path

#: First bytes of a ``torch.save`` file (a zip archive) and of the legacy pre-1.6 format.
ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
#: First line of a Git LFS pointer file.
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
#: What each kind of torch file must hold, for the messages.
EXPECTED = {
    "Checkpoint": "A checkpoint is one file written by torch.save (a zip archive, e.g. "
    "output_dir/best.ckpt from training) holding 'state_dict' (tensors) and "
    "'hyper_parameters' (the ModelConfig).",
    "Weights": "A weights file is one file written by torch.save (a zip archive) holding a state "
    "dict (names -> tensors), possibly under 'state_dict' or 'model'.",
}
_HEAD = 512


def file_kind(path: str | Path) -> str | None:
    """None when ``path`` may be a torch file; else what it is, in words ("an empty file").

    Args:
        path: an existing path.
    """
    path = Path(path)
    if path.is_dir():
        return "a folder, not a file"
    if not path.is_file():
        return "a device or other special file, not a regular file"
    with open(path, "rb") as handle:
        head = handle.read(_HEAD)
    if head.startswith((ZIP_MAGIC, LEGACY_MAGIC)):
        return None
    size = path.stat().st_size
    if not head:
        return "an empty file (0 bytes)"
    if head.startswith(LFS_POINTER):
        return (
            f"a Git LFS pointer ({size} bytes), not the file it stands for; fetch that with "
            "`git lfs pull`"
        )
    if head[:1] == b"\x80":
        return "a Python pickle, not a torch.save file"
    line = _text_line(head)
    if line is not None:
        return f"a text file ({size} bytes, starting {line!r})"
    return f"not a torch file ({size} bytes, starting with bytes {head[:8].hex(' ')})"


def load_error(what: str, path: str | Path, err: BaseException) -> str:
    """One line for torch's failure to load ``path`` safely, without torch's advice.

    Args:
        what: "Checkpoint" or "Weights".
        path: the file.
        err: what ``torch.load(weights_only=True)`` raised.
    """
    expected = EXPECTED.get(what, "")
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    if found or "weights only" in str(err).lower():
        name = f" such as {found[1]}" if found else ""
        return (
            f"{what} file {path} holds Python objects{name}, not only tensors and plain "
            f"containers; it is refused because loading it could run code. {expected}"
        )
    reason = str(err).split(".")[0].strip()
    return f"{what} file {path} is a damaged or truncated torch file ({reason}). {expected}"


def _text_line(head: bytes) -> str | None:
    """The first line of ``head`` (up to 60 characters) when it reads as text, else None."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # not a character cut at the end of the head
            return None
        text = head[: err.start].decode("utf-8")
    if any(ch < " " and ch not in "\t\r\n" for ch in text):
        return None
    return text.strip().splitlines()[0][:60] if text.strip() else text[:60]
