"""Writing files so that a reader, or a crash, sees the old content or the new, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a reader (or a crash) sees old or new, never half.

    Temp file in the same directory (``os.replace`` must not cross file systems), flushed
    and fsynced before the rename; the directory is fsynced after it so the rename itself
    survives a power loss. The temp file is removed if anything fails.
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
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` survive a power loss (best effort)."""
    with contextlib.suppress(OSError):  # not every platform can open a directory
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
