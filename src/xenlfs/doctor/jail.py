"""Can extraction's jail work on this host? Every tar that writes a snapshot into a tree runs
in it (snapshot/extract.confined: a private mount namespace, a tmpfs, read-only bind mounts,
chroot), so `snapshot extract`, `guest prepare` and the Ganeti provider depend on it. The
probe runs `true` in the very jail extraction builds, on an empty directory: nothing else
on the host changes, and the namespace with its mounts vanishes when `true` exits."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from xenlfs import run
from xenlfs.doctor.findings import Finding, Status
from xenlfs.errors import ToolMissing
from xenlfs.snapshot.extract import confined

NAME = "extraction jail"
NEEDED = "for snapshot extract, guest prepare"
WHY = ("tar writes a snapshot into a tree only from a private mount namespace where the "
       "tree is the one writable place, so a guest's symlink cannot lead it to host files")


def fix_for(reason: str) -> str:
    """How to make the jail work, from what the probe said."""
    if "Operation not permitted" in reason or "Permission denied" in reason:
        return ("xenlfs lacks CAP_SYS_ADMIN here (a container, or a seccomp/AppArmor policy "
                "forbidding unshare and mount): run it on the host, or give the container "
                "CAP_SYS_ADMIN (docker/podman run --privileged)")
    if "Invalid argument" in reason or "not supported" in reason.lower():
        return ("the kernel has no namespaces: build it with CONFIG_NAMESPACES=y (General "
                "setup → Namespaces support) and CONFIG_TMPFS=y")
    if "tmpfs" in reason:
        return "the kernel needs tmpfs: CONFIG_TMPFS=y (File systems → Pseudo filesystems)"
    return ("the kernel needs CONFIG_NAMESPACES and CONFIG_TMPFS, and xenlfs needs "
            "CAP_SYS_ADMIN; see the reason above")


def finding() -> Finding:
    if os.geteuid() != 0:
        return Finding(NAME, Status.WARN, "not checked: the jail needs root", NEEDED, WHY,
                       "run xenlfs doctor as root to check it")
    try:
        with tempfile.TemporaryDirectory(prefix="xenlfs-doctor-") as dest, \
                confined(Path(dest)) as jail:
            result = run.run([*jail, "true"], check=False, timeout=60)
    except ToolMissing as e:
        return Finding(NAME, Status.MISSING, f"cannot be made: {e.message}", NEEDED, WHY,
                       "install util-linux (unshare, mount) and coreutils (chroot)")
    if result.returncode == 0:
        return Finding(NAME, Status.OK, "a private mount namespace, tmpfs, bind mounts and "
                       "chroot work", NEEDED, WHY, "")
    reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
    return Finding(NAME, Status.MISSING, f"does not work: {reason}", NEEDED, WHY,
                   fix_for(reason))
