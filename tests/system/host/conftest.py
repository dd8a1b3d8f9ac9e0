"""Real filesystems on loop devices for the host tests (udev does not run here)."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def mounted_ext4(image: Path, mountpoint: Path, size_mb: int = 32) -> Iterator[Path]:
    with open(image, "wb") as f:
        f.truncate(size_mb << 20)
    _sh("mkfs.ext4", "-q", "-F", str(image))
    device = _sh("losetup", "-f")
    if not os.path.exists(device):  # no udev: make the node losetup -f named
        os.mknod(device, 0o660 | stat.S_IFBLK, os.makedev(7, int(device.removeprefix("/dev/loop"))))
    _sh("losetup", device, str(image))
    try:
        mountpoint.mkdir(parents=True, exist_ok=True)
        _sh("mount", device, str(mountpoint))
        try:
            yield mountpoint
        finally:
            _sh("umount", str(mountpoint))
    finally:
        _sh("losetup", "-d", device)


@pytest.fixture
def ext4_mount(tmp_path: Path) -> Iterator[Path]:
    with mounted_ext4(tmp_path / "fs.img", tmp_path / "mnt") as mnt:
        yield mnt
