"""The reference root filesystem the lab demo snapshots: it stands in for a user's LFS system.

It is Debian bookworm (debootstrap, sysvinit) dressed the way an LFS system is: an LFS
inittab with agetty on tty1-6, /etc/rc.d/init.d, /etc/sysconfig/ifconfig.eth0 and an fstab
naming host partitions. Its /etc/rc.d/init.d/rc does what LFS's bootscripts do, so it really
boots; the files xenlfs edits (fstab, inittab, ifconfig.*) have LFS's form, so the hint's
step 5 is exercised.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from xenlfs.lab import apt, cache

log = logging.getLogger("xenlfs.lab")

SUITE = "bookworm"
PACKAGES = ("sysvinit-core", "util-linux", "procps", "iproute2", "kmod")
# Bump when the files below or the way the tree is built change: it is part of the cache key.
BUILDER_VERSION = 2

# The demo's root password is "xenlfs" (SHA-512 crypt), so a person can log in on hvc0.
ROOT_PASSWORD = "xenlfs"
ROOT_PASSWORD_HASH = (
    "$6$xenlfs.lab$wCXGCIi1EyT7BR0rzt.VsYbbMESb1yBBfZT740NvjDQXKo5vr07j2coBKSnAIhYd7zTKYeN9RDC6"
    "MEfXVl59T/"
)

LFS_FILES: dict[str, tuple[int, str]] = {
    "etc/inittab": (0o644, """\
# /etc/inittab, as the LFS book writes it
id:3:initdefault:

si::sysinit:/etc/rc.d/init.d/rc S

l0:0:wait:/etc/rc.d/init.d/rc 0
l1:S1:wait:/etc/rc.d/init.d/rc 1
l2:2:wait:/etc/rc.d/init.d/rc 2
l3:3:wait:/etc/rc.d/init.d/rc 3
l4:4:wait:/etc/rc.d/init.d/rc 4
l5:5:wait:/etc/rc.d/init.d/rc 5
l6:6:wait:/etc/rc.d/init.d/rc 6

ca:12345:ctrlaltdel:/sbin/shutdown -t1 -a -r now

su:S06:once:/sbin/sulogin
s1:1:respawn:/sbin/sulogin

1:2345:respawn:/sbin/agetty --noclear tty1 9600
2:2345:respawn:/sbin/agetty tty2 9600
3:2345:respawn:/sbin/agetty tty3 9600
4:2345:respawn:/sbin/agetty tty4 9600
5:2345:respawn:/sbin/agetty tty5 9600
6:2345:respawn:/sbin/agetty tty6 9600
"""),
    # LFS's rc takes a runlevel. This one does in a few commands what LFS's bootscripts do
    # (mountvirtfs, checkfs, mountfs, cleanfs, localnet; sendsignals, mountfs stop, halt):
    # Debian's own rcS scripts took 30 s of the guest's boot under TCG, this takes 2.
    "etc/rc.d/init.d/rc": (0o755, """\
#!/bin/sh
# Stand-in for LFS's bootscripts, run by /etc/inittab as "rc RUNLEVEL".
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
case "$1" in
S)
    mountpoint -q /proc || mount -n -t proc proc /proc
    mountpoint -q /sys || mount -n -t sysfs sysfs /sys
    mountpoint -q /run || mount -n -t tmpfs -o mode=0755 run /run
    mountpoint -q /dev || mount -n -t devtmpfs devtmpfs /dev
    mkdir -p /dev/pts /dev/shm /run/lock
    mountpoint -q /dev/pts || mount -n -t devpts -o gid=5,mode=620 devpts /dev/pts
    echo "Checking the root file system..."
    fsck -a -T /
    [ $? -le 1 ] || echo "fsck found errors on /: run fsck by hand"
    mount -n -o remount,rw /
    mount -a -O no_netdev
    rm -rf /tmp/* 2>/dev/null
    hostname -F /etc/hostname
    ip link set lo up
    ;;
0|6)
    echo "Sending all processes the TERM signal..."
    killall5 -15; sleep 1; killall5 -9
    swapoff -a; sync
    mount -n -o remount,ro /
    if [ "$1" = 0 ]; then halt -d -f -i -p; else reboot -d -f -i; fi
    ;;
esac
"""),
    "etc/sysconfig/ifconfig.eth0": (0o644, """\
ONBOOT=yes
IFACE=eth0
SERVICE=ipv4-static
IP=192.168.1.2
GATEWAY=192.168.1.1
PREFIX=24
BROADCAST=192.168.1.255
"""),
    "etc/sysconfig/rc.site": (0o644, "# LFS rc.site: defaults kept\n"),
    "etc/fstab": (0o644, """\
# Begin /etc/fstab (LFS host)
# file system  mount-point  type     options             dump  fsck
/dev/sda2      /            ext4     defaults            1     1
/dev/sda1      /boot        ext2     defaults            1     2
/dev/sda3      swap         swap     pri=1               0     0
proc           /proc        proc     nosuid,noexec,nodev 0     0
sysfs          /sys         sysfs    nosuid,noexec,nodev 0     0
devpts         /dev/pts     devpts   gid=5,mode=620      0     0
tmpfs          /run         tmpfs    defaults            0     0
devtmpfs       /dev         devtmpfs mode=0755,nosuid    0     0
# End /etc/fstab
"""),
    "etc/hostname": (0o644, "lfs\n"),
    "etc/hosts": (0o644, "127.0.0.1 localhost\n127.0.1.1 lfs\n"),
}


def cache_key(mirror: str) -> str:
    """Changes whenever anything that goes into the tree changes."""
    return cache.cache_key({"suite": SUITE, "packages": PACKAGES, "mirror": mirror,
                            "reference": BUILDER_VERSION, "files": LFS_FILES,
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
    for relative, (mode, text) in LFS_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, mode)
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
