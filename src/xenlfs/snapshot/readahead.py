"""Reading the tree ahead of GNU tar, so the disk has many reads to do at once.

tar reads one file after another and waits for each, so on a cold page cache a snapshot goes
as slowly as the disk's latency allows. A thread walks the tree in tar's order and asks the
kernel to read each regular file in the background (posix_fadvise WILLNEED), at most
`window` bytes ahead of what tar has written so far: tar then finds its files in the page
cache, and a root larger than memory is not read twice. It is advice only: an error skips
the file, never the snapshot.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from xenlfs.snapshot import excludes as ex

log = logging.getLogger("xenlfs.snapshot")

MAX_WINDOW = 256 << 20
PIECE = 8 << 20  # a big file is advised piece by piece, so it too stays within the window


def files_in_tar_order(root: Path, excluded: Callable[[str], bool]) -> Iterator[
        tuple[bytes, int]]:
    """(path, size) of the regular files tar --sort=name reads, in its order; a hard-linked
    inode once; sparse files left out (tar reads only their data, and advice on their holes
    would fill the cache with zeros)."""
    seen: set[tuple[int, int]] = set()
    for path, _, entry in ex.walk(root, excluded):
        try:
            if entry is None or not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.st_nlink > 1:
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
        if stat.st_blocks * 512 >= stat.st_size:
            yield path, stat.st_size


def default_window() -> int:
    """A quarter of the memory free for the page cache, at most MAX_WINDOW."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return min(MAX_WINDOW, int(line.split()[1]) * 1024 // 4)
    except (OSError, ValueError, IndexError):
        pass
    return 32 << 20


class Readahead:
    """with Readahead(root, excluded) as ahead: ... ahead.consumed(bytes tar wrote) ..."""

    def __init__(self, root: Path, excluded: Callable[[str], bool],
                 window: int | None = None) -> None:
        self._root = root
        self._excluded = excluded
        self._window = default_window() if window is None else window
        self._consumed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="readahead", daemon=True)

    def __enter__(self) -> Readahead:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def consumed(self, offset: int) -> None:
        self._consumed = offset

    def _room(self, requested: int) -> bool:
        """Wait until tar is less than a window behind; False once told to stop."""
        while requested - self._consumed > self._window:
            if self._stop.wait(0.005):
                return False
        return not self._stop.is_set()

    def _run(self) -> None:
        requested = 0
        for path, size in files_in_tar_order(self._root, self._excluded):
            if not self._room(requested):
                return
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
            except OSError:
                continue
            try:
                for offset in range(0, size, PIECE):
                    if offset and not self._room(requested):
                        return
                    os.posix_fadvise(fd, offset, PIECE, os.POSIX_FADV_WILLNEED)
                    requested += min(PIECE, size - offset)
            except OSError as e:
                log.debug("readahead of %s: %s", os.fsdecode(path), e)
            finally:
                os.close(fd)
