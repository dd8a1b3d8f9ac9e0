"""Where the guest's root filesystem goes: a partition or disk, an LVM volume, a raw image
file (with or without a partition table) or a plain directory.

decide() looks at the target and refuses anything in use; attached() creates, formats and
mounts it and, whatever happens, unmounts and detaches again. Without udev, partitions of
an image are reached through a loop device at the partition's offset, and LVM is told not
to wait for udev.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from xenlfs import run
from xenlfs.errors import PreconditionError, UsageError
from xenlfs.guest import inuse
from xenlfs.snapshot import manifest as manifests

log = logging.getLogger("xenlfs.guest")

MiB = 1 << 20
LVM_CONFIG = ("--config", "activation{udev_sync=0 udev_rules=0} "
              "devices{obtain_device_list_from_udev=0}")
IN_USE_TYPES = {"LVM2_member": "an LVM physical volume", "linux_raid_member": "an md RAID member"}


@dataclass(frozen=True)
class Request:
    name: str
    target: Path | None
    vg: str | None = None
    size: int | None = None
    partition_table: str = "none"  # none, dos, gpt
    mkfs: str | None = None  # None: ext4 for a new volume, else its filesystem
    yes: bool = False


@dataclass(frozen=True)
class Layout:
    """What will be done: decided from the request and the machine, before any change."""

    kind: str  # dir, image, block, lv
    path: Path  # the directory, image file or block device
    create: bool = False  # the image or LV is made first
    size: int = 0
    partition_table: str = "none"
    mkfs: str | None = None  # filesystem to make, or None to use what is there
    fstype: str = "ext4"
    vg: str | None = None
    read_only: bool = False  # mounted read-only (an export reads the guest, never changes it)
    # The loop devices over an existing image when decide() looked (a killed run's, which
    # attaching detaches); None: not looked yet.
    loops: tuple[str, ...] | None = None

    @property
    def vdev(self) -> str:
        """The guest's disk: a whole disk with a table, else the partition the hint uses."""
        return "xvda" if self.partition_table != "none" else "xvda1"

    @property
    def disk_spec(self) -> str | None:
        if self.kind == "dir":
            return None
        if self.kind == "image":
            return f"format=raw, vdev={self.vdev}, access=rw, target={self.path}"
        return f"phy:{self.path},{self.vdev},w"


def default_size(content: int) -> int:
    """Room for the snapshot, ext4's own needs and growth: 1.5× plus 256 MiB, whole MiB."""
    return -(-(content * 3 // 2 + 256 * MiB) // MiB) * MiB


def needed(content: int) -> int:
    # ext4 keeps ~5% for root and ~2% for inodes and journal; round up for small files.
    return content * 110 // 100 + 32 * MiB


def snapshot_content(archive: Path) -> int:
    """Bytes the snapshot's files take, from its manifest or else from tar's listing."""
    sidecar = manifests.path_for(archive)
    if sidecar.is_file():
        content = manifests.read(sidecar, meta_only=True).meta.get("content_bytes")
        if isinstance(content, int):
            return content
    total = 0
    listing = run.run(["tar", "--list", "--verbose", "--numeric-owner", "--file", archive])
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2].isdigit():
            total += int(fields[2]) + 512
    return total


# --- facts about block devices, read from sysfs and /proc (no udev here) ---

def _sysfs(dev: Path) -> Path:
    rdev = os.stat(dev).st_rdev
    return Path(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}").resolve()


def _numbers(sysdir: Path) -> str:
    return (sysdir / "dev").read_text().strip()


def _family(sysdir: Path) -> list[Path]:
    """The device and its partitions."""
    return [sysdir, *[p for p in sysdir.iterdir() if (p / "partition").exists()]]


def _slaves(numbers: str) -> set[str]:
    """A device's number and, recursively, those of the devices under it (dm, md)."""
    found = {numbers}
    slaves = Path(f"/sys/dev/block/{numbers}/slaves")
    if slaves.is_dir():
        for slave in slaves.iterdir():
            found |= _slaves(_numbers(slave.resolve()))
    return found


def device_size(dev: Path) -> int:
    fd = os.open(dev, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def fs_type(path: Path, partition: tuple[int, int] | None = None) -> str | None:
    """The filesystem or other signature on a device or image (or a partition in it)."""
    where = ["--offset", str(partition[0]), "--size", str(partition[1])] if partition else []
    result = run.run(["blkid", "-p", *where, "-o", "export", path], check=False)
    found: dict[str, str] = dict(line.split("=", 1) for line in result.stdout.splitlines()
                                 if "=" in line)
    if "TYPE" in found:
        return found["TYPE"]
    return f"{found['PTTYPE']} partition table" if "PTTYPE" in found else None


def check_device(dev: Path, need: int, guest: str = "") -> None:
    """Refuse a block device that is in use or too small (exit 3, with the reason). Mounts
    xenlfs left for a killed `guest prepare` (of `guest`, or of one no longer running) are
    not "in use": attaching cleans them up."""
    sysdir = _sysfs(dev)
    family = _family(sysdir)
    numbers = {_numbers(d): d.name for d in family}
    mounts = inuse.mounts()
    root = os.stat("/").st_dev
    root_chain = _slaves(f"{os.major(root)}:{os.minor(root)}")
    leftovers = False
    for number, name in numbers.items():
        if number in root_chain:
            raise PreconditionError(f"{dev} holds the running root filesystem (/dev/{name})",
                                    hint="give the guest its own partition, volume or image")
        for where in mounts.get(number, []):
            if inuse.leftover(where, guest):
                leftovers = True
                continue
            raise PreconditionError(f"{dev} is in use: /dev/{name} is mounted on {where}",
                                    hint=f"umount {where} first")
    swaps = Path("/proc/swaps").read_text().splitlines()[1:]
    for line in swaps:
        with contextlib.suppress(OSError):
            st = os.stat(line.split()[0])
            if stat.S_ISBLK(st.st_mode) and f"{os.major(st.st_rdev)}:" \
                    f"{os.minor(st.st_rdev)}" in numbers:
                raise PreconditionError(f"{dev} is in use as swap ({line.split()[0]})",
                                        hint=f"swapoff {line.split()[0]} first, if it is "
                                        "really free")
    for member in family:
        holders = sorted(h.name for h in (member / "holders").iterdir()) \
            if (member / "holders").is_dir() else []
        if holders:
            raise PreconditionError(f"{dev} is in use: /dev/{member.name} is held by "
                                    f"{', '.join(holders)} (device-mapper, LVM or md)",
                                    hint="free it first (lvchange -an, mdadm --stop, ...)")
    users = inuse.open_by(devices={os.makedev(*map(int, n.split(":"))) for n in numbers})
    if users:
        raise PreconditionError(f"{dev} is in use: held open by {', '.join(users)}",
                                hint="stop that first (a running guest: xenlfs guest "
                                "shutdown NAME)")
    if not leftovers and inuse.claimed(dev):
        raise PreconditionError(f"{dev} is in use: the kernel gave it to another user "
                                "exclusively (mounted in another mount namespace, a running "
                                "guest's blkback, device-mapper or md)",
                                hint="find it with: lsblk; cat /proc/*/mountinfo | grep "
                                f"{next(iter(numbers))}")
    signature = fs_type(dev)
    if signature in IN_USE_TYPES:
        raise PreconditionError(f"{dev} is {IN_USE_TYPES[signature]} ({signature})",
                                hint="it belongs to a volume group or array; give the guest "
                                "its own device (or an LV: --vg VG)")
    size = device_size(dev)
    if size < need:
        raise PreconditionError(f"{dev} is too small: {size // MiB} MiB, the snapshot needs "
                                f"about {need // MiB} MiB", hint="use a bigger device")


def check_free(target: Path) -> None:
    """Refuse a block device or image file in use, before anything is written to it."""
    if target.is_block_device():
        check_device(target, 0)
    elif target.is_file():
        for loop in _loops_of(target):
            check_device(Path(loop), 0)


def _loops_of(image: Path) -> list[str]:
    out = run.run(["losetup", "--associated", image, "--output", "NAME", "--noheadings"],
                  check=False).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def decide(request: Request, content: int) -> Layout:
    """What to do with the target; refuses what is in use. Reads only."""
    need = needed(content)
    target = request.target
    if request.vg:
        target = target or Path(f"/dev/{request.vg}/{request.name}")
        if not target.exists():
            if not re.fullmatch(r"[A-Za-z0-9+_.-]+", request.name):
                raise UsageError(f"{request.name!r} cannot name a logical volume")
            size = request.size or default_size(content)
            _check_size(size, need, f"--size {size // MiB}M")
            return Layout("lv", target, True, size, mkfs=request.mkfs or "ext4",
                          fstype=request.mkfs or "ext4", vg=request.vg)
    if target is None:
        raise UsageError("say where the guest goes: --target DEVICE|IMAGE|DIR, or --vg VG")
    target = Path(os.path.abspath(target))
    if target.is_dir():
        check_directory(target)
        if request.size is not None:
            raise UsageError(f"--size: {target} is a directory, which has no size",
                             hint="leave out --size; it sizes a new image or LV")
        return Layout("dir", target, fstype=request.mkfs or "ext4")
    if target.is_block_device():
        check_device(target, need, request.name)
        # A loop over the device (a partition's window, as attached() makes one) is a use of
        # it too; a killed run's is detached later.
        loops = tuple(_loops_of(target))
        for loop in loops:
            check_device(Path(loop), 0, request.name)
        _check_same_size(target, device_size(target), request.size)
        # A table on a whole device is only looked into when asked for (Ganeti's disk 0
        # with root_path=/dev/xvda1): step 5 otherwise wants the device as a filesystem.
        part = partition(target) if request.partition_table != "none" else None
        if part is not None:
            _check_size(part[1], need, f"the partition on {target}")
            return _existing(Layout("block", target, partition_table="found", loops=loops),
                             target, request, part)
        return _existing(Layout("block", target, loops=loops), target, request)
    if target.exists() and not target.is_file():
        raise UsageError(f"{target} is neither a directory, a block device nor an image file")
    real = Path(os.path.realpath(target))
    if any(real.is_relative_to(tree) for tree in SYSTEM_TREES):
        raise PreconditionError(f"{target} is a file of the running system"
                                + (f" ({real})" if real != target else ""),
                                hint="keep guest images elsewhere, e.g. /srv/xen/NAME.img or "
                                "/var/lib/xen/images/NAME.img")
    # An empty file is an image still to be made: one a run killed at once left, or `touch`.
    if target.is_file() and target.stat().st_size > 0:
        st = target.stat()
        _check_same_size(target, st.st_size, request.size)
        users = inuse.open_by(files={(st.st_dev, st.st_ino)})
        if users:
            raise PreconditionError(f"{target} is in use: held open by {', '.join(users)}",
                                    hint="stop that first (a running guest: xenlfs guest "
                                    "shutdown NAME)")
        loops = tuple(_loops_of(target))
        for loop in loops:
            check_device(Path(loop), 0, request.name)  # a killed run's loop is detached later
        part = partition(target)
        if part is not None:
            _check_size(part[1], need, f"the partition in {target}")
            return _existing(Layout("image", target, partition_table="found", loops=loops),
                             target, request, part)
        if request.partition_table != "none":
            raise PreconditionError(f"{target} exists and has no partition table with a "
                                    "Linux partition", hint="remove it to make a new one, or "
                                    "leave out --partition-table to use it as a filesystem")
        _check_size(target.stat().st_size, need, str(target))
        return _existing(Layout("image", target, loops=loops), target, request)
    if request.size is None and target.suffix not in (".img", ".raw"):
        raise UsageError(f"{target} does not exist", hint="give --size to create an image "
                         "file there (e.g. --size 4G), or mkdir it for a directory target")
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent} does not exist")
    size = request.size or default_size(content)
    _check_size(size, need, f"--size {size // MiB}M")
    fs = os.statvfs(target.parent)
    if size > fs.f_blocks * fs.f_frsize:
        raise UsageError(f"--size {_mib(size)} is more than the filesystem holding "
                         f"{target.parent} holds ({_mib(fs.f_blocks * fs.f_frsize)})",
                         hint="a smaller --size, or an image on a bigger filesystem")
    return Layout("image", target, True, size, request.partition_table,
                  mkfs=request.mkfs or "ext4", fstype=request.mkfs or "ext4")


# Directories of the running system a guest must never be extracted into (beside "/" itself
# and every directory directly in it).
SYSTEM_SUBDIRS = (Path("/usr"), Path("/var"))
# Trees of the running system whose files are never an image to format.
SYSTEM_TREES = tuple(Path(p) for p in ("/etc", "/usr", "/boot", "/bin", "/sbin", "/lib",
                                       "/lib32", "/lib64", "/libx32", "/proc", "/sys"))


def check_directory(target: Path) -> None:
    """Refuse the running root and its system directories as a directory target."""
    real = Path(os.path.realpath(target))
    here, root = os.stat(real), os.stat("/")
    if (here.st_dev, here.st_ino) == (root.st_dev, root.st_ino):
        raise PreconditionError("the target directory is the running root filesystem")
    if real.parent == Path("/") or real.parent in SYSTEM_SUBDIRS:
        raise PreconditionError(f"{target} is a system directory of the running host"
                                + (f" ({real})" if real != target else ""),
                                hint="give the guest a directory of its own, e.g. "
                                "/srv/xen/NAME, or a partition, LV or image")
    # A chroot in use (LFS's own: dev, proc, sys bound from the host): the edits would reach
    # the host through those mounts.
    inside = sorted(where for wheres in inuse.mounts().values() for where in wheres
                    if where.startswith(f"{real}/"))
    if inside:
        raise PreconditionError(f"{target} is in use: {', '.join(inside)} "
                                f"{'is' if len(inside) == 1 else 'are'} mounted inside it",
                                hint="umount " + " ".join(reversed(inside)) + " first")


def _mib(size: int) -> str:
    return f"{size // MiB} MiB" if size < 1 << 40 else f"{size >> 40} TiB"


def _check_same_size(target: Path, size: int, asked: int | None) -> None:
    """--size makes a new image or LV; over an existing one it can only say what is there."""
    if asked is None:
        return
    if asked != size:
        raise UsageError(f"--size: {target} exists and is {_mib(size)}; --size only sizes a "
                         "new image or LV", hint="leave out --size to use it as it is (or "
                         "remove it first, to make a new one of that size)")
    log.info("--size: %s already is %s", target, _mib(size))


def _check_size(size: int, need: int, what: str) -> None:
    if size < need:
        raise PreconditionError(f"{what} is too small for the snapshot: it needs about "
                                f"{need // MiB} MiB", hint=f"use --size {-(-need // MiB)}M "
                                "or more")


def _existing(layout: Layout, device: Path, request: Request,
              part: tuple[int, int] | None = None) -> Layout:
    """An existing device or image: use its filesystem, or make one (asking first)."""
    found = fs_type(device, part)
    if request.mkfs != "none" and inuse.half_made(request.name, device, part[0] if part else 0):
        # Its own half-made filesystem: no one else's data, and no signature to tell by.
        log.warning("%s: the mkfs of a run that was killed did not finish; making the "
                    "filesystem again", device)
        redo = request.mkfs or "ext4"
        return Layout(layout.kind, layout.path, False, 0, layout.partition_table, redo, redo,
                      loops=layout.loops)
    if found and found.endswith("partition table") and not request.mkfs:
        raise PreconditionError(f"{device} holds a {found}, not a filesystem",
                                hint="give one of its partitions as --target, or add --mkfs "
                                "ext4 to make one filesystem over the whole disk (asks first)")
    mkfs = request.mkfs or (None if found else "ext4")
    if mkfs == "none":
        mkfs = None
    if mkfs and found and not request.yes and not run.dry_run():
        _confirm(f"{device} holds a {found} filesystem; make a new {mkfs} over it, "
                 "destroying what it holds?")
    if mkfs and not found and not request.yes:
        # No signature is no proof of no data (random bytes, an encrypted volume, a
        # database file): only all zeros may be formatted without asking.
        data = unknown_data(device, part)
        if data and run.dry_run():
            log.warning("%s holds %s; a real run asks before mkfs", device, data)
        elif data:
            _confirm(f"{device} holds {data}, of no kind blkid knows; make a {mkfs} "
                     "filesystem over it, destroying that data?")
    if mkfs is None and found is None:
        raise PreconditionError(f"{device} holds no filesystem", hint="add --mkfs ext4")
    return Layout(layout.kind, layout.path, False, 0, layout.partition_table, mkfs,
                  mkfs or found or "ext4", loops=layout.loops)


ZERO_SCAN_LIMIT = 256 * MiB


def unknown_data(path: Path, window: tuple[int, int] | None = None) -> str | None:
    """What says `path` (or the window of it) is not blank: None if every byte is zero.
    Only the data extents of a sparse image are read; at most ZERO_SCAN_LIMIT bytes."""
    start, length = window or (0, device_size(path) if path.is_block_device()
                               else path.stat().st_size)
    end, budget = start + length, ZERO_SCAN_LIMIT
    sparse = not path.is_block_device()  # block devices know no holes (lseek: EINVAL)
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = start
        while pos < end:
            hole = end
            if sparse:
                try:
                    pos = os.lseek(fd, pos, os.SEEK_DATA)
                except OSError:
                    return None  # ENXIO: no data after pos, a hole to the end
                if pos >= end:
                    return None
                hole = min(end, os.lseek(fd, pos, os.SEEK_HOLE))
            while pos < hole:
                if budget <= 0:
                    return (f"data not read past its first {ZERO_SCAN_LIMIT // MiB} MiB "
                            "(all zeros so far)")
                chunk = os.pread(fd, min(4 * MiB, hole - pos, budget), pos)
                if not chunk:
                    return None
                zeros = len(chunk) - len(chunk.lstrip(b"\0"))
                if zeros < len(chunk):
                    return f"data (its first non-zero byte at offset {pos + zeros - start})"
                pos += len(chunk)
                budget -= len(chunk)
        return None
    finally:
        os.close(fd)


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise PreconditionError(question.rstrip("?") + ": not without asking, and there is "
                                "no terminal to ask on", hint="add --yes if that is meant")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise PreconditionError("not confirmed; nothing was changed")


def partition(image: Path) -> tuple[int, int] | None:
    """(offset, size) in bytes of the first Linux partition of an image, if it has a table."""
    result = run.run(["sfdisk", "--json", image], check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return None
    table = json.loads(result.stdout)["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    for part in table.get("partitions", []):
        if str(part.get("type", "")).lower() in ("83", "0fc63daf-8483-4772-8e79-3d69d8477de4"):
            return int(part["start"]) * sector, int(part["size"]) * sector
    return None
