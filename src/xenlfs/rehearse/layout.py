"""The host's disk as its kernel sees it: which partitions hold which filesystems, with which
partition numbers, UUIDs and labels, on which bus (so the device names come out the same).

Read from the host's fstab, and for the running root also from the real devices (sysfs and
blkid). Pure where it can be: layout_from_fstab() takes text and facts, the tests give both.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from xenlfs import run
from xenlfs.errors import PreconditionError, SourceError, UsageError

MiB = 1 << 20
EMPTY_SIZE = 32 * MiB  # an fstab volume that is not copied: just there, formatted
VIRTUAL = frozenset({"proc", "sysfs", "devpts", "tmpfs", "devtmpfs", "cgroup", "cgroup2",
                     "securityfs", "debugfs", "tracefs", "pstore", "efivarfs", "mqueue",
                     "hugetlbfs", "configfs", "binfmt_misc", "fusectl", "bpf", "ramfs",
                     "rpc_pipefs", "autofs", "nfs", "nfs4", "cifs", "none"})
MKFS = frozenset({"ext2", "ext3", "ext4", "swap", "vfat"})
PRIMARIES = 4  # a dos table's; 5 and up are logical partitions in the extended one
MAX_LOGICAL = 60
# A disk name → the QEMU bus that gives the kernel that name.
BUSES = {"vd": "virtio", "sd": "ahci", "nvme": "nvme"}
DISK_NAMES = {"virtio": "vda", "ahci": "sda", "nvme": "nvme0n1"}
_DEVICE = re.compile(r"^/dev/(?P<disk>(?:vd|sd|hd)[a-z]|nvme\d+n\d+)(?:p?(?P<number>\d+))?$")


@dataclass(frozen=True)
class Volume:
    mountpoint: str  # "/", "/boot", "/home", "swap"
    spec: str  # fstab's first field, as written
    fstype: str
    number: int
    uuid: str | None = None
    label: str | None = None
    content: bool = False  # copied from the host (/ and /boot), else made empty
    size: int = EMPTY_SIZE


@dataclass(frozen=True)
class Layout:
    bus: str  # virtio, ahci, nvme
    volumes: tuple[Volume, ...]
    not_rehearsed: tuple[str, ...] = ()  # fstab lines left out, each with why

    @property
    def disk(self) -> str:
        return DISK_NAMES[self.bus]

    def device(self, volume: Volume) -> str:
        return self.node(volume.number)

    def node(self, number: int) -> str:
        return f"/dev/{self.disk}{'p' if self.bus == 'nvme' else ''}{number}"

    def volume(self, mountpoint: str) -> Volume | None:
        return next((v for v in self.volumes if v.mountpoint == mountpoint), None)

    @property
    def boot_separate(self) -> bool:
        return self.volume("/boot") is not None

    @property
    def logical(self) -> bool:
        return any(v.number > PRIMARIES for v in self.volumes)

    @property
    def extended(self) -> int | None:
        """The extended partition's number (the highest free primary one), when logical
        partitions need it."""
        if not self.logical:
            return None
        taken = {v.number for v in self.volumes}
        return next((n for n in range(PRIMARIES, 0, -1) if n not in taken), None)


@dataclass(frozen=True)
class Facts:
    """What the running host's real device for a mount point says about itself."""

    disk: str
    number: int
    fstype: str
    uuid: str | None
    label: str | None


def parse_fstab(text: str, path: str) -> list[tuple[int, str, str, str]]:
    """(line number, spec, mount point, type) of each fstab entry; bad lines are errors."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 3:
            raise SourceError(path, number, 1, "an fstab line needs at least spec, mount point "
                              "and type", "write 'DEVICE MOUNTPOINT TYPE OPTIONS DUMP PASS'")
        entries.append((number, fields[0], fields[1], fields[2]))
    return entries


def _spec_ids(spec: str) -> tuple[str | None, str | None]:
    if spec.startswith("UUID="):
        return spec[5:].strip("\"'").lower(), None
    if spec.startswith("LABEL="):
        return None, spec[6:].strip("\"'")
    return None, None


def layout_from_fstab(text: str, path: str, *, bus: str | None = None,
                      facts: dict[str, Facts] | None = None) -> Layout:
    """The volumes to make, from fstab (and the running host's facts when given)."""
    facts = facts or {}
    found: list[Volume] = []
    skipped: list[str] = []
    disks: set[str] = set()
    for line, spec, point, fstype in parse_fstab(text, path):
        where = f"{path}:{line}"
        if fstype in VIRTUAL or point in ("/proc", "/sys", "/dev", "/run"):
            continue
        mountpoint = "swap" if fstype == "swap" else point
        fact = facts.get(mountpoint)
        uuid, label = _spec_ids(spec)
        device = _DEVICE.match(spec)
        number = fact.number if fact else int(device["number"]) if device and device[
            "number"] else 0
        if fact:
            disks.add(fact.disk)
            uuid, label = fact.uuid or uuid, fact.label or label
            fstype = fact.fstype if fstype == "auto" else fstype
        elif device:
            disks.add(device["disk"])
        elif not (uuid or label):
            why = f"{where}: {spec} on {point}: only UUID=, LABEL= and /dev/sdXN, vdXN, nvmeXnYpN"
            if point in ("/", "/boot"):
                raise PreconditionError(why + " can be rehearsed",
                                        hint="name it by UUID= in fstab (blkid shows it)")
            skipped.append(why + " are rehearsed")
            continue
        if fstype not in MKFS:
            why = f"{where}: {point} is {fstype}; the rehearsal makes {', '.join(sorted(MKFS))}"
            if point in ("/", "/boot"):
                raise PreconditionError(why, hint="rehearse a host whose / and /boot are ext4")
            skipped.append(why)
            continue
        content = point in ("/", "/boot")
        found.append(Volume(mountpoint, spec, fstype, number, uuid, label, content,
                            0 if content else EMPTY_SIZE))
    if not any(v.mountpoint == "/" for v in found):
        raise PreconditionError(f"{path} has no line for the root filesystem /",
                                hint="the rehearsal mirrors the disks fstab names")
    if len(disks) > 1:
        raise PreconditionError(f"{path} names filesystems on several disks "
                                f"({', '.join(sorted(disks))})",
                                hint="the rehearsal makes one disk; one with / and /boot")
    return Layout(choose_bus(disks, bus), tuple(_numbered(found)), tuple(skipped))


def choose_bus(disks: set[str], bus: str | None) -> str:
    if bus is not None:
        if bus not in DISK_NAMES:
            raise UsageError(f"unknown bus {bus!r}", hint=f"one of {', '.join(DISK_NAMES)}")
        return bus
    for disk in disks:
        for prefix, found in BUSES.items():
            if disk.startswith(prefix):
                return found
        if disk.startswith("hd"):
            return "ahci"  # IDE disks are sdX under libata
    return "virtio"


def _numbered(volumes: list[Volume]) -> list[Volume]:
    """Partition numbers for volumes fstab names by UUID or label: /boot first, then /.
    With logical partitions (5 and up) one primary number stays free for the extended one."""
    taken = {v.number for v in volumes if v.number}
    order = sorted(volumes, key=lambda v: {"/boot": 0, "/": 1}.get(v.mountpoint, 2))
    result = []
    for volume in order:
        if not volume.number:
            free = [n for n in range(1, PRIMARIES + 1) if n not in taken]
            logical = any(n > PRIMARIES for n in taken)
            number = free[0] if len(free) > logical else max(taken | {PRIMARIES}) + 1
            taken.add(number)
            volume = replace(volume, number=number)
        result.append(volume)
    if max(taken) > MAX_LOGICAL:
        raise PreconditionError(f"partition {max(taken)}: the copy makes at most "
                                f"{MAX_LOGICAL} partitions",
                                hint="rehearse with --snapshot or --root of a host whose / and "
                                "/boot are on lower partition numbers")
    found = Layout("virtio", tuple(result))
    if found.logical and found.extended is None:
        raise PreconditionError(
            f"{', '.join(found.device(v) for v in result if v.number > PRIMARIES)} "
            "is a logical partition, but fstab's other volumes take all four primary "
            "numbers: the copy has no number left for the extended partition that holds it",
            hint="leave one of the primary volumes out of the rehearsed fstab (a copy: "
            "--root DIR), or name the logical volume by UUID= so it gets a free number")
    return sorted(result, key=lambda v: v.number)


def with_sizes(layout: Layout, content: dict[str, int]) -> Layout:
    """Sizes for the copied volumes: 1.5× their content + 256 MiB, as guest prepare sizes."""
    from xenlfs.guest import storage

    return replace(layout, volumes=tuple(
        replace(v, size=storage.default_size(content.get(v.mountpoint, 0))) if v.content else v
        for v in layout.volumes))


# --- the running host's devices -----------------------------------------------------------

def running_facts(mounts: dict[str, str]) -> dict[str, Facts]:
    """Facts about the devices the running host has on these mount points (point → source)."""
    facts = {}
    for point, source in mounts.items():
        if not source.startswith("/dev/"):
            continue
        sysdir = Path("/sys/class/block") / os.path.basename(os.path.realpath(source))
        if not (sysdir / "partition").is_file():
            continue
        number = int((sysdir / "partition").read_text())
        disk = sysdir.resolve().parent.name
        found = dict(line.split("=", 1) for line in run.run(
            ["blkid", "-o", "export", source], check=False).stdout.splitlines() if "=" in line)
        facts[point] = Facts(disk, number, found.get("TYPE", "auto"), found.get("UUID"),
                             found.get("LABEL"))
    return facts
