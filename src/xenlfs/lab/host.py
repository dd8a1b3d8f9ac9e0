"""The reference *host*: an LFS-style Xen host that `xenlfs rehearse` boots, as a user's would.

Debian bookworm's userland (sysvinit) with the real LFS-Bootscripts (`make install
DESTDIR=…` from ../shared/sources), Debian's xen-utils-4.17 and Xen, Debian's 6.1 kernel with
its initramfs as dom0, then xenlfs's own steps on the tree: `service install`, `bridge
setup`, `grub add` (on a grub.cfg written the way the LFS book writes it) and one guest made
by `guest prepare` whose config sits in /etc/xen/auto. /boot is its own filesystem and fstab
and the kernel line name filesystems by UUID, as many real hosts do.

Built once per cache key (the inputs below) under CACHE/lab/host-KEY/root.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xenlfs import run
from xenlfs.digest import file_digest
from xenlfs.errors import PreconditionError
from xenlfs.host import bridge, service
from xenlfs.lab import apt, cache, demo, dom0, kernels, lfs_files, reference

log = logging.getLogger("xenlfs.lab")

# Bump when the way the trees are built changes: they are part of the cache keys.
BASE_VERSION = 1
HOST_VERSION = 2

# The project's third-party sources (../shared/sources beside the project; a git worktree
# sits one level deeper); $XENLFS_SOURCES overrides.
_PROJECT = Path(__file__).resolve().parents[3]
SOURCE_DIRS = (_PROJECT.parent / "shared/sources", _PROJECT.parent.parent / "shared/sources")
BOOTSCRIPTS = "lfs-bootscripts-2025-05-24.tar.xz"

PACKAGES = (*reference.PACKAGES, "udev", "initramfs-tools", "e2fsprogs",
            dom0.KERNEL_META_PACKAGE, dom0.XEN_UTILS_PACKAGE, dom0.XEN_HYPERVISOR_PACKAGE)

ROOT_UUID = "5a0f3c1e-7b2d-4c8e-9f10-2b3c4d5e6f70"
BOOT_UUID = "0b1e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
GUEST = "guest1"
ENTRY = "xenlfs-xen"  # the id `grub add` gives the Xen entry
GUEST_MEMORY_MIB = 128
DOM0_MEMORY = "dom0_mem=768M,max:768M"
# Debian's initramfs with just the drivers of the disks QEMU can give (not MODULES=most):
# smaller, so Xen and the kernel unpack it faster under TCG.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "ahci", "sd_mod", "nvme", "ext4")

FSTAB = f"""\
# Begin /etc/fstab (LFS host; filesystems by UUID)
# file system                                 mount-point  type     options             dump fsck
UUID={ROOT_UUID}     /            ext4     defaults            1    1
UUID={BOOT_UUID}     /boot        ext4     defaults            1    2
proc           /proc        proc     nosuid,noexec,nodev 0     0
sysfs          /sys         sysfs    nosuid,noexec,nodev 0     0
devpts         /dev/pts     devpts   gid=5,mode=620      0     0
tmpfs          /run         tmpfs    defaults            0     0
tmpfs          /dev/shm     tmpfs    nosuid,nodev        0     0
cgroup2        /sys/fs/cgroup cgroup2 nosuid,noexec,nodev 0   0
# (no devtmpfs line: the initramfs has mounted /dev already, as "udev")
# End /etc/fstab
"""

# As the LFS book's "Using GRUB to Set Up the Boot Process" writes it; /boot is separate,
# so paths are relative to it. `xenlfs grub add` adds the Xen entry.
GRUB_CFG = f"""\
# Begin /boot/grub/grub.cfg
set default=0
set timeout=5

insmod part_msdos
insmod ext2
search --no-floppy --fs-uuid --set=root {BOOT_UUID}

menuentry "GNU/Linux, Linux 6.1 (without Xen)" {{
        linux   /vmlinuz root=UUID={ROOT_UUID} ro
        initrd  /initrd.img
}}
"""


@dataclass(frozen=True)
class Host:
    root: Path  # the host's whole tree, /boot included
    grub_entry: str  # the id `grub add` gave the Xen entry
    guest: str


def sources_dir() -> Path:
    if os.environ.get("XENLFS_SOURCES"):
        return Path(os.environ["XENLFS_SOURCES"])
    return next((d for d in SOURCE_DIRS if (d / BOOTSCRIPTS).is_file()), SOURCE_DIRS[0])


def bootscripts_tarball() -> Path:
    """The LFS-Bootscripts tarball, checked against SHA256SUMS beside it."""
    sources = sources_dir()
    tarball = sources / BOOTSCRIPTS
    sums = sources / "SHA256SUMS"
    if not tarball.is_file() or not sums.is_file():
        raise PreconditionError(f"{tarball} (with SHA256SUMS beside it) is missing",
                                hint="the project's sources live in ../shared/sources (or set "
                                "$XENLFS_SOURCES)")
    wanted = next((line.split()[0] for line in sums.read_text().splitlines()
                   if line.split()[1:] == [BOOTSCRIPTS]), None)
    if wanted != file_digest(tarball):
        raise PreconditionError(f"{tarball} does not match its SHA256SUMS line",
                                hint="restore the upstream file")
    return tarball


def base_key(mirror: str, versions: apt.Versions) -> str:
    """The Debian tree: packages, the dom0 kernel's initramfs."""
    return cache.cache_key({"host-base": BASE_VERSION, "packages": PACKAGES, "mirror": mirror,
                            "versions": vars(versions), "modules": INITRAMFS_MODULES})


def steps_inputs(mirror: str, domu_kernel: Path, *, fstab: str = FSTAB,
                 grub_cfg: str = GRUB_CFG) -> dict[str, object]:
    """What dressing a tree as an LFS host and xenlfs's steps on it depend on (the part of
    the cache key this host and the source-built one share)."""
    return {"bootscripts": file_digest(bootscripts_tarball()),
            "lfs_files": lfs_files.FILES, "fstab": fstab, "grub": grub_cfg,
            "service": service.render(Path("/usr")), "bridge": bridge.BRIDGE_SERVICE,
            "ifconfig": bridge.render("eth0", "xenbr0", {}),
            "domu_kernel": file_digest(domu_kernel), "guest": reference.cache_key(mirror),
            "dom0_mem": DOM0_MEMORY}


def cache_key(base: str, mirror: str, domu_kernel: Path) -> str:
    """The host: the base dressed as LFS, and xenlfs's steps on it."""
    return cache.cache_key({"host": HOST_VERSION, "base": base,
                            **steps_inputs(mirror, domu_kernel)})


def finished(target: Path) -> Host | None:
    """The host built under TARGET (by reference_host or source_host), or None: not (yet)."""
    if not (target / "root/etc/xen/auto" / f"{GUEST}.cfg").is_file():
        return None
    return Host(target / "root", ENTRY, GUEST)


@contextlib.contextmanager
def _mounted_proc(root: Path) -> Iterator[None]:
    run.run(["mount", "-t", "proc", "proc", root / "proc"], writes=True)
    try:
        yield
    finally:
        run.run(["umount", root / "proc"], writes=True)


def install_bootscripts(root: Path) -> None:
    """`make install DESTDIR=root` of LFS-Bootscripts, and what they need from Debian."""
    build = root.parent / "bootscripts-src"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()
    with tarfile.open(bootscripts_tarball()) as tar:
        tar.extractall(build, filter="data")
    (top,) = build.iterdir()
    # rc and ifup are bash scripts; /etc/rc.d/init.d replaces Debian's /etc/init.d link.
    # Debian's own /etc/init.d and /lib/lsb make way for LFS's (make install links both).
    for debian in (root / "etc/init.d", root / "usr/lib/lsb"):
        if debian.is_dir() and not debian.is_symlink():
            os.rename(debian, debian.with_name(debian.name + ".debian"))
    run.run(["make", "install", f"DESTDIR={root}"], cwd=top, writes=True)
    shutil.rmtree(build)
    # The bootscripts are written for LFS's /bin/sh, which is bash (dash stops at bashisms).
    sh = root / "usr/bin/sh" if (root / "usr/bin/sh").is_symlink() else root / "bin/sh"
    sh.unlink()
    sh.symlink_to("bash")
    # LFS's udev script runs /sbin/udevd; Debian's daemon is systemd-udevd.
    udevd = root / "sbin/udevd"
    if not udevd.exists():
        udevd.symlink_to("/lib/systemd/systemd-udevd")
    # No syslogd in this userland: an LFS user without sysklogd unlinks it the same way.
    for link in (root / "etc/rc.d").glob("rc?.d/[SK]??sysklogd"):
        link.unlink()


def place_xen_tools(root: Path) -> None:
    """Debian keeps Xen's daemons in /usr/lib/xen-4.17/bin; an LFS build of Xen installs
    them in /usr/sbin and /usr/lib/xen/bin, where xencommons (prefix /usr) looks."""
    for name, where in (("xenstored", "usr/sbin"), ("xenconsoled", "usr/sbin"),
                        ("xen-init-dom0", "usr/lib/xen/bin")):
        link = root / where / name
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f"{dom0.XEN_BIN}/{name}")


def dom0_files(root: Path) -> tuple[Path, Path, Path]:
    """Xen, the dom0 kernel and its initramfs in the tree's /boot."""
    boot = root / "boot"
    xen = sorted(boot.glob("xen-*.gz"))
    kernels = sorted(boot.glob("vmlinuz-*"))
    initrds = sorted(boot.glob("initrd.img-*"))
    if not (xen and kernels and initrds):
        raise PreconditionError(f"{boot} lacks Xen, a kernel or an initramfs")
    return xen[-1], kernels[-1], initrds[-1]


def build_initramfs(root: Path) -> None:
    conf = root / "etc/initramfs-tools"
    (conf / "conf.d").mkdir(parents=True, exist_ok=True)
    (conf / "conf.d/xenlfs-host").write_text("MODULES=list\n")
    (conf / "modules").write_text("\n".join(INITRAMFS_MODULES) + "\n")
    with _mounted_proc(root):
        run.run(["chroot", root, "update-initramfs", "-u", "-k", "all"], writes=True,
                timeout=900)


def set_up_with_xenlfs(root: Path, cache_dir: Path, mirror: str, domu_kernel: Path, *,
                       boot_files: tuple[Path, Path, Path | None] | None = None,
                       grub_cfg: str = GRUB_CFG, root_spec: str = f"UUID={ROOT_UUID}") -> None:
    """The hint's host steps, done by xenlfs's own commands on the tree. BOOT_FILES: Xen,
    the dom0 kernel and its initramfs (None: none) in the tree's /boot; default: Debian's.
    ROOT_SPEC: the kernel's root= (UUID= needs an initramfs to find it)."""
    demo.xenlfs("service", "install", "--root", root)
    demo.xenlfs("bridge", "setup", "--root", root)
    (root / "boot/grub").mkdir(parents=True, exist_ok=True)
    (root / "boot/grub/grub.cfg").write_text(grub_cfg)
    xen, kernel, initrd = boot_files or dom0_files(root)
    for name, target in (("vmlinuz", kernel), ("initrd.img", initrd)):
        (root / "boot" / name).unlink(missing_ok=True)
        if target is not None:
            (root / "boot" / name).symlink_to(target.name)
    demo.xenlfs("grub", "add", "--grub-cfg", root / "boot/grub/grub.cfg", "--xen", xen,
                "--kernel", kernel, *(("--initrd", initrd) if initrd else ()),
                "--root", root_spec,
                "--boot-mount", root / "boot", "--xen-args", DOM0_MEMORY,
                "--kernel-args", "net.ifnames=0", "--id", ENTRY, "--default")
    # The guest: its disk an image file in the host's /var/lib/xen/images, its kernel the
    # lab's domU kernel, its config in /etc/xen/auto (paths as dom0 sees them).
    snapshot = demo.snapshot_of_reference(cache_dir, mirror)
    images_dir, kernels_dir = root / "var/lib/xen/images", root / "var/lib/xen/kernels"
    images_dir.mkdir(parents=True, exist_ok=True)
    kernels_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(domu_kernel, kernels_dir / "vmlinuz-domU")
    demo.xenlfs("guest", "prepare", GUEST, "--snapshot", snapshot,
                "--target", images_dir / f"{GUEST}.img", "--hostname", GUEST, "--yes",
                "--config-dir", root / "etc/xen")  # any config it writes: the host tree's
    (root / "etc/xen/auto").mkdir(parents=True, exist_ok=True)
    demo.xenlfs("guest", "config", GUEST, "--output", root / f"etc/xen/auto/{GUEST}.cfg",
                "--kernel", "/var/lib/xen/kernels/vmlinuz-domU",
                "--memory", str(GUEST_MEMORY_MIB),
                "--disk", f"format=raw,vdev=xvda1,access=rw,target=/var/lib/xen/images/{GUEST}.img",
                "--vif", "bridge=xenbr0", "--root", "/dev/xvda1 ro", "--extra", "console=hvc0",
                "--force")


def base_tree(cache_dir: Path, mirror: str) -> Path:
    """Debian + LFS-Bootscripts + Xen's tools + the dom0 kernel and initramfs; cached."""
    lab_dir = cache.lab_cache(cache_dir)
    versions = apt.cached_versions(lab_dir)
    target = lab_dir / f"host-base-{base_key(mirror, versions)}"
    if (target / "root/etc/initramfs-tools/conf.d/xenlfs-host").is_file():
        return target / "root"
    log.info("reference host: debootstrap %s with the kernel and Xen into %s", reference.SUITE,
             target)
    with cache.building(target) as work:
        root = work / "root"
        root.mkdir()
        apt.debootstrap(root, reference.SUITE, mirror, PACKAGES)
        build_initramfs(root)
    return target / "root"


def dress_as_lfs_host(root: Path) -> None:
    """Debian's tree made an LFS host: LFS's files, bootscripts, fstab."""
    reference.dress_as_lfs(root)
    install_bootscripts(root)
    (root / "etc/fstab").write_text(FSTAB)
    # LFS's modules bootscript loads these at boot: loop for the guest's file-backed disk
    # (Debian's kernel has it as a module, and LFS's udev makes no static nodes).
    (root / "etc/sysconfig/modules").write_text("# Begin /etc/sysconfig/modules\nloop\n")


def dress(root: Path) -> None:
    """Debian's tree made an LFS host with Debian's Xen tools where an LFS build puts them."""
    dress_as_lfs_host(root)
    place_xen_tools(root)


def reference_host(cache_dir: Path, mirror: str = apt.DEFAULT_MIRROR) -> Host:
    """The reference host's tree, built once per cache key (a few minutes) and reused."""
    lab_dir = cache.lab_cache(cache_dir)
    with cache.locked(lab_dir / "host-lock"):
        base = base_tree(cache_dir, mirror)
        domu_kernel = kernels.cached_domu_kernel(cache_dir)
        target = lab_dir / f"host-{cache_key(base.parent.name, mirror, domu_kernel)}"
        host = finished(target)
        if host is not None:
            log.info("reference host: cached at %s", target)
            return host
        log.info("reference host: xenlfs's steps on a copy of %s into %s", base, target)
        with cache.building(target) as work:
            run.run(["cp", "-a", base, work / "root"], writes=True, timeout=1800)
            dress(work / "root")
            set_up_with_xenlfs(work / "root", cache_dir, mirror, domu_kernel)
    return Host(target / "root", ENTRY, GUEST)
