"""Who else uses a volume — mounts, processes holding it open, exclusive claims (a running
domU's blkback, a mount in another namespace) — and which uses are xenlfs's own leftovers:
a mount at /run/xenlfs/guest-NAME whose `guest prepare NAME` is gone (killed with -9)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator, Set
from pathlib import Path

from xenlfs import run
from xenlfs.errors import PreconditionError

MOUNT_BASE = Path("/run/xenlfs")


def mountpoint(name: str) -> Path:
    return MOUNT_BASE / f"guest-{name}"


def lock_path(name: str) -> Path:
    return MOUNT_BASE / f"guest-{name}.lock"


def mkfs_marker(name: str) -> Path:
    """Written just before mkfs, removed once it is done: found by the next run (which holds
    the guest's lock, so the writer is gone), it names a volume a killed mkfs left half-made."""
    return MOUNT_BASE / f"mkfs-{name}"  # never a guest-* mountpoint, whatever NAME


def volume_identity(path: Path, offset: int) -> str:
    """The volume mkfs writes: a device by its numbers, an image by its inode, and where the
    filesystem starts in it."""
    st = os.stat(path)
    if stat.S_ISBLK(st.st_mode):
        return f"block {os.major(st.st_rdev)}:{os.minor(st.st_rdev)} at {offset}\n"
    return f"file {st.st_dev}:{st.st_ino} at {offset}\n"


def half_made(name: str, path: Path, offset: int) -> bool:
    """Did a killed run of this guest's prepare leave its mkfs of this volume unfinished?"""
    try:
        return mkfs_marker(name).read_text() == volume_identity(path, offset)
    except (OSError, UnicodeDecodeError):
        return False


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """One prepare per guest name at a time, so a mount of that name found now is a leftover.
    The lock file is removed afterwards (while still held: whoever opened it meanwhile sees
    it is gone and makes a new one)."""
    if run.dry_run():
        yield
        return
    MOUNT_BASE.mkdir(parents=True, exist_ok=True)
    path = lock_path(name)
    while True:
        lock = open(path, "a")  # noqa: SIM115 (held for the whole run)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise PreconditionError(f"another 'xenlfs guest prepare {name}' is running",
                                    hint="wait for it to finish") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino:
                break
        lock.close()  # the previous holder removed it between our open and our lock
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        lock.close()


def _running(name: str) -> bool:
    """Whether a `guest prepare NAME` holds its lock now."""
    try:
        probe = open(lock_path(name))  # noqa: SIM115
    except OSError:
        return False
    with probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def leftover(where: str, mine: str) -> bool:
    """A mount xenlfs made for a `guest prepare` that is no longer running. `mine` is this
    run's guest name: its lock is ours, so its mount is a leftover too."""
    path = Path(where)
    if path.parent != MOUNT_BASE or not path.name.startswith("guest-"):
        return False
    name = path.name.removeprefix("guest-")
    return name == mine or not _running(name)


def mounts() -> dict[str, list[str]]:
    """Device number ("major:minor") → where it is mounted, in this mount namespace."""
    found: dict[str, list[str]] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        where = fields[4].replace("\\040", " ")
        found.setdefault(fields[2], []).append(where)
    return found


def open_by(*, devices: Set[int] = frozenset(), files: Set[tuple[int, int]] = frozenset()
            ) -> list[str]:
    """Other processes holding one of these block devices (by st_rdev) or files (by st_dev,
    st_ino) open, as 'PID (command)'."""
    holders = []
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue  # gone, or a kernel thread
        for fd in fds:
            try:
                st = os.stat(fd)
            except OSError:
                continue
            if (stat.S_ISBLK(st.st_mode) and st.st_rdev in devices) or \
                    (stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) in files):
                with contextlib.suppress(OSError):
                    holders.append(f"{proc.name} ({(proc / 'comm').read_text().strip()})")
                break
    return holders


def claimed(device: Path) -> bool:
    """Whether the kernel has given the block device to someone exclusively (a mounted
    filesystem, also in another namespace; blkback serving a guest; dm, md, swap)."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_EXCL)
    except OSError as e:
        if e.errno == errno.EBUSY:
            return True
        raise
    os.close(fd)
    return False
