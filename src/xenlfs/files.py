"""Writing files so that a crash, Ctrl-C or a full disk never leaves a half-written file."""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from xenlfs import run

log = logging.getLogger("xenlfs.files")

TEMP_PREFIX = ".xenlfs-tmp-"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: Path, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`.

    On any exception (including KeyboardInterrupt) the temporary file is removed and `path`
    is left as it was.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + ".", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.rename(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def backup_path(path: Path, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now))
    candidate = path.with_name(f"{path.name}.{stamp}.xenlfs-bak")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{stamp}-{n}.xenlfs-bak")
        n += 1
    return candidate


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = None,
                 backup: bool = True) -> Path | None:
    """Replace `path` with `data` atomically; keep a timestamped backup of the old file.

    Mode and ownership of an existing file are kept unless `mode` is given. Returns the
    backup's path, if one was made. Under --dry-run nothing is written.
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    if run.dry_run():
        log.info("would write %s (%d bytes)", path, len(payload))
        return None
    saved: Path | None = None
    old = path.lstat() if path.exists() else None
    if old is not None and backup:
        saved = backup_path(path)
        with atomic_output(saved) as tmp:
            shutil.copy2(path, tmp)
    with atomic_output(path, mode=mode if mode is not None else
                       (old.st_mode & 0o7777 if old else 0o644)) as tmp:
        tmp.write_bytes(payload)
        if old is not None:
            os.chown(tmp, old.st_uid, old.st_gid)
    if saved:
        log.info("wrote %s (backup: %s)", path, saved)
    else:
        log.info("wrote %s", path)
    return saved


def unified_diff(path: str, old: str | None, new: str) -> str:
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{path.lstrip('/')}" if old is not None else "/dev/null",
        tofile=f"b/{path.lstrip('/')}",
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)
