"""The reference root filesystem the lab demo snapshots: it stands in for a user's LFS system.

It is Debian bookworm (debootstrap, sysvinit) dressed the way an LFS system is: an LFS
inittab with agetty on tty1-6, /etc/rc.d/init.d, /etc/sysconfig/ifconfig.eth0 and an fstab
naming host partitions. Its /etc/rc.d/init.d/rc does what LFS's bootscripts do, so it really
boots; the files xenlfs edits (fstab, inittab, ifconfig.*) have LFS's form, so the hint's
step 5 is exercised. Those files are lfs_files.py's, which the tests use too.
"""

from __future__ import annotations

import logging
from pathlib import Path

from xenlfs.lab import apt, cache, lfs_files

log = logging.getLogger("xenlfs.lab")

SUITE = "bookworm"
PACKAGES = ("sysvinit-core", "util-linux", "procps", "iproute2", "kmod")
# Bump when the way the tree is built changes: it is part of the cache key (with the
# files of lfs_files.py).
BUILDER_VERSION = 2

# The demo's root password is "xenlfs" (SHA-512 crypt), so a person can log in on hvc0.
ROOT_PASSWORD = "xenlfs"
ROOT_PASSWORD_HASH = (
    "$6$xenlfs.lab$wCXGCIi1EyT7BR0rzt.VsYbbMESb1yBBfZT740NvjDQXKo5vr07j2coBKSnAIhYd7zTKYeN9RDC6"
    "MEfXVl59T/"
)


def cache_key(mirror: str) -> str:
    """Changes whenever anything that goes into the tree changes."""
    return cache.cache_key({"suite": SUITE, "packages": PACKAGES, "mirror": mirror,
                            "reference": BUILDER_VERSION, "files": lfs_files.FILES,
                            "password": ROOT_PASSWORD_HASH})


def set_root_password(root: Path, password_hash: str) -> None:
    shadow = root / "etc/shadow"
    lines = shadow.read_text().splitlines()
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == "root":
            fields[1] = password_hash
            lines[i] = ":".join(fields)
    shadow.write_text("\n".join(lines) + "\n")


def dress_as_lfs(root: Path) -> None:
    lfs_files.write(root)
    set_root_password(root, ROOT_PASSWORD_HASH)


def reference_root(cache_dir: Path, mirror: str) -> Path:
    """The reference tree, built once per cache key (about 40 s) and reused after."""
    target = cache_dir / "lab" / f"reference-root-{cache_key(mirror)}"
    if (target / "etc/inittab").is_file():
        log.info("reference root: cached at %s", target)
        return target
    log.info("reference root: debootstrap %s (sysvinit) into %s", SUITE, target)
    with cache.building(target) as work:
        apt.debootstrap(work, SUITE, mirror, PACKAGES)
        dress_as_lfs(work)
    return target
