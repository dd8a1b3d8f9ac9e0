"""What a snapshot is, so the right edits are made and the others are reported as not made."""

from __future__ import annotations

from dataclasses import dataclass

from xenlfs.guest.rootfs import GuestPathError, GuestRoot

LFS = "lfs-bootscripts"
SYSVINIT = "sysvinit"
SYSTEMD = "systemd"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class System:
    init: str  # one of LFS, SYSVINIT, SYSTEMD, UNKNOWN
    evidence: str

    @property
    def has_inittab(self) -> bool:
        return self.init in (LFS, SYSVINIT)


def _kind(root: GuestRoot, path: str) -> str:
    try:
        return root.node(path).kind
    except GuestPathError:
        return "missing"


def detect(root: GuestRoot) -> System:
    """LFS bootscripts (etc/rc.d/init.d + etc/sysconfig), another sysvinit (etc/inittab),
    or systemd (sbin/init is systemd, or no inittab but systemd is there)."""
    try:
        init_target = root.resolve("/sbin/init")
    except GuestPathError:
        init_target = "/sbin/init"
    if init_target.endswith("/systemd"):
        return System(SYSTEMD, f"/sbin/init is {init_target}")
    inittab = _kind(root, "/etc/inittab") == "file"
    lfs_rc = _kind(root, "/etc/rc.d/init.d/rc") == "file"
    sysconfig = _kind(root, "/etc/sysconfig") == "dir"
    if inittab and lfs_rc and sysconfig:
        return System(LFS, "/etc/inittab, /etc/rc.d/init.d/rc and /etc/sysconfig")
    if inittab:
        return System(SYSVINIT, "/etc/inittab without LFS's /etc/rc.d/init.d/rc")
    for path in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd"):
        if _kind(root, path) == "file":
            return System(SYSTEMD, f"{path} and no /etc/inittab")
    return System(UNKNOWN, "no /etc/inittab and no systemd")
