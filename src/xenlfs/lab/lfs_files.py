"""LFS-style /etc files, as the LFS book writes them: the reference root's (lab/reference.py,
and through it the reference host's) and the tests' fixtures, written once.

FILES is what dresses a Debian tree as an LFS system; its texts are part of the reference
root's and the reference host's cache keys, so a change here rebuilds both.
"""

from __future__ import annotations

import os
from pathlib import Path

INITTAB = """\
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
"""

# LFS's rc takes a runlevel. This one does in a few commands what LFS's bootscripts do
# (mountvirtfs, checkfs, mountfs, cleanfs, localnet; sendsignals, mountfs stop, halt):
# Debian's own rcS scripts took 30 s of the guest's boot under TCG, this takes 2.
RC = """\
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
"""

# General Network Configuration: a static address on eth0.
IFCONFIG_ETH0 = """\
ONBOOT=yes
IFACE=eth0
SERVICE=ipv4-static
IP=192.168.1.2
GATEWAY=192.168.1.1
PREFIX=24
BROADCAST=192.168.1.255
"""

RC_SITE = "# LFS rc.site: defaults kept\n"

# Root, /boot and swap on host partitions, as a host's fstab has them (step 5 rewrites it).
FSTAB = """\
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
"""

HOSTNAME = "lfs\n"
HOSTS = "127.0.0.1 localhost\n127.0.1.1 lfs\n"

# Path below the root → (mode, text).
FILES: dict[str, tuple[int, str]] = {
    "etc/inittab": (0o644, INITTAB),
    "etc/rc.d/init.d/rc": (0o755, RC),
    "etc/sysconfig/ifconfig.eth0": (0o644, IFCONFIG_ETH0),
    "etc/sysconfig/rc.site": (0o644, RC_SITE),
    "etc/fstab": (0o644, FSTAB),
    "etc/hostname": (0o644, HOSTNAME),
    "etc/hosts": (0o644, HOSTS),
}


def write(root: Path, files: dict[str, tuple[int, str]] = FILES) -> None:
    """Write `files` into the tree at `root` (a tree being built, not a user's: plain writes)."""
    for relative, (mode, text) in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, mode)
