"""Hint step 4: which kernel options a dom0 and a domU need, as data.

Grounded in Linux's own fragments (kernel/configs/xen.config and arch/x86/configs/xen.config,
read from linux-source-6.1) and the Xen wiki's "Mainline Linux Kernel Configs" checklist,
minus the wiki's symbols that Linux 6.x no longer has (PARAVIRT_GUEST, XEN_TMEM,
ACPI_PROCFS). A domU here boots the hint's way: `kernel =` in the xl config, root on
/dev/xvda1, no initramfs — so its disk driver, root filesystem, console and devtmpfs must be
built in (=y), because nothing could load them as modules before the root is mounted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    DOM0 = "dom0"
    DOMU = "domU"


class GuestType(enum.StrEnum):
    """How Xen runs a domU (xl.cfg's `type`): what its kernel must be able to do."""

    PV = "pv"     # the hint's: paravirtualised, started at the kernel's Xen PV entry
    PVH = "pvh"   # hardware virtualisation, no emulated devices, the PVH entry point
    HVM = "hvm"   # an emulated PC: firmware, a bootloader on the disk, a serial port


class Level(enum.StrEnum):
    REQUIRED = "required"        # missing → `kernel check` exits 1
    RECOMMENDED = "recommended"  # reported, never fails the check
    # Must be off: reported when on, never fails the check (the kernel still boots), and
    # `kernel fix` always turns it off (--recommended or not): see each one's why.
    UNWANTED = "unwanted"


@dataclass(frozen=True)
class Requirement:
    symbol: str           # without the CONFIG_ prefix
    builtin: bool         # True: must be =y; False: =y or =m will do
    why: str
    level: Level = Level.REQUIRED
    module: bool = False  # `kernel fix` sets =m rather than =y (xen.config's choice)

    @property
    def off(self) -> bool:
        return self.level is Level.UNWANTED

    @property
    def wanted(self) -> str:
        return "n" if self.off else "y" if self.builtin else "y or m"


def _r(symbol: str, why: str, *, builtin: bool = True, module: bool = False,
       level: Level = Level.REQUIRED) -> Requirement:
    return Requirement(symbol, builtin, why, level, module)


_RECOMMENDED = Level.RECOMMENDED

# Every guest Xen's PV drivers serve, whichever way it boots.
GUEST: tuple[Requirement, ...] = (
    _r("64BIT", "Xen PV guests are 64-bit only in Linux 6.x"),
    _r("HYPERVISOR_GUEST", "the 'Linux guest support' menu: Xen options appear only under it"),
    _r("PARAVIRT", "paravirtualisation hooks that XEN depends on"),
    _r("XEN", "Xen guest support"),
    _r("XEN_SAVE_RESTORE", "xl save/restore and migration", level=_RECOMMENDED),
    _r("XEN_XENBUS_FRONTEND", "xenbus, which every PV frontend uses", builtin=False),
    _r("HVC_XEN", "the Xen console hvc0 (`xl console`, `xl create -c`)"),
    _r("HVC_XEN_FRONTEND", "further Xen consoles", level=_RECOMMENDED),
    _r("XEN_BLKDEV_FRONTEND", "the guest's disks (xvda)", builtin=False),
    _r("XEN_NETDEV_FRONTEND", "the guest's network interface (vif → eth0)", builtin=False),
    _r("XEN_BALLOON", "`xl mem-set` and memory ballooning", level=_RECOMMENDED),
    _r("XEN_SYS_HYPERVISOR", "/sys/hypervisor (domain type, uuid)", level=_RECOMMENDED),
)

# What each guest type adds. PV is the hint's (and a dom0's); PVH needs its own entry point
# (the XEN_ELFNOTE_PHYS32_ENTRY note); HVM boots like a PC and needs nothing of Xen's, but
# without the PV-on-HVM drivers its disks and network are slow emulated ones, and without
# them there is no xvda: root=/dev/xvda1 needs blkfront and the Xen platform PCI device.
BY_TYPE: dict[GuestType, tuple[Requirement, ...]] = {
    GuestType.PV: (
        _r("XEN_PV", "boot as a PV guest (the hint's `kernel =` guests)"),
        _r("XEN_PVH", "boot as a PVH guest (type = \"pvh\")", level=_RECOMMENDED),
        _r("XEN_PVHVM_GUEST", "PV drivers when booted as an HVM guest", level=_RECOMMENDED),
    ),
    GuestType.PVH: (
        _r("XEN_PVH", "the PVH entry point (ELF note XEN_ELFNOTE_PHYS32_ENTRY): type = \"pvh\""),
    ),
    GuestType.HVM: (
        _r("SERIAL_8250", "the emulated serial port: an HVM guest's console (serial = \"pty\")"),
        _r("SERIAL_8250_CONSOLE", "console=ttyS0: kernel messages and login on the serial port"),
        _r("XEN_PVHVM_GUEST", "PV-on-HVM drivers: xvda and vif instead of slow emulated "
           "devices (root=/dev/xvda1 needs them)", level=_RECOMMENDED),
        # VT's default. The guest's console is the serial port; on the VGA text console
        # every screen update is an emulated MMIO write that Xen hands to qemu in dom0:
        # unnoticed on hardware, minutes of boot under nested emulation (the lab's TCG).
        _r("VGA_CONSOLE", "the VGA text console: each screen update is an emulated write to "
           "qemu in dom0 (minutes of boot under emulation); the console is ttyS0. Its prompt "
           "shows only with EXPERT=y", builtin=False, level=Level.UNWANTED),
    ),
}

# A system Linux can boot and log in to. xen.config: "otherwise produces pretty useless
# systems starting from allnoconfig"; tinyconfig turns all of these off.
USERLAND: tuple[Requirement, ...] = (
    _r("BLOCK", "block devices at all"),
    _r("NET", "networking at all"),
    _r("INET", "TCP/IP"),
    _r("UNIX", "Unix sockets (syslog, udev, most daemons)"),
    _r("NETDEVICES", "network device drivers, the Xen frontend among them"),
    _r("TTY", "terminals, the Xen console among them"),
    _r("PRINTK", "kernel messages on the console"),
    _r("BINFMT_ELF", "run ELF programs"),
    _r("BINFMT_SCRIPT", "run #! scripts (the LFS bootscripts)"),
    _r("MULTIUSER", "users and groups: login, su, setuid"),
    _r("FUTEX", "glibc's threads and locks"),
    _r("PROC_FS", "/proc"),
    _r("SYSFS", "/sys"),
    _r("TMPFS", "tmpfs for /run and /dev/shm"),
    _r("SHMEM", "shared memory behind tmpfs and memfd"),
    _r("FILE_LOCKING", "flock/fcntl locks (sysvinit, package tools)"),
    _r("POSIX_TIMERS", "POSIX timers (sleep, glibc)"),
    _r("EPOLL", "epoll (udev, most daemons)"),
    _r("SIGNALFD", "signalfd (udev)"),
    _r("TIMERFD", "timerfd (udev)"),
    _r("EVENTFD", "eventfd (udev, glibc)"),
    _r("INOTIFY_USER", "inotify (udev; the LFS book asks for it)"),
    _r("FHANDLE", "open_by_handle_at (udev)"),
    _r("UNIX98_PTYS", "pseudo-terminals (ssh, script, screen)"),
)

# The domU boots with no initramfs: root disk, root filesystem and /dev must be built in.
DOMU_BOOT: tuple[Requirement, ...] = (
    _r("XEN_BLKDEV_FRONTEND", "root=/dev/xvda1 without an initramfs: xen-blkfront built in"),
    _r("EXT4_FS", "the root filesystem (ext4) built in: no initramfs to load it from"),
    _r("DEVTMPFS", "/dev populated by the kernel: no initramfs, no udev before root"),
    _r("DEVTMPFS_MOUNT", "devtmpfs mounted on /dev before init runs"),
)

# With an initramfs (a distribution's kernel), the disk and filesystem drivers may be modules
# it loads before the root is mounted, and it mounts /dev itself.
DOMU_INITRAMFS_BOOT: tuple[Requirement, ...] = (
    _r("XEN_BLKDEV_FRONTEND", "the guest's disks (xvda); the initramfs must load it",
       builtin=False),
    _r("EXT4_FS", "the root filesystem (ext4); the initramfs must load it", builtin=False),
    _r("DEVTMPFS", "/dev populated by the kernel (the initramfs mounts it)"),
)

# What only the privileged domain needs: backends and the devices xl and xenstored use.
DOM0: tuple[Requirement, ...] = (
    _r("ACPI", "XEN_DOM0 depends on ACPI (Linux's xen.config loses dom0 without it)"),
    _r("PCI", "XEN_DOM0 depends on PCI; dom0 drives the real hardware"),
    _r("XEN_DOM0", "run as Xen's privileged domain 0"),
    _r("XEN_BACKEND", "backend drivers that serve the guests"),
    _r("XEN_BLKDEV_BACKEND", "blkback: the guests' disks", builtin=False, module=True),
    _r("XEN_NETDEV_BACKEND", "netback: the guests' vifs", builtin=False, module=True),
    _r("XEN_DEV_EVTCHN", "/dev/xen/evtchn for xenstored and xl", builtin=False, module=True),
    _r("XEN_GNTDEV", "/dev/xen/gntdev for qemu and xenstored", builtin=False, module=True),
    _r("XEN_GRANT_DEV_ALLOC", "/dev/xen/gntalloc", builtin=False, module=True),
    _r("XEN_PRIVCMD", "/dev/xen/privcmd: the hypercalls of the toolstack",
       builtin=False, module=True),
    _r("XENFS", "xenfs, mounted on /proc/xen", builtin=False, module=True),
    _r("XEN_COMPAT_XENFS", "/proc/xen/capabilities, which the hint checks after boot"),
    _r("XEN_SYS_HYPERVISOR", "/sys/hypervisor, which the xencommons script reads"),
    _r("XEN_BALLOON", "dom0 memory ballooning (dom0_mem, xl mem-set)"),
    _r("SWIOTLB_XEN", "DMA for dom0's real devices", builtin=False),
    _r("BRIDGE", "the xenbr0 bridge the hint's guests attach to", builtin=False, module=True),
    _r("TUN", "tap devices for HVM guests' emulated NICs", builtin=False, module=True,
       level=_RECOMMENDED),
    _r("BLK_DEV_LOOP", "file-backed guest disks", builtin=False, module=True,
       level=_RECOMMENDED),
    _r("XEN_ACPI_PROCESSOR", "CPU power management through Xen", builtin=False, module=True,
       level=_RECOMMENDED),
    _r("XEN_MCE_LOG", "machine-check errors reported by Xen", level=_RECOMMENDED),
    _r("XEN_PCIDEV_BACKEND", "PCI passthrough to guests", builtin=False, module=True,
       level=_RECOMMENDED),
    _r("XEN_SCSI_BACKEND", "PV SCSI for guests", builtin=False, module=True,
       level=_RECOMMENDED),
    _r("XEN_WDT", "the Xen watchdog (xenwatchdogd)", builtin=False, module=True,
       level=_RECOMMENDED),
)


def _merge(*groups: tuple[Requirement, ...]) -> tuple[Requirement, ...]:
    """Later groups win for a symbol that appears twice, except that a requirement is never
    weakened to a recommendation (PV's XEN_PVH is recommended, PVH's is required)."""
    merged: dict[str, Requirement] = {}
    for group in groups:
        for req in group:
            old = merged.get(req.symbol)
            if old is not None and old.level is Level.REQUIRED and req.level is _RECOMMENDED:
                continue
            merged[req.symbol] = req
    return tuple(merged.values())


DEFAULT_TYPES = (GuestType.PV,)
_XEN = 4  # GUEST up to XEN itself; each type's own options follow it


def requirements(role: Role, types: tuple[GuestType, ...] = DEFAULT_TYPES, *,
                 initramfs: bool = False) -> tuple[Requirement, ...]:
    """What a kernel needs to run as `role`, booted as each of `types` (a dom0 is PV).

    A dom0 usually boots with an initramfs (Debian's does), so its guest drivers may be
    modules; a domU boots the hint's way without one unless `initramfs` says otherwise."""
    if role is Role.DOM0:
        return _merge(GUEST[:_XEN], BY_TYPE[GuestType.PV], GUEST[_XEN:], USERLAND, DOM0)
    # An HVM-only kernel needs nothing of Xen's: the Xen options are recommendations then.
    xen = GUEST if types != (GuestType.HVM,) else tuple(_recommend(r) for r in GUEST)
    boot = DOMU_INITRAMFS_BOOT if initramfs else DOMU_BOOT
    if types == (GuestType.HVM,):
        boot = tuple(_recommend(r) if r.symbol == "XEN_BLKDEV_FRONTEND" else r for r in boot)
    chosen = (BY_TYPE[t] for t in sorted(set(types), key=list(GuestType).index))
    # Later groups win: a domU's built-in boot drivers over GUEST's "=y or =m".
    return _merge(xen[:_XEN], *chosen, xen[_XEN:], USERLAND, boot)


def _recommend(req: Requirement) -> Requirement:
    return Requirement(req.symbol, req.builtin, req.why, _RECOMMENDED, req.module)


# The default sets, for readers that want them as a table (the docs, the tests).
REQUIREMENTS: dict[Role, tuple[Requirement, ...]] = {
    Role.DOMU: requirements(Role.DOMU),
    Role.DOM0: requirements(Role.DOM0),
}

# Turned on by `kernel fix` before anything else: they only unlock menus (xen.config's
# "global stuff ... to allow some of the not so generic stuff below").
ENABLERS: dict[Role, tuple[str, ...]] = {
    Role.DOMU: ("HYPERVISOR_GUEST", "PARAVIRT", "BLOCK", "BLK_DEV", "NET", "NETDEVICES", "TTY"),
    Role.DOM0: ("HYPERVISOR_GUEST", "PARAVIRT", "BLOCK", "BLK_DEV", "NET", "NETDEVICES", "TTY",
                "ACPI", "PCI", "X86_IO_APIC", "X86_LOCAL_APIC"),
}

