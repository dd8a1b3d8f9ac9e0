"""Two trees compared in everything a root filesystem needs, independently of xenlfs's code:
type, content, mode, owner, mtime, device numbers, symlink text, xattrs, ACLs (as getfacl
prints them), hardlink groups and sparseness."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path
from typing import Any


def _acl(path: bytes) -> str:
    result = subprocess.run(["getfacl", "--numeric", "--skip-base", "--absolute-names",
                             "--physical", os.fsdecode(path)], capture_output=True,
                            check=True)
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    return "\n".join(line for line in lines if line and not line.startswith("# file:"))


def snapshot_of(root: Path) -> tuple[dict[bytes, dict[str, Any]], set[frozenset[bytes]]]:
    top = os.fsencode(root)
    records: dict[bytes, dict[str, Any]] = {}
    inodes: dict[tuple[int, int], list[bytes]] = {}
    for directory, dirs, files in os.walk(top):
        for name in [b"", *dirs, *files] if directory == top else [*dirs, *files]:
            path = os.path.join(directory, name) if name else directory
            relative = os.path.relpath(path, top)
            st = os.lstat(path)
            record: dict[str, Any] = {
                "type": stat.S_IFMT(st.st_mode), "mode": oct(stat.S_IMODE(st.st_mode)),
                "uid": st.st_uid, "gid": st.st_gid, "mtime_ns": st.st_mtime_ns,
                "nlink": st.st_nlink if not stat.S_ISDIR(st.st_mode) else None,
                "xattrs": {n: os.getxattr(path, n, follow_symlinks=False)
                           for n in sorted(os.listxattr(path, follow_symlinks=False))},
            }
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    record["sha256"] = hashlib.file_digest(f, "sha256").hexdigest()
                record["size"] = st.st_size
                record["sparse"] = st.st_blocks * 512 < st.st_size
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(relative)
            elif stat.S_ISLNK(st.st_mode):
                record["target"] = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                record["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            if not stat.S_ISLNK(st.st_mode):
                record["acl"] = _acl(path)
            records[relative] = record
    return records, {frozenset(paths) for paths in inodes.values()}


def differences(a: Path, b: Path) -> list[str]:
    """Every way tree b differs from tree a; empty when they are the same."""
    left, left_links = snapshot_of(a)
    right, right_links = snapshot_of(b)
    found = [f"only in {a}: {p!r}" for p in sorted(left.keys() - right.keys())]
    found += [f"only in {b}: {p!r}" for p in sorted(right.keys() - left.keys())]
    for path in sorted(left.keys() & right.keys()):
        for key in sorted(left[path].keys() | right[path].keys()):
            if left[path].get(key) != right[path].get(key):
                found.append(f"{path!r} {key}: {left[path].get(key)!r} != "
                             f"{right[path].get(key)!r}")
    if left_links != right_links:
        found.append(f"hardlink groups differ: {left_links} != {right_links}")
    return found
