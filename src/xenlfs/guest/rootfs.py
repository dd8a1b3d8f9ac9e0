"""The guest's files, reached only as the guest itself would see them.

The hint warns: edit the new partition's etc/fstab, not the host's. A snapshot may hold
symlinks that point anywhere (etc -> /etc, etc/fstab -> ../../../../etc/inittab): followed
from the host they would reach host files. Here every path is walked one component at a
time from a directory descriptor of the guest root, each step opened with O_NOFOLLOW;
a symlink is read and its target walked again the same way, an absolute one from the guest
root and '..' never above it. So no read or write can leave the guest, even if the tree
changes under us (a swapped-in symlink only makes the open fail).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xenlfs.errors import PreconditionError

MAX_LINKS = 40  # as Linux: more symlinks than this on one lookup is a loop
TEMP_PREFIX = ".xenlfs-tmp-"


class GuestPathError(PreconditionError):
    """A guest path cannot be resolved inside the guest (a loop, a file used as a directory)."""


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


@dataclass(frozen=True)
class Node:
    """What a guest path is, after the guest's symlinks are followed (if asked to)."""

    path: str  # the real guest path, '/'-rooted, with no symlink in it
    st: os.stat_result | None  # None: does not exist (its parent does)

    @property
    def kind(self) -> str:
        if self.st is None:
            return "missing"
        mode = self.st.st_mode
        for test, name in ((stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"),
                           (stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "char"),
                           (stat.S_ISBLK, "block")):
            if test(mode):
                return name
        return "other"


class GuestRoot:
    """A guest's root directory. Paths given to it are guest paths ('/etc/fstab')."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"GuestRoot({str(self.root)!r})"

    @contextlib.contextmanager
    def _root_fd(self) -> Iterator[int]:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            yield fd
        finally:
            os.close(fd)

    def resolve(self, path: str, *, follow: bool = True) -> str:
        """The guest path with every symlink resolved inside the guest ('/' joined).

        follow=False keeps a final symlink as it is (lstat semantics)."""
        todo = _parts(path)
        done: list[str] = []
        links = 0
        with self._root_fd() as root_fd:
            while todo:
                name = todo.pop(0)
                if name == "..":
                    if done:
                        done.pop()
                    continue
                parent = self._open_dir(root_fd, done, path)
                try:
                    try:
                        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                    except FileNotFoundError:
                        # Nothing below a missing name exists: the rest is taken literally.
                        done.append(name)
                        for rest in todo:
                            if rest != "..":
                                done.append(rest)
                            elif done:
                                done.pop()
                        break
                    if stat.S_ISLNK(st.st_mode) and (todo or follow):
                        links += 1
                        if links > MAX_LINKS:
                            raise GuestPathError(
                                f"guest path {path} is a symlink loop inside the guest",
                                hint="fix or remove that symlink in the snapshot's tree")
                        target = os.readlink(name, dir_fd=parent)
                        if target.startswith("/"):
                            done = []
                        todo = _parts(target) + todo
                        continue
                    if todo and not stat.S_ISDIR(st.st_mode):
                        raise GuestPathError(f"guest path {path}: /{'/'.join([*done, name])} "
                                             "is not a directory")
                    done.append(name)
                finally:
                    os.close(parent)
        return "/" + "/".join(done)

    def _open_dir(self, root_fd: int, parts: list[str], asked: str) -> int:
        """A descriptor of a directory reached through real directories only."""
        fd = os.dup(root_fd)
        for name in parts:
            try:
                nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise GuestPathError(f"guest path {asked}: /{'/'.join(parts)} changed "
                                         "while it was being resolved") from e
                raise
            os.close(fd)
            fd = nxt
        return fd

    @contextlib.contextmanager
    def parent(self, path: str, *, follow: bool = False) -> Iterator[tuple[int, str]]:
        """(descriptor of the guest directory holding `path`, the final name)."""
        real = self.resolve(path, follow=follow)
        parts = _parts(real)
        if not parts:
            raise GuestPathError(f"guest path {path} is the guest root itself")
        with self._root_fd() as root_fd:
            fd = self._open_dir(root_fd, parts[:-1], path)
        try:
            yield fd, parts[-1]
        finally:
            os.close(fd)

    def node(self, path: str, *, follow: bool = True) -> Node:
        real = self.resolve(path, follow=follow)
        if real == "/":
            return Node(real, os.stat(self.root))
        try:
            with self.parent(real) as (fd, name):
                return Node(real, os.stat(name, dir_fd=fd, follow_symlinks=False))
        except FileNotFoundError:
            return Node(real, None)

    def read_text(self, path: str) -> str | None:
        """A guest file's text as the guest reads it, or None if it does not exist."""
        node = self.node(path)
        if node.st is None:
            return None
        if node.kind != "file":
            raise GuestPathError(f"guest path {path} is a {node.kind}, not a file")
        with self.parent(node.path) as (fd, name):
            handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
            with open(handle, "rb") as f:
                return f.read().decode("utf-8", "surrogateescape")

    def readlink(self, path: str) -> str:
        with self.parent(path) as (fd, name):
            return os.readlink(name, dir_fd=fd)

    def write_text(self, path: str, text: str, *, mode: int = 0o644) -> None:
        """Replace the guest file at `path` atomically (like `sed -i`, a symlink there is
        replaced by a file, never written through). Owner and mode of a file are kept."""
        with self.parent(path) as (fd, name):
            try:
                old = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                old = None
            keep = old is not None and stat.S_ISREG(old.st_mode)
            tmp = f"{TEMP_PREFIX}{name}.{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=fd)
            handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             0o600, dir_fd=fd)
            try:
                with open(handle, "wb") as f:
                    f.write(text.encode("utf-8", "surrogateescape"))
                    os.fchmod(f.fileno(), old.st_mode & 0o7777 if keep and old else mode)
                    if keep and old:
                        os.fchown(f.fileno(), old.st_uid, old.st_gid)
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=fd)
                raise
            os.fsync(fd)

    def mkdir(self, path: str, mode: int) -> None:
        """Make a directory (parents too, inside the guest) and set its mode."""
        parts = _parts(path)
        for i in range(1, len(parts) + 1):
            node = self.node("/".join(parts[:i]))
            if node.st is None:
                with self.parent(node.path) as (fd, name):
                    os.mkdir(name, 0o755, dir_fd=fd)
        with self.parent(self.resolve(path)) as (fd, name):
            handle = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            try:
                os.fchmod(handle, mode)
            finally:
                os.close(handle)

    def remove(self, path: str) -> None:
        """Remove a file, symlink, node or empty directory (never followed)."""
        with self.parent(path) as (fd, name):
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)

    def symlink(self, path: str, target: str) -> None:
        with self.parent(path) as (fd, name):
            os.symlink(target, name, dir_fd=fd)

    def mknod(self, path: str, mode: int, major: int, minor: int) -> None:
        with self.parent(path) as (fd, name):
            # A node cannot be opened to fchmod it without opening the device: mask instead.
            old = os.umask(0)
            try:
                os.mknod(name, mode | stat.S_IFCHR, os.makedev(major, minor), dir_fd=fd)
            finally:
                os.umask(old)

    def listdir(self, path: str) -> list[str]:
        node = self.node(path)
        if node.kind != "dir":
            return []
        with self._root_fd() as root_fd:
            fd = self._open_dir(root_fd, _parts(node.path), path)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)
