"""`guest prepare --type pvh|hvm` for real: an HVM image gets a dos table, BIOS GRUB in its
MBR (real grub-install onto a loop device), the kernel and grub.cfg in its /boot and a getty
on the serial port; PVH and direct-boot HVM get their xl configs. A snapshot whose
/boot/grub leads out of the guest is refused before grub-install writes anything."""

from __future__ import annotations

import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.system.guest.conftest import (
    check_clean_image,
    lfs_tree,
    loop_over,
    loops_of,
    our_mounts,
    sh,
)
from tests.unit.xl.test_kernel_image import PVH_NOTES, bzimage, elf64
from xenlfs.xl import cfg, check


def kernel(path: Path, release: str = "6.1.99-xen-test") -> Path:
    """A bzImage with a PVH-capable payload whose header names `release`."""
    data = bytearray(bzimage(gzip.compress(elf64(PVH_NOTES))))
    at = 0x600  # in the setup code, where the kernel_version string lives
    data[at:at + len(release) + 1] = release.encode() + b"\0"
    struct.pack_into("<H", data, 0x20E, at - 0x200)
    path.write_bytes(bytes(data))
    return path


def prepare(xenlfs, workdir: Path, name: str, *args: str):
    return xenlfs("guest", "prepare", name, "--config-dir", str(workdir / "xen"), *args)


def test_hvm_boots_from_its_own_disk(xenlfs, workdir: Path, lfs_snapshot: Path) -> None:
    image, boot_kernel = workdir / "h.img", kernel(workdir / "bzImage")
    result = prepare(xenlfs, workdir, "h", "--snapshot", str(lfs_snapshot), "--target",
                     str(image), "--size", "160M", "--type", "hvm", "--boot-kernel",
                     str(boot_kernel))
    assert result.returncode == 0, result.stderr
    assert "boot: GRUB in" in result.stdout and "/boot/vmlinuz-6.1.99-xen-test" in result.stdout
    check_clean_image(image)
    table = json.loads(sh("sfdisk", "--json", image).stdout)["partitiontable"]
    assert table["label"] == "dos" and len(table["partitions"]) == 1
    with open(image, "rb") as f:
        mbr = f.read(512)
    assert b"GRUB" in mbr and mbr[510:512] == b"\x55\xaa"
    part = table["partitions"][0]
    mnt = workdir / "look"
    mnt.mkdir()
    with loop_over(image, part["start"] * 512, part["size"] * 512) as dev:
        sh("mount", "-o", "ro", dev, mnt)
        try:
            assert (mnt / "boot/vmlinuz-6.1.99-xen-test").read_bytes() == boot_kernel.read_bytes()
            grub = (mnt / "boot/grub/grub.cfg").read_text()
            assert ("linux /boot/vmlinuz-6.1.99-xen-test root=/dev/xvda1 ro "
                    "console=ttyS0,115200 quiet") in grub
            assert "terminal_output serial" in grub
            assert (mnt / "boot/grub/i386-pc/normal.mod").is_file()
            sh("grub-script-check", mnt / "boot/grub/grub.cfg")
            inittab = (mnt / "etc/inittab").read_text()
            assert "/sbin/agetty --noclear ttyS0 9600" in inittab
        finally:
            sh("umount", mnt)
    text = (workdir / "xen/h.cfg").read_text()
    values = cfg.parse(text, "h.cfg").plain()
    assert values["type"] == "hvm" and values["serial"] == "pty" and "kernel" not in values
    assert values["vga"] == "none"  # a serial console: no emulated screen
    assert values["disk"] == [f"format=raw, vdev=xvda, access=rw, target={image}"]
    assert check.check_config(cfg.parse(text, "h.cfg")).findings == []


def test_pvh_and_direct_boot_hvm_configs(xenlfs, workdir: Path, lfs_snapshot: Path) -> None:
    boot_kernel = kernel(workdir / "bzImage")
    for kind, extra in (("pvh", "console=hvc0"), ("hvm", "console=ttyS0,115200 quiet")):
        image = workdir / f"{kind}.img"
        result = prepare(xenlfs, workdir, kind, "--snapshot", str(lfs_snapshot), "--target",
                         str(image), "--size", "160M", "--type", kind, "--kernel",
                         str(boot_kernel))
        assert result.returncode == 0, result.stderr
        assert "boot: GRUB" not in result.stdout  # direct kernel boot: nothing on the disk
        text = (workdir / f"xen/{kind}.cfg").read_text()
        values = cfg.parse(text, "x.cfg").plain()
        assert values["type"] == kind and values["kernel"] == str(boot_kernel)
        assert values["root"] == "/dev/xvda1 ro" and values["extra"] == extra
        assert check.check_config(cfg.parse(text, "x.cfg")).findings == []
        with open(image, "rb") as f:
            assert b"GRUB" not in f.read(512)


def test_hvm_needs_a_disk_with_a_table(xenlfs, workdir: Path, lfs_snapshot: Path) -> None:
    # --size only for the image: a directory has none (refused for that reason otherwise)
    for target in (["--target", str(workdir / "plain.img"), "--partition-table", "none",
                    "--size", "160M"],
                   ["--target", str(workdir / "dir")]):
        (workdir / "dir").mkdir(exist_ok=True)
        result = prepare(xenlfs, workdir, "h", "--snapshot", str(lfs_snapshot), "--type",
                         "hvm", *target)
        assert result.returncode != 0
        assert "an HVM guest" in result.stderr and "--partition-table dos" in result.stderr
    assert not (workdir / "plain.img").exists()


def test_boot_kernel_only_with_hvm(xenlfs, workdir: Path, lfs_snapshot: Path) -> None:
    result = prepare(xenlfs, workdir, "p", "--snapshot", str(lfs_snapshot), "--target",
                     str(workdir / "p.img"), "--type", "pvh", "--boot-kernel", "/bin/true")
    assert result.returncode == 2 and "--boot-kernel is for --type hvm" in result.stderr


def test_a_guest_grub_dir_linking_out_is_refused(xenlfs, workdir: Path) -> None:
    tree = lfs_tree(workdir / "tree")
    host_dir = workdir / "host-grub"
    host_dir.mkdir()
    (tree / "boot/grub").mkdir(parents=True)
    os.symlink(str(host_dir), tree / "boot/grub/i386-pc")
    archive = workdir / "evil.tar"  # any root tar: xenlfs's own snapshots leave /boot out
    sh("tar", "--create", "--file", archive, "--directory", tree, ".")
    image = workdir / "e.img"
    result = prepare(xenlfs, workdir, "e", "--snapshot", str(archive), "--target", str(image),
                     "--size", "160M", "--type", "hvm", "--boot-kernel",
                     str(kernel(workdir / "bzImage")))
    assert result.returncode != 0
    assert "grub-install would write through it" in result.stderr
    assert list(host_dir.iterdir()) == []  # nothing written outside the guest
    check_clean_image(image)
    assert not image.exists()  # made by the run that failed: removed


def test_kill_9_during_grub_install_then_the_same_command_converges(
        xenlfs, workdir: Path, lfs_snapshot: Path) -> None:
    # The whole-image loop, its partition and their mount at guest-NAME-grub, left by a kill.
    image, boot_kernel = workdir / "h2.img", kernel(workdir / "bzImage")
    argv = ["guest", "prepare", "h2", "--config-dir", str(workdir / "xen"), "--snapshot",
            str(lfs_snapshot), "--target", str(image), "--size", "160M", "--type", "hvm",
            "--boot-kernel", str(boot_kernel)]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME="/nonexistent")
    proc = subprocess.Popen([sys.executable, "-m", "xenlfs", *argv], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not our_mounts("h2-grub"):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    try:
        assert loops_of(image)
        again = xenlfs(*argv)  # the very same command, --size included
        assert again.returncode == 0, again.stderr
        assert "guest-h2-grub, left mounted by an earlier run" in again.stderr
        check_clean_image(image)
    finally:
        for line in our_mounts("h2-grub"):
            sh("umount", line.split()[4])
        for loop in loops_of(image):
            sh("losetup", "--detach", loop)
