from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_xenlfs
from xenlfs.lab import lfs_files

ROOT_HASH = "$6$xenlfs.test$" + "x" * 86
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests root@test"


@pytest.fixture
def workdir() -> Iterator[Path]:
    """On the root filesystem, not a tmpfs /tmp, so loop devices and xattrs behave."""
    path = Path(tempfile.mkdtemp(prefix="xenlfs-guest-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def sh(*argv: str | os.PathLike[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.fspath(a) for a in argv], check=True, capture_output=True,
                          text=True, **kw)  # type: ignore[call-overload]


def lfs_tree(root: Path, *, extra_bytes: int = 0) -> Path:
    """An LFS-like root: the lab's LFS files (inittab, ifconfig.eth0, fstab, rc) and more."""
    lfs_files.write(root)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    os.chmod(root / "etc/shadow", 0o600)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 lfs-host\n")
    (root / "etc/hostname").write_text("lfs-host\n")
    (root / "sbin").mkdir()
    shutil.copy2("/bin/true", root / "sbin/agetty")
    (root / "usr/bin").mkdir(parents=True)
    (root / "var/log").mkdir(parents=True)
    (root / "root").mkdir(mode=0o700)
    if extra_bytes:
        with open(root / "usr/bin/big", "wb") as f:
            f.write(os.urandom(extra_bytes))
    return root


def snapshot(tree: Path, archive: Path) -> Path:
    result = run_xenlfs("snapshot", "create", str(archive), "--root", str(tree), "--force")
    assert result.returncode == 0, result.stderr
    return archive


@pytest.fixture
def lfs_snapshot(workdir: Path) -> Path:
    return snapshot(lfs_tree(workdir / "tree"), workdir / "lfs.tar.zst")


def free_loop() -> str:
    name = sh("losetup", "--find").stdout.strip()
    if not os.path.exists(name):  # no udev: make the node the kernel has
        os.mknod(name, 0o660 | stat.S_IFBLK, os.makedev(7, int(name.removeprefix("/dev/loop"))))
    return name


@contextlib.contextmanager
def loop_over(image: Path, offset: int = 0, size: int | None = None) -> Iterator[str]:
    window = ["--offset", str(offset)] + (["--sizelimit", str(size)] if size else [])
    for _ in range(5):
        dev = free_loop()
        if subprocess.run(["losetup", *window, dev, str(image)], check=False).returncode == 0:
            break
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "--detach", dev], check=False)


def loops_of(image: Path) -> list[str]:
    return sh("losetup", "--associated", image, "--output", "NAME", "--noheadings").stdout.split()


def our_mounts(name: str = "") -> list[str]:
    """xenlfs's guest mounts (of guest `name` only, if given: other tests may run beside)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    if name:
        return [line for line in lines if line.split()[4] == f"/run/xenlfs/guest-{name}"]
    return [line for line in lines if line.split()[4].startswith("/run/xenlfs/guest-")]


def tree_digest(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every entry's mode, owner and content (or link target), never following links."""
    found: dict[str, tuple[int, int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                content = "->" + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = ""
            found[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_mtime_ns,
                                                  content)
    return found


def check_clean_image(image: Path) -> None:
    """No loop device left on the image, no guest mount left anywhere."""
    assert loops_of(image) == []
    assert our_mounts() == []
