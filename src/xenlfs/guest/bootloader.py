"""An HVM guest boots from its own disk, as a PC does: BIOS GRUB in the image's MBR and a
grub.cfg that boots the guest's kernel with root on xvda1 and its console on the serial port.

Two halves: while the guest's filesystem is mounted for step 5 (through GuestRoot, so never
outside the guest), the kernel goes into its /boot and grub.cfg is written; afterwards
`install()` attaches the whole image, finds its partition (no udev here: `partx -a` makes
the partition's device) and runs grub-install --target=i386-pc onto it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from xenlfs import run
from xenlfs.errors import PreconditionError
from xenlfs.guest import storage, volume
from xenlfs.guest.rootfs import GuestRoot
from xenlfs.xl import kernel_image

log = logging.getLogger("xenlfs.guest")

GRUB_CFG = "/boot/grub/grub.cfg"
SERIAL_CONSOLE = "ttyS0"
# The kernel's console on the HVM guest's serial port, for GRUB's entry and for xl's direct
# kernel boot alike; `quiet` as grub_cfg says why.
HVM_KERNEL_ARGS = f"console={SERIAL_CONSOLE},115200 quiet"
# grub-install's modules for a dos-labelled disk with ext2/3/4 on its first partition.
MODULES = ("part_msdos", "ext2", "biosdisk", "serial", "linux", "normal")


def grub_cfg(name: str, kernel: str, root: str = "/dev/xvda1",
             initrd: str | None = None) -> str:
    """The guest's grub.cfg: serial only (the note in docs: console twice garbles lines).

    `quiet`, as distributions' own entries have it: each character on the emulated serial
    port is a trip to qemu in dom0, and under nested emulation the kernel's few hundred
    boot lines alone took minutes (docs/benchmarks.md). Warnings still show; dmesg has all."""
    initrd_line = f"    initrd {initrd}\n" if initrd else ""
    return (f"# grub.cfg of the HVM guest {name}, written by xenlfs guest prepare --type hvm\n"
            "serial --unit=0 --speed=115200\n"
            "terminal_input serial\n"
            "terminal_output serial\n"
            "set timeout=1\n"
            "set default=0\n"
            f"menuentry '{name} ({os.path.basename(kernel)})' {{\n"
            "    insmod part_msdos\n"
            "    insmod ext2\n"
            "    set root=(hd0,msdos1)\n"
            f"    linux {kernel} root={root} ro {HVM_KERNEL_ARGS}\n"
            f"{initrd_line}"
            "}\n")


def guest_kernels(root: GuestRoot) -> list[str]:
    """The kernels in the guest's /boot, oldest version first (vmlinuz-*, bzImage*)."""
    names = [n for n in root.listdir("/boot") if re.match(r"(vmlinuz|bzImage|vmlinux)", n)
             and root.node(f"/boot/{n}").kind == "file"]
    return sorted(names, key=_version_key)


def _version_key(name: str) -> list[tuple[int, str]]:
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"(\d+)", name)]


def place_kernel(root: GuestRoot, source: Path | None, name: str) -> str:
    """The guest path of the kernel GRUB boots: `source` copied into /boot, or else the
    newest kernel already in the guest's /boot."""
    root.mkdir("/boot/grub", 0o755)
    if source is None:
        found = guest_kernels(root)
        if not found:
            raise PreconditionError(f"the guest {name} has no kernel in /boot for GRUB to boot",
                                    hint="give one: --boot-kernel /boot/vmlinuz-6.1-xen-domU "
                                    "(copied into the guest's /boot), or boot it directly "
                                    "with --kernel FILE")
        return f"/boot/{found[-1]}"
    data = source.read_bytes()
    release = kernel_image.release(data)
    target = f"/boot/vmlinuz-{release}" if release else f"/boot/{source.name}"
    # write_text round-trips bytes through surrogateescape; GuestRoot keeps it in the guest.
    root.write_text(target, data.decode("utf-8", "surrogateescape"))
    return target


def _refuse_links(boot: Path) -> None:
    """grub-install writes under boot/grub as root: no symlink there may lead it out."""
    for path in (boot, boot / "grub"):
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise PreconditionError(f"the guest's {path.name} is not a directory: refusing "
                                    "grub-install", hint="remove the link from the snapshot")
    for top, dirs, files in os.walk(boot / "grub"):
        for entry in dirs + files:
            if os.path.islink(os.path.join(top, entry)):
                raise PreconditionError(
                    f"the guest's /boot/grub holds the symlink {entry}: grub-install would "
                    "write through it", hint="remove it from the snapshot and prepare again")


@contextlib.contextmanager
def _whole_image(image: Path) -> Iterator[tuple[str, str]]:
    """(the image's loop device, its first partition's device), detached afterwards."""
    loop = volume.attach_loop(image)
    try:
        run.run(["partx", "--add", loop], writes=True, check=False)  # no udev: make them
        partition = f"{loop}p1"
        if not run.dry_run() and not os.path.exists(partition):
            _partition_node(loop, partition)
        yield loop, partition
    finally:
        run.run(["partx", "--delete", loop], writes=True, check=False)
        run.run(["losetup", "--detach", loop], writes=True)


def _partition_node(loop: str, partition: str) -> None:
    """devtmpfs is not everywhere: make loopNp1 from what sysfs says."""
    sysfs = Path("/sys/class/block") / Path(partition).name / "dev"
    if not sysfs.is_file():
        raise PreconditionError(f"the kernel shows no partition on {loop}",
                                hint="the image needs a dos partition table")
    major, minor = (int(n) for n in sysfs.read_text().split(":"))
    os.mknod(partition, 0o660 | stat.S_IFBLK, os.makedev(major, minor))


def install(image: Path, name: str, fstype: str) -> None:
    """grub-install --target=i386-pc into the image's MBR, its files in the guest's /boot.
    The caller holds the guest's lock (volume.locked), as for the rest of step 5."""
    mnt = volume.mountpoint(f"{name}-grub")
    with _whole_image(image) as (loop, partition):
        if not run.dry_run():
            mnt.mkdir(parents=True, exist_ok=True)
        run.run(["mount", "-t", fstype, partition, mnt], writes=True)
        try:
            if not run.dry_run():
                _refuse_links(mnt / "boot")
            run.run(["grub-install", "--target=i386-pc", f"--boot-directory={mnt / 'boot'}",
                     f"--modules={' '.join(MODULES)}", "--no-floppy", loop], writes=True,
                    hint="on Debian: apt-get install grub-pc-bin")
        finally:
            run.run(["umount", mnt], writes=True)
            if not run.dry_run():
                with contextlib.suppress(OSError):
                    mnt.rmdir()


def needs_table(layout: storage.Layout) -> str | None:
    """Why this target cannot boot as HVM from its own disk, or None."""
    if layout.kind != "image":
        return (f"an HVM guest boots from a whole disk with a partition table; {layout.path} "
                f"is a {layout.kind}")
    if layout.partition_table not in ("dos", "found"):
        return ("an HVM guest's BIOS GRUB needs a dos partition table (gpt would need a BIOS "
                "boot partition)")
    return None
