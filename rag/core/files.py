"""Writing files so that a crash leaves either the old state or the new one, never half a file."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PART_PREFIX = ".part-"
"""Temporary files start with this; :meth:`rag.studio.Studio.remove_orphans` clears them as debris."""


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A fresh temporary path beside ``target`` for the block to write; synced and renamed onto
    ``target`` when the block succeeds, removed when it fails.

    Each call gets its own name, so two writers of the same target never share a temporary file:
    the last rename wins and both succeed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=PART_PREFIX, suffix=target.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` all at once or not at all (see :func:`atomic_path`)."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def sha256_bytes(data: bytes) -> str:
    """The content id of bytes: the same picture uploaded twice is one asset."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """The content id of a file, read in blocks so a huge file costs no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def os_error_text(exc: OSError) -> str:
    """An OS error in words; a full disk says what to do about it."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full; free some space and try again"
    return exc.strerror or str(exc)
