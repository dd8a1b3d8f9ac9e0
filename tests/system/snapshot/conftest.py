from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def workdir() -> Iterator[Path]:
    """On the root filesystem, not a tmpfs /tmp: xattrs and ACLs must behave as on a disk."""
    path = Path(tempfile.mkdtemp(prefix="xenlfs-test-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def sh(*argv: str | os.PathLike[str]) -> None:
    subprocess.run([os.fspath(a) for a in argv], check=True)


def make_tree(root: Path) -> Path:
    """A small root filesystem with every kind of entry a snapshot must keep."""
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    ping = root / "usr/bin/ping"
    ping.write_bytes(b"\x7fELF pretend binary\n" * 100)
    os.chmod(ping, 0o4755)
    # cap_net_raw+ep, as Debian ships ping
    sh("setfattr", "-n", "security.capability", "-v", "0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=", ping)
    sh("setfattr", "-n", "user.comment", "-v", "a user xattr", ping)
    sh("setfattr", "-n", "trusted.overlay", "-v", "0x00ff01", ping)
    os.link(ping, root / "usr/bin/ping6")
    shared = root / "srv"
    shared.mkdir()
    (shared / "acl-file").write_text("acl\n")
    sh("setfacl", "-m", "u:1234:r,g:5678:rw", shared / "acl-file")
    sh("setfacl", "-d", "-m", "u:1234:rx", shared)
    with open(root / "sparse.img", "wb") as f:
        f.truncate(64 << 20)
        f.seek(20 << 20)
        f.write(b"data in the middle" * 1000)
    os.mknod(root / "null", 0o20666, os.makedev(1, 3))
    os.mknod(root / "loop200", 0o60660, os.makedev(7, 200))
    os.mkfifo(root / "initctl", 0o600)
    tmp = root / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    setgid = root / "var/mail"
    setgid.mkdir(parents=True)
    os.chmod(setgid, 0o2775)
    os.chown(setgid, 0, 8)
    (root / os.fsdecode(b"caf\xe9-latin1")).write_text("non-UTF-8 name\n")
    owned = root / "home/user"
    owned.mkdir(parents=True)
    (owned / "notes").write_text("mine\n")
    for path in (owned, owned / "notes"):
        os.chown(path, 1234, 5678)
    os.symlink("ping", root / "usr/bin/ping-relative")
    os.symlink("/usr/bin/ping", root / "usr/bin/ping-absolute")
    os.symlink("does-not-exist", root / "dangling")
    os.lchown(root / "dangling", 1234, 5678)
    (root / "empty").touch()
    old = root / "old"
    old.write_text("from 2001\n")
    os.utime(old, ns=(978_307_200_123_456_789, 978_307_200_123_456_789))
    os.utime(root / "dangling", ns=(1_000_000_000_000_000_000,) * 2, follow_symlinks=False)
    return root


@pytest.fixture
def tree(workdir: Path) -> Path:
    return make_tree(workdir / "root")
