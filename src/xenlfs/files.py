"""Writing host files so that a crash, Ctrl-C or a full disk never leaves a half-written file.

A verb that edits a file the user owns says what it wants there as a FileChange (the text
now, the text wanted) and applies it: the one place that writes such a file, and the one
place --dry-run shows the diff instead.

A path that is a symlink (a distribution's /boot/grub/grub.cfg -> ../grub2/grub.cfg) is
followed: the file it names is the one replaced, with that file's mode and owner, so the
link and whoever reads through it see the new text. (Guest files are not written here but
through guest/rootfs.py, which never follows a link out of the guest.) Each temporary file is
locked while it is written; one whose lock is free was left by a killed run and is removed by
the next write into that directory. Backups of a file are pruned to the newest few.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from xenlfs import run
from xenlfs.errors import PreconditionError, SourceError

log = logging.getLogger("xenlfs.files")

TEMP_PREFIX = ".xenlfs-tmp-"
BACKUP_SUFFIX = ".xenlfs-bak"
DEFAULT_BACKUPS = 5

_backups_kept: ContextVar[int] = ContextVar("backups_kept", default=DEFAULT_BACKUPS)


def set_backups_kept(count: int) -> None:
    """How many backups of each file are kept ([xenlfs] backups); 0 makes none."""
    _backups_kept.set(count)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_stale(directory: Path, prefix: str = TEMP_PREFIX, *, left_by: str = "a run",
                level: int = logging.INFO) -> list[Path]:
    """Remove the temporary files (named `prefix`*) killed runs left in `directory`: their
    lock is free. One being written holds its lock and is left alone. So are directories
    (temp_dir's), but only those of this user: /tmp is everyone's."""
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for path in Path(directory).glob(prefix + "*"):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                found = os.fstat(fd)
                is_dir = stat.S_ISDIR(found.st_mode) and found.st_uid == os.geteuid()
                if not (stat.S_ISREG(found.st_mode) or is_dir):
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another xenlfs is writing it right now
            else:
                try:
                    if is_dir:
                        shutil.rmtree(path)  # never follows a link inside (fd-based)
                    else:
                        path.unlink(missing_ok=True)
                    removed.append(path)
                except OSError as e:  # not ours to remove (a read-only place, another user)
                    log.debug("cannot remove %s: %s", path, e)
            finally:
                os.close(fd)
    for path in removed:
        log.log(level, "removed %s, left by %s that was killed", path, left_by)
    return removed


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A private working directory in the temporary directory (TMPDIR), locked while in use
    and removed after it. One a killed run left (its lock free) is removed by the next call
    with the same prefix."""
    parent = Path(tempfile.gettempdir())
    clean_stale(parent, prefix, left_by="a run")
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until removed: the directory is not stale
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: Path, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`.

    On any exception (including KeyboardInterrupt) the temporary file is removed and `path`
    is left as it was. `path` must not be a symlink (write_atomic resolves it first).
    """
    path = Path(path)
    clean_stale(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + ".", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until renamed: the file is not stale
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
    finally:
        os.close(fd)


_BACKUP = re.compile(r"\.(\d{8}T\d{6})(?:-(\d+))?" + re.escape(BACKUP_SUFFIX) + "$")


def backup_path(path: Path, now: float | None = None) -> Path:
    """A new backup's name: the time, and a number above any other backup of that second
    (backups_of sorts by both, so the newest stays last even after older ones are pruned)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now))
    numbers = [_number(p) for p in backups_of(path) if p.name.startswith(f"{path.name}.{stamp}")]
    if not numbers:
        return path.with_name(f"{path.name}.{stamp}{BACKUP_SUFFIX}")
    return path.with_name(f"{path.name}.{stamp}-{max(numbers) + 1}{BACKUP_SUFFIX}")


def _number(backup: Path) -> int:
    match = _BACKUP.search(backup.name)
    return int(match[2] or 0) if match else 0


def backups_of(path: Path) -> list[Path]:
    """The backups write_atomic made of `path`, oldest first."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for other in path.parent.iterdir():
            rest = other.name[len(path.name):] if other.name.startswith(path.name) else ""
            match = _BACKUP.fullmatch(rest)
            if match:
                found.append(((match[1], int(match[2] or 0)), other))
    return [p for _, p in sorted(found)]


def prune_backups(path: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` backups of `path`."""
    old = backups_of(path)
    removed = old[:max(len(old) - keep, 0)]
    for backup in removed:
        backup.unlink(missing_ok=True)
        log.info("removed old backup %s (keeping the newest %d)", backup, keep)
    return removed


def resolve(path: Path) -> Path:
    """The file a write to `path` must replace: symlinks followed; refused unless it is a
    regular file or missing (a FIFO, device or directory is never replaced by a file)."""
    path = Path(path)
    real = Path(os.path.realpath(path))
    try:
        st = real.stat()
    except FileNotFoundError:
        if path.is_symlink():
            log.info("%s is a symlink to %s, which does not exist yet: writing it", path, real)
        return real
    except OSError as e:  # a symlink loop, a file used as a directory
        raise PreconditionError(f"cannot write {path}: {e.strerror}",
                                hint="fix that path (ls -l it) and run again") from e
    if not stat.S_ISREG(st.st_mode):
        kind = "directory" if stat.S_ISDIR(st.st_mode) else "special file (FIFO, device, socket)"
        shown = path if real == path else f"{path} (a symlink to {real})"
        raise PreconditionError(f"{shown} is a {kind}, not a regular file: xenlfs does not "
                                "replace it", hint="remove it or give another path")
    return real


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = None,
                 backup: bool = True, follow_symlinks: bool = True) -> Path | None:
    """Replace the file at `path` with `data` atomically; keep a timestamped backup.

    A symlink is followed and its target replaced, unless `follow_symlinks` is false: then
    the link itself is replaced by the file (for names that must hold this very file, such
    as an installed kernel, where the link's target is another file that must survive).
    Mode and ownership of an existing file are kept unless `mode` is given; a new file gets
    `mode` or 0644. Returns the backup's path, if one was made. Under --dry-run nothing is
    written.
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    real = path if not follow_symlinks and path.is_symlink() else resolve(path)
    if run.dry_run():
        log.info("would write %s (%d bytes)", real, len(payload))
        return None
    saved: Path | None = None
    old = real.stat() if real.exists() and not real.is_symlink() else None
    keep = _backups_kept.get()
    if old is not None and backup and keep > 0:
        saved = backup_path(real)
        # chown clears setuid bits: the mode is set after it (atomic_output's mode).
        with atomic_output(saved, mode=stat.S_IMODE(old.st_mode)) as tmp:
            shutil.copyfile(real, tmp)
            shutil.copystat(real, tmp)
            os.chown(tmp, old.st_uid, old.st_gid)
    with atomic_output(real, mode=mode if mode is not None else
                       (stat.S_IMODE(old.st_mode) if old else 0o644)) as tmp:
        tmp.write_bytes(payload)
        if old is not None:
            os.chown(tmp, old.st_uid, old.st_gid)
    shown = path if real == path else f"{path} (through the symlink: {real})"
    if saved:
        prune_backups(real, keep)
        log.info("wrote %s (backup: %s)", shown, saved)
    else:
        log.info("wrote %s", shown)
    return saved


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file's text; binary or Latin-1 bytes are a file:line:col error."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad, why = e.start, f"byte 0x{data[e.start]:02x} is not UTF-8"
    else:
        if "\0" not in text:
            return text
        bad, why = data.index(b"\0"), "a NUL byte"
    start = data.rfind(b"\n", 0, bad) + 1
    line = data.count(b"\n", 0, bad) + 1
    col = len(data[start:bad].decode("utf-8", "replace")) + 1
    raise SourceError(str(path), line, col, f"{why}: this is not {what} (binary or another "
                      "encoding)", "give the right file, or convert it to UTF-8 (iconv -f "
                      "latin1 -t utf-8)")


def unified_diff(path: str, old: str | None, new: str) -> str:
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{path.lstrip('/')}" if old is not None else "/dev/null",
        tofile=f"b/{path.lstrip('/')}",
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


@dataclass(frozen=True)
class FileChange:
    """A host file the user owns (grub.cfg, a bootscript, an xl config, an ifconfig file):
    its text now and the text a verb wants there. Building one reads only."""

    path: Path
    old: str | None  # None: there is no file yet
    new: str
    mode: int | None = None  # None: an existing file keeps its mode, a new one gets 0644
    old_mode: int | None = None  # given when a different mode alone is a change to make

    @classmethod
    def to(cls, path: Path, new: str, *, what: str, mode: int | None = None) -> FileChange:
        """The change that makes `path` hold `new`; `what` names the file in an error about
        its bytes (read_text). What is not a regular file reads as absent: apply refuses it."""
        path = Path(path)
        return cls(path, read_text(path, what) if path.is_file() else None, new, mode)

    @property
    def needed(self) -> bool:
        return self.old != self.new or (self.mode is not None and self.old_mode is not None
                                        and self.old_mode != self.mode)

    def diff(self) -> str:
        return unified_diff(str(self.path), self.old, self.new) if self.old != self.new else ""

    def apply(self) -> Path | None:
        """Write the new text (write_atomic: a backup of the old file, the parent directories
        made); under --dry-run write nothing and show the diff on stdout instead. Returns
        the backup, if one was made. Nothing happens when nothing changes."""
        if not self.needed:
            return None
        if run.dry_run():
            sys.stdout.write(self.diff())
            sys.stdout.flush()
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return write_atomic(self.path, self.new, mode=self.mode)
        except PermissionError as e:
            raise PreconditionError(f"cannot write {self.path}: {e.strerror}",
                                    hint="run as root") from e
