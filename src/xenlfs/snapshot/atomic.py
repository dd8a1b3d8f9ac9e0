"""Writing a snapshot under a temporary name that no one mistakes for a finished one.

Each temporary file is locked (flock) for as long as anything writes it: a run killed with
SIGKILL leaves its file, but the lock goes with the last process holding it, so the next
run knows the file is abandoned and removes it, while one being written is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from xenlfs import files

log = logging.getLogger("xenlfs.snapshot")

TEMP_PREFIX = ".xenlfs-snapshot-tmp-"


def locked(path: Path) -> bool:
    """Is someone writing this temporary file right now?"""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def clean_stale(directory: Path) -> list[Path]:
    """Remove temporary snapshots that killed runs left behind (their lock is free)."""
    return files.clean_stale(directory, TEMP_PREFIX, left_by="a snapshot",
                             level=logging.WARNING)


@contextlib.contextmanager
def temp(beside: Path) -> Iterator[tuple[int, Path]]:
    """An exclusive, locked, private (0600: a snapshot holds /etc/shadow) temporary file."""
    # Ctrl-C or SIGTERM between creating the file and guarding it would leave it behind:
    # hold them back until the guard stands.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX + beside.name + ".", dir=beside.parent)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        raise
    path = Path(name)
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd, path
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until this block is done (e.g. the pair of renames)."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
