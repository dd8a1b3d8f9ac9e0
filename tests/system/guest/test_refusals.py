"""Each safety refusal with a real loop device: exit 3, the reason, nothing changed."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.guest.conftest import loop_over, our_mounts, sh

LVM_CONFIG = "activation{udev_sync=0 udev_rules=0} devices{obtain_device_list_from_udev=0}"


def image(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


@pytest.fixture
def loop(workdir: Path) -> Iterator[str]:
    with loop_over(image(workdir / "disk.img", 128 << 20)) as dev:
        yield dev


def refused(xenlfs, snapshot: Path, target: str, *extra: str) -> str:
    result = xenlfs("guest", "prepare", "r1", "--snapshot", str(snapshot), "--target", target,
                    *extra)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert our_mounts("r1") == []
    return result.stderr


def test_mounted_device(xenlfs, workdir: Path, lfs_snapshot: Path, loop: str):
    sh("mkfs.ext4", "-q", loop)
    mnt = workdir / "mnt"
    mnt.mkdir()
    sh("mount", loop, mnt)
    try:
        (mnt / "precious").write_text("keep\n")
        err = refused(xenlfs, lfs_snapshot, loop, "--mkfs", "ext4", "--yes")
        assert "mounted on" in err and str(mnt) in err
        assert (mnt / "precious").read_text() == "keep\n"
    finally:
        sh("umount", mnt)


def test_mounted_partition_of_a_device(xenlfs, workdir: Path, lfs_snapshot: Path):
    # a device whose partition is mounted: here, an image attached at an offset and mounted
    disk = image(workdir / "whole.img", 128 << 20)
    with loop_over(disk), loop_over(disk, 64 << 20, 64 << 20) as part:
        sh("mkfs.ext4", "-q", part)
        mnt = workdir / "mnt"
        mnt.mkdir()
        sh("mount", part, mnt)
        try:
            err = refused(xenlfs, lfs_snapshot, str(disk))
            assert "in use" in err or "mounted" in err
            assert "mounted" in refused(xenlfs, lfs_snapshot, part)
        finally:
            sh("umount", mnt)


def test_swap_in_use(xenlfs, lfs_snapshot: Path, loop: str):
    sh("mkswap", loop)
    sh("swapon", loop)
    try:
        err = refused(xenlfs, lfs_snapshot, loop, "--mkfs", "ext4", "--yes")
        assert "swap" in err
    finally:
        sh("swapoff", loop)


def test_lvm_physical_volume(xenlfs, lfs_snapshot: Path, loop: str):
    sh("pvcreate", "--config", LVM_CONFIG, "-q", loop)
    try:
        err = refused(xenlfs, lfs_snapshot, loop, "--mkfs", "ext4", "--yes")
        assert "LVM physical volume" in err
    finally:
        sh("pvremove", "--config", LVM_CONFIG, "-q", "-y", loop)


def test_too_small(xenlfs, workdir: Path, lfs_snapshot: Path):
    with loop_over(image(workdir / "small.img", 16 << 20)) as small:
        err = refused(xenlfs, lfs_snapshot, small)
        assert "too small" in err
    err = refused(xenlfs, lfs_snapshot, str(workdir / "new.img"), "--size", "8M")
    assert "too small" in err and not (workdir / "new.img").exists()


def test_mkfs_over_a_filesystem_asks_and_refuses_without_a_terminal(
        xenlfs, lfs_snapshot: Path, loop: str):
    sh("mkfs.ext4", "-q", "-L", "precious", loop)
    err = refused(xenlfs, lfs_snapshot, loop, "--mkfs", "ext4")
    assert "--yes" in err
    assert sh("blkid", "-p", "-o", "value", "-s", "LABEL", loop).stdout.strip() == "precious"


def test_whole_disk_with_a_partition_table(xenlfs, lfs_snapshot: Path, loop: str):
    sh("sfdisk", "--quiet", loop, input="label: dos\nstart=2048, type=L\n")
    err = refused(xenlfs, lfs_snapshot, loop)
    assert "dos partition table" in err and "--target" in err
    err = refused(xenlfs, lfs_snapshot, loop, "--mkfs", "ext4")
    assert "--yes" in err
    assert sh("blkid", "-p", "-o", "value", "-s", "PTTYPE", loop).stdout.strip() == "dos"


def test_running_root_directory(xenlfs, lfs_snapshot: Path):
    assert "running root" in refused(xenlfs, lfs_snapshot, "/")


def test_existing_device_with_filesystem_is_used_as_is(xenlfs, workdir: Path,
                                                       lfs_snapshot: Path, loop: str):
    sh("mkfs.ext4", "-q", "-L", "mine", loop)
    result = xenlfs("guest", "prepare", "r2", "--snapshot", str(lfs_snapshot), "--target", loop,
                    "--config-dir", str(workdir / "xen"), "--kernel", "/boot/vmlinuz-domU")
    assert result.returncode == 0, result.stderr
    assert sh("blkid", "-p", "-o", "value", "-s", "LABEL", loop).stdout.strip() == "mine"
    assert f'disk = ["phy:{loop},xvda1,w"]' in (workdir / "xen/r2.cfg").read_text()
    assert our_mounts("r2") == []
    assert subprocess.run(["mountpoint", "-q", "/run/xenlfs/guest-r2"]).returncode != 0


def has_device_mapper() -> bool:
    return "device-mapper" in Path("/proc/misc").read_text()


@pytest.mark.skipif(not has_device_mapper(), reason="this kernel has no device-mapper, so "
                    "no LV can be activated (the PV refusal above still runs)")
def test_new_logical_volume(xenlfs, workdir: Path, lfs_snapshot: Path):
    with loop_over(image(workdir / "pv.img", 256 << 20)) as pv:
        sh("pvcreate", "--config", LVM_CONFIG, "-q", pv)
        sh("vgcreate", "--config", LVM_CONFIG, "-q", "xenlfstestvg", pv)
        try:
            result = xenlfs("guest", "prepare", "lvguest", "--snapshot", str(lfs_snapshot),
                            "--vg", "xenlfstestvg", "--size", "100M", "--config-dir",
                            str(workdir / "xen"), "--kernel", "/boot/vmlinuz-domU")
            assert result.returncode == 0, result.stderr
            cfg = (workdir / "xen/lvguest.cfg").read_text()
            assert "phy:/dev/xenlfstestvg/lvguest,xvda1,w" in cfg
        finally:
            sh("vgremove", "--config", LVM_CONFIG, "-q", "-f", "xenlfstestvg")
            sh("pvremove", "--config", LVM_CONFIG, "-q", "-y", pv)


# --- unknown data: no signature blkid knows is no proof of no data --------------------------

def digest(path: Path | str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def unknown(path: Path, at: int = 0, size: int = 128 << 20) -> Path:
    """An image of zeros but for random bytes at `at` (an encrypted volume, a database...)."""
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(at)
        f.write(os.urandom(64 << 10))
    found = subprocess.run(["blkid", "-p", str(path)], capture_output=True, text=True)
    assert found.stdout == ""  # no signature
    return path


@pytest.mark.parametrize("where", ["start", "end"])
def test_an_image_of_unknown_data_is_not_formatted_without_asking(
        xenlfs, workdir: Path, lfs_snapshot: Path, where: str):
    image = unknown(workdir / "data.img", 0 if where == "start" else (128 << 20) - (64 << 10))
    before = digest(image)
    err = refused(xenlfs, lfs_snapshot, str(image))
    assert "of no kind blkid knows" in err and "--yes" in err
    assert digest(image) == before
    err = refused(xenlfs, lfs_snapshot, str(image), "--mkfs", "ext4")  # asked for, still asks
    assert digest(image) == before


def test_a_device_of_unknown_data_is_not_formatted_without_asking(xenlfs, workdir: Path,
                                                                  lfs_snapshot: Path):
    with loop_over(unknown(workdir / "data.img", 64 << 20)) as dev:
        before = digest(dev)
        err = refused(xenlfs, lfs_snapshot, dev)
        assert "of no kind blkid knows" in err
        assert digest(dev) == before


def test_unknown_data_is_formatted_with_yes(xenlfs, workdir: Path, lfs_snapshot: Path):
    image = unknown(workdir / "data.img")
    result = xenlfs("guest", "prepare", "r3", "--snapshot", str(lfs_snapshot), "--target",
                    str(image), "--yes", "--config-dir", str(workdir / "xen"))
    assert result.returncode == 0, result.stderr
    assert sh("blkid", "-p", "-o", "value", "-s", "TYPE", image).stdout.strip() == "ext4"


def test_all_zeros_written_out_are_formatted_without_asking(xenlfs, workdir: Path,
                                                           lfs_snapshot: Path):
    image = workdir / "zeros.img"
    with open(image, "wb") as f:
        for _ in range(128):
            f.write(bytes(1 << 20))  # not sparse: real zero blocks
    assert image.stat().st_blocks * 512 >= 128 << 20
    result = xenlfs("guest", "prepare", "r4", "--snapshot", str(lfs_snapshot), "--target",
                    str(image), "--config-dir", str(workdir / "xen"))
    assert result.returncode == 0, result.stderr
