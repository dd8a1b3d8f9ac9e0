"""What the lab's dom0 contains and how it comes up: packages, modules, init, slimming.

dom0 is a Debian bookworm minbase tree packed as an uncompressed initramfs (decompressing
under TCG costs more than it saves). busybox is PID 1: it runs DOM0_UP once, the way
xencommons would bring a Xen host up, then keeps the agent running.
"""

from __future__ import annotations

SUITE = "bookworm"
XEN_SERIES = "4.17"
XEN_HYPERVISOR_PACKAGE = f"xen-hypervisor-{XEN_SERIES}-amd64"
XEN_UTILS_PACKAGE = f"xen-utils-{XEN_SERIES}"
KERNEL_META_PACKAGE = "linux-image-amd64"

# debootstrap --include: the toolstack and what the bring-up and the agent use.
PACKAGES = (XEN_UTILS_PACKAGE, "iproute2", "kmod", "python3", "fdisk", "e2fsprogs")

# Kernel modules dom0 loads (their dependencies come along); the rest of the 390 MB module
# tree stays out of the initramfs.
MODULES = (
    "xenfs", "xen-evtchn", "xen-gntdev", "xen-gntalloc", "xen-privcmd", "xen-blkback",
    "xen-netback", "loop", "bridge", "virtio_pci", "virtio_console", "virtio_blk",
    "9pnet_virtio", "9p", "virtio_rng", "dm-mod", "ext4",
)

# Never needed in a lab dom0 (glob patterns): leaving them out keeps the initramfs small and
# the boot fast (the kernel unpacks it at about 20 MB/s under TCG).
EXCLUDE = (
    "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/i18n",
    "usr/share/zoneinfo", "usr/share/common-licenses", "usr/share/bash-completion",
    "usr/share/perl5", "usr/bin/perl*", "usr/lib/x86_64-linux-gnu/perl*",
    "var/cache/apt", "var/lib/apt/lists", "var/cache/debconf", "var/lib/dpkg/info",
    "usr/bin/apt*", "usr/lib/apt", "usr/lib/x86_64-linux-gnu/libapt-*",
    "usr/lib/udev/hwdb.bin", "usr/lib/udev/hwdb.d", "usr/lib/x86_64-linux-gnu/gconv",
    f"usr/lib/xen-{XEN_SERIES}/boot", "usr/lib/python3.11/test",
    "usr/lib/python3.11/pydoc_data", "usr/lib/python3.11/ensurepip",
)

# Modules whose bytecode is compiled into the image (the agent's and xenlfs's imports).
PYTHON_IMPORTS = (
    "argparse", "base64", "contextlib", "dataclasses", "difflib", "fcntl", "glob", "gzip",
    "hashlib", "importlib.metadata", "json", "logging", "lzma", "os", "re", "select", "shlex",
    "shutil", "socket", "subprocess", "tempfile", "termios", "threading", "tomllib", "tty",
    "uuid", "zlib",
)

SHARE_TAG = "xenlfs"
SHARE_MOUNT = "/mnt/host"
AGENT_PATH = "/usr/lib/xenlfs/agent.py"
UP_MARKER = "xenlfs-dom0: up"

XEN_BIN = f"/usr/lib/xen-{XEN_SERIES}/bin"

DOM0_UP = f"""\
#!/bin/sh
# Bring dom0 up as xencommons would; there is no udev and no init system here.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
started=$(cut -d' ' -f1 /proc/uptime)
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /dev/mapper
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# devtmpfs makes none of these; Xen's block hotplug script loops in its lock without them.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock /run/xen /var/log/xen/console /var/lib/xen /tmp {SHARE_MOUNT}
hostname dom0
ip link set lo up
modprobe -a {" ".join(MODULES)} \\
    || echo "xenlfs-dom0: some modules did not load (built in, or missing)"
mount -t xenfs xenfs /proc/xen || echo "xenlfs-dom0: cannot mount xenfs: is this Xen's dom0?"
echo "xenlfs-dom0: /proc/xen/capabilities: $(cat /proc/xen/capabilities 2>/dev/null)"
{XEN_BIN}/xenstored --pid-file=/run/xenstored.pid
{XEN_BIN}/xen-init-dom0
{XEN_BIN}/xenconsoled --pid-file=/run/xenconsoled.pid --log=guest \\
    --log-dir=/var/log/xen/console
ip link add xenbr0 type bridge && ip link set xenbr0 up
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 {SHARE_TAG} {SHARE_MOUNT} \\
    || echo "xenlfs-dom0: cannot mount the host's share on {SHARE_MOUNT}"
echo "{UP_MARKER} in $(cut -d' ' -f1 /proc/uptime) s of dom0 uptime (userspace from $started s)"
"""

INITTAB = f"""\
::sysinit:/etc/xenlfs/dom0-up
::respawn:/usr/bin/env PYTHONHASHSEED=0 /usr/bin/python3 -S -u {AGENT_PATH}
::shutdown:/bin/sync
"""
