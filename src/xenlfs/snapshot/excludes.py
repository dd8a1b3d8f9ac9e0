"""What a snapshot leaves out: the hint's list, every other mounted filesystem, lost+found.

Excluded directories are kept as empty directories (so the restored tree has /proc, /sys,
/dev, /tmp to mount on) except lost+found, which mkfs makes anew. Paths are absolute within
the snapshot's root; patterns are GNU tar's, anchored at the root ('./proc/*').
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from xenlfs.errors import UsageError

# Appendix A of the hint, in its order.
HINT_EXCLUDES = ("/var/backups", "/boot", "/dev", "/lost+found", "/var/lost+found", "/media",
                 "/mnt", "/proc", "/run", "/sys", "/tmp")

# Filesystems that hold no data of their own: a snapshot written there is not a file.
VIRTUAL_FSTYPES = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs",
    "tracefs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "efivarfs",
    "autofs", "binfmt_misc", "rpc_pipefs", "nsfs"})
VOLATILE_FSTYPES = frozenset({"tmpfs", "ramfs"})


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    source: str


@dataclass(frozen=True)
class Exclude:
    path: str  # absolute within the root, e.g. /proc
    keep_dir: bool  # keep the directory itself, empty
    reason: str
    pattern_given: str | None = None  # a user's own wildcard pattern, used as given

    @property
    def pattern(self) -> str:
        if self.pattern_given is not None:
            return self.pattern_given
        base = "." + _escape(self.path)
        return base + "/*" if self.keep_dir else base

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "keep_dir": self.keep_dir, "reason": self.reason,
                "pattern": self.pattern}


def _escape(path: str) -> str:
    """A literal path as a wildcard pattern that GNU tar and fnmatch read the same way."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts listed in /proc/self/mountinfo (see proc(5)), in mount order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        mounts.append(Mount(_unescape_mountinfo(fields[4]), fields[dash + 1],
                            _unescape_mountinfo(fields[dash + 2])))
    return mounts


def read_mounts() -> list[Mount]:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return parse_mountinfo(f.read())


def mount_of(path: str, mounts: Sequence[Mount]) -> Mount | None:
    """The mount a (real, absolute) path lives on: the last-mounted deepest mount point."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.point.rstrip("/") or "/"
        if (path == point or path.startswith(point.rstrip("/") + "/")) and (
                best is None or len(point) >= len(best.point.rstrip("/") or "/")):
            best = mount
    return best


def _normal(path: str) -> str:
    return "/" + os.path.normpath("/" + path).strip("/") if path.strip("/") else "/"


def plan(root: str, mounts: Sequence[Mount], *, user_excludes: Iterable[str] = (),
         includes: Iterable[str] = (), output_paths: Iterable[str] = (),
         is_dir: Callable[[str], bool] = os.path.isdir) -> list[Exclude]:
    """Everything to leave out of a snapshot of `root` (a real absolute path).

    output_paths: absolute host paths of the archive, its manifest and its temporary files.
    """
    root = _normal(root)
    prefix = "" if root == "/" else root
    excludes = [Exclude(p, keep_dir="lost+found" not in p, reason="hint") for p in HINT_EXCLUDES]
    excludes.append(Exclude("/lost+found", False, "lost+found"))
    for mount in mounts:
        point = _normal(mount.point)
        if not point.startswith(prefix + "/") or point == root:
            continue
        inside = point[len(prefix):]
        kind = f"mount: {mount.fstype} {mount.source}"
        excludes.append(Exclude(inside, keep_dir=is_dir(point), reason=kind))
        excludes.append(Exclude(inside + "/lost+found", False, "lost+found"))
    for pattern in user_excludes:
        path = "/" + pattern.strip().lstrip("/")
        literal = not any(c in pattern for c in "*?[")
        excludes.append(Exclude(_normal(path) if literal else path, False, "--exclude",
                                None if literal else "." + path))
    for path in output_paths:  # a trailing '*' stands for temporary names
        if path.startswith(prefix + "/"):
            inside = path[len(prefix):]
            given = "." + _escape(inside[:-1]) + "*" if inside.endswith("*") else None
            excludes.append(Exclude(inside, False, "the snapshot itself", given))
    for include in includes:
        wanted = _normal(include)
        if not any(e.path == wanted for e in excludes):
            known = ", ".join(sorted({e.path for e in excludes}))
            raise UsageError(f"--include {include}: nothing is excluded there",
                             hint=f"excluded paths: {known}")
        excludes = [e for e in excludes if e.path != wanted or e.reason == "lost+found"]
    return _minimal(excludes)


def _minimal(excludes: list[Exclude]) -> list[Exclude]:
    """One entry per path, none inside another excluded tree; first reason wins."""
    by_path: dict[str, Exclude] = {}
    for exclude in excludes:
        kept = by_path.get(exclude.path)
        if kept is None or (kept.keep_dir and not exclude.keep_dir):
            by_path[exclude.path] = exclude if kept is None else Exclude(
                exclude.path, False, kept.reason, exclude.pattern_given)
    result = []
    for path, exclude in sorted(by_path.items()):
        if not any(path.startswith(other.rstrip("/") + "/") for other in by_path
                   if other != path and by_path[other].pattern_given is None):
            result.append(exclude)
    return result


def tar_arguments(excludes: Sequence[Exclude]) -> list[str]:
    # Anchored at the root; wildcards may match '/', as in GNU tar's default for excludes.
    return ["--anchored", "--wildcards", *(f"--exclude={e.pattern}" for e in excludes)]


def matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Is a relative path ('usr/bin', '.') excluded? The same test GNU tar makes."""
    if not patterns:
        return lambda relative: False
    match = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match

    def excluded(relative: str) -> bool:
        return match("./" + relative if relative != "." else ".") is not None
    return excluded


def walk(root: str | os.PathLike[str], excluded: Callable[[str], bool]) -> Iterator[
        tuple[bytes, str, os.DirEntry[bytes] | None]]:
    """(path, relative path, DirEntry) of everything under root that tar --sort=name archives,
    in its order: the root itself ('.', no DirEntry) first, then each directory's names sorted
    bytewise, depth first. Entries that cannot be listed are left out, as tar warns of them."""
    def inside(directory: bytes, relative: str) -> Iterator[
            tuple[bytes, str, os.DirEntry[bytes] | None]]:
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            name = os.fsdecode(entry.name)
            path = name if relative == "." else f"{relative}/{name}"
            if excluded(path):
                continue
            yield entry.path, path, entry
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                yield from inside(entry.path, path)

    top = os.fsencode(root)
    yield top, ".", None
    yield from inside(top, ".")
