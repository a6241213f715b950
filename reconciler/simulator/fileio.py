"""The state file's writers: a whole new file atomically, or more bytes at a known place.

The simulator owns these rather than sharing the product's writer: its persistence has its
own rules (locking, batching) that the product does not need.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8); the new file is private (0600, mkstemp's).

    Temp file in the same directory (``os.replace`` must not cross file systems), fsynced
    before the rename; the directory is fsynced after it so the rename survives a power
    loss. The temp file is removed if anything fails, and the error propagates.
    """
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):  # not every platform can open a directory
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_at(path: Path, offset: int, data: bytes) -> os.stat_result:
    """Write ``data`` into the existing file ``path`` at ``offset`` and fsync it; returns
    the file's stat after the write. A reader, or a crash, may see part of ``data``: the
    caller must be able to tell (the state file's last line is then incomplete)."""
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        return os.fstat(handle.fileno())
