"""The source-built reference host: the hint's steps 2–4 the hint's way, done by xenlfs.

Like host.py's reference host (Debian bookworm's userland, sysvinit, the real LFS-Bootscripts,
/boot its own filesystem, UUIDs), but nothing of Xen comes from Debian: `xenlfs build yajl`,
`libaio` and `acpica` install into the host tree (--destdir), `xenlfs build xen` builds the
hypervisor and the tools with those prerequisites taken from the same tree (--deps) and
checks that every installed program finds its libraries there; the dom0 kernel is
defconfig + `kernel fix --role dom0`, built, and put into the tree's /boot by
`kernel install`, with no initramfs (the root's disk and filesystem drivers are built in).
Then the same steps as the reference host: `service install`, `bridge setup`, `grub add`,
and a guest by `guest prepare` in /etc/xen/auto.

Each slow part is cached by its inputs: the four builds by `build --reuse` (CACHE/build/
results), the dom0 kernel by kernels.py, the Debian tree and the finished host here.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from dataclasses import dataclass, fields
from pathlib import Path

from xenlfs import recipes, run
from xenlfs.digest import file_digest
from xenlfs.errors import PreconditionError
from xenlfs.guest.rootfs import GuestRoot
from xenlfs.kernel.requirements import Role
from xenlfs.lab import apt, cache, demo, host, kernels, reference
from xenlfs.recipes import libraries, sources

log = logging.getLogger("xenlfs.lab")

# Bump when the way the trees are built changes: they are part of the cache keys.
BASE_VERSION = 1
HOST_VERSION = 1

# No Xen, no kernel, no initramfs-tools from Debian: only the userland an LFS system has,
# with the libraries Xen's tools link (as BLFS would give them): libncurses6 for xentop,
# which links -lncurses (the first build of this host linked the build machine's
# libncurses.so.6, and `build xen`'s library check refused it: the tree had only ncursesw).
PACKAGES = (*reference.PACKAGES, "udev", "e2fsprogs", "libncurses6")

# Xen's tools without what needs network or other toolchains (stubdoms, OCaml, Go, the PV
# shim) and with QEMU and SeaBIOS as system programs (a PV dom0 needs neither to run PV
# guests); Xen's own init scripts where LFS keeps them.
CONFIGURE = ("--disable-stubdom --disable-docs --disable-golang --disable-ocamltools "
             "--disable-pvshim --with-system-qemu=/usr/bin/qemu-system-i386 "
             "--with-system-seabios=/usr/share/seabios/bios.bin "
             "--with-initddir=/etc/rc.d/init.d")
TARGETS = "dist-xen dist-tools"

ACPICA = "acpica-unix-20250404.tar.gz"

# Without an initramfs nothing turns root=UUID=… into a device: the kernel itself mounts
# the root, and it knows devices (and PARTUUID=), not filesystem UUIDs. So / is named by its
# device, as the LFS book does (virtio here: the rehearsal gives the bus fstab names); /boot,
# mounted later by the mountfs bootscript, stays UUID= (GRUB finds it by that too).
ROOT_DEVICE = "/dev/vda2"
FSTAB = (host.FSTAB
         .replace("(LFS host; filesystems by UUID)", "(LFS host; / by device, /boot by UUID)")
         .replace(f"UUID={host.ROOT_UUID}    ", f"{ROOT_DEVICE}                       ")
         .replace('the initramfs has mounted /dev already, as "udev"',
                  "the kernel mounts devtmpfs on /dev itself: DEVTMPFS_MOUNT"))
# As host.GRUB_CFG, without an initramfs: the LFS book's entry.
GRUB_CFG = host.GRUB_CFG.replace("        initrd  /initrd.img\n", "").replace(
    f"root=UUID={host.ROOT_UUID}", f"root={ROOT_DEVICE}")


@dataclass(frozen=True)
class Sources:
    yajl: Path
    libaio: Path
    acpica: Path
    xen: Path

    def by_recipe(self) -> dict[str, Path]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def find_sources(cache_dir: Path, *, download: bool) -> Sources | None:
    """The four tarballs: Debian's orig tarballs (fetched with apt-get source when DOWNLOAD)
    and upstream's ACPICA from the project's shared sources. None: one is not here."""
    acpica = host.sources_dir() / ACPICA
    found = {}
    for package in ("yajl", "libaio", "xen"):  # each recipe's Debian source package
        if download:
            found[package] = sources.debian_orig(package, cache_dir)
            continue
        have = sorted((cache_dir / "build/sources" / package).glob(f"{package}_*.orig.tar.*"))
        if not have:
            return None
        found[package] = have[-1]
    if not acpica.is_file():
        if download:
            raise PreconditionError(f"{acpica} is missing",
                                    hint="the project's sources live in ../shared/sources")
        return None
    return Sources(found["yajl"], found["libaio"], acpica, found["xen"])


def base_key(mirror: str) -> str:
    return cache.cache_key({"source-host-base": BASE_VERSION, "suite": reference.SUITE,
                            "packages": PACKAGES, "mirror": mirror})


def _code_digest() -> str:
    """xenlfs's build recipes and the library check: a change to them is a new host."""
    digest = hashlib.sha256()
    for module in (*(recipes.get(n).phases.__module__ for n in recipes.NAMES),
                   "xenlfs.recipes.recipe", libraries.__name__):
        digest.update(Path(str(importlib.import_module(module).__file__)).read_bytes())
    return digest.hexdigest()


def cache_key(mirror: str, found: Sources, dom0_recipe: str, domu_kernel: Path) -> str:
    """The host: the base, the sources and how they are built, the dom0 kernel's recipe
    (kernels.recipe_key: source, start, requirements, toolchain), and the steps shared with
    host.py."""
    return cache.cache_key({
        "source-host": HOST_VERSION, "base": base_key(mirror),
        "sources": {k: file_digest(v) for k, v in found.by_recipe().items()},
        "code": _code_digest(), "configure": CONFIGURE, "targets": TARGETS,
        "dom0_kernel": dom0_recipe,
        **host.steps_inputs(mirror, domu_kernel, fstab=FSTAB, grub_cfg=GRUB_CFG)})


def base_tree(cache_dir: Path, mirror: str) -> Path:
    """Debian's userland without Xen or a kernel; cached."""
    lab_dir = cache.lab_cache(cache_dir)
    target = lab_dir / f"source-host-base-{base_key(mirror)}"
    with cache.locked(lab_dir / "source-host-base-lock"):
        if (target / "root/etc/inittab").is_file():
            return target / "root"
        log.info("source-built host: debootstrap %s into %s", reference.SUITE, target)
        with cache.building(target) as work:
            (work / "root").mkdir()
            apt.debootstrap(work / "root", reference.SUITE, mirror, PACKAGES)
    return target / "root"


def build_from_source(root: Path, found: Sources, *, jobs: int = 2, nice: int = 19) -> None:
    """Hint steps 2–3 into the host tree by xenlfs's own commands (each --reuse: an
    identical earlier build is copied, not built again)."""
    common = ("--destdir", root, "--jobs", str(jobs), "--nice", str(nice), "--reuse")
    for name in ("yajl", "libaio", "acpica"):
        demo.xenlfs("build", name, "--source", found.by_recipe()[name], *common)
    # `build xen` checks that each installed program finds its libraries in ROOT.
    demo.xenlfs("build", "xen", "--source", found.xen, "--deps", root, *common,
                f"--configure-args={CONFIGURE}", "--targets", TARGETS)
    run.run(["chroot", root, "ldconfig"], writes=True)


def install_dom0_kernel(root: Path, cache_dir: Path) -> tuple[Path, str]:
    """defconfig + `kernel fix --role dom0` + `kernel build` (cached), then `kernel install`
    into ROOT/boot and ROOT/lib/modules: (the installed vmlinuz, its release)."""
    out = kernels.cached_kernel(cache_dir, Role.DOM0)
    with kernels.source_tree(cache_dir, Role.DOM0) as tree:
        built = tree / "arch/x86/boot/bzImage"
        if not (built.is_file() and (tree / ".config").read_text() == (out / "config").read_text()
                and built.read_bytes() == (out / "bzImage").read_bytes()):
            for argv in kernels.verbs(tree, Role.DOM0):
                demo.xenlfs(*argv)
        demo.xenlfs("kernel", "install", "--src", tree, "--root", root)
    release = (out / "release").read_text().strip()
    return root / "boot" / f"vmlinuz-{release}", release


def xen_gz(root: Path) -> Path:
    """The hypervisor `build xen` installed: boot/xen-VERSION.gz (xen.gz and the others
    are links to it)."""
    node = GuestRoot(root).node("/boot/xen.gz")  # its links followed inside the tree only
    if node.kind != "file" or not node.path.startswith("/boot/") or node.path.count("/") != 2:
        raise PreconditionError(f"{root}/boot/xen.gz is not a link to a file in /boot")
    return root / node.path.lstrip("/")


@dataclass(frozen=True)
class Inputs:
    found: Sources
    dom0_recipe: str
    domu_kernel: Path


# Which dom0 kernel the host boots: "source", the hint's (defconfig + `kernel fix --role
# dom0`, no initramfs); "debian", Debian's 6.1 kernel and initramfs from the reference host's
# base, so that only Xen (hypervisor and tools) and its prerequisites are from source.
DOM0_KINDS = ("source", "debian")


def dom0_input(cache_dir: Path, mirror: str, dom0: str) -> str:
    """What the dom0 kernel is made from: the kernel recipe's key, or the Debian tree's."""
    if dom0 == "source":
        return kernels.recipe_key(kernels.DEBIAN_SOURCE, Role.DOM0)
    if dom0 != "debian":
        raise ValueError(f"dom0 kernel {dom0!r}: one of {DOM0_KINDS}")
    versions = apt.cached_versions(cache.lab_cache(cache_dir))
    return f"debian-{host.base_key(mirror, versions)}"


def cached_inputs(cache_dir: Path, mirror: str = apt.DEFAULT_MIRROR, dom0: str = "source"
                  ) -> tuple[Inputs | None, str]:
    """The inputs if every slow one is cached already (no build, no download): (inputs, '')
    or (None, what is missing)."""
    found = find_sources(cache_dir, download=False)
    if found is None:
        return None, f"the sources are not in {cache_dir}/build/sources"
    domu = kernels.lookup(cache_dir, Role.DOMU)
    if domu is None:
        return None, "the lab's domU kernel is not built"
    return Inputs(found, dom0_input(cache_dir, mirror, dom0), domu / "bzImage"), ""


def target_dir(cache_dir: Path, mirror: str, inputs: Inputs) -> Path:
    key = cache_key(mirror, inputs.found, inputs.dom0_recipe, inputs.domu_kernel)
    return cache.lab_cache(cache_dir) / f"source-host-{key}"


def cached_source_host(cache_dir: Path, mirror: str = apt.DEFAULT_MIRROR, dom0: str = "source"
                       ) -> tuple[host.Host | None, str]:
    """The source-built host if it is built for today's inputs, else (None, why not)."""
    inputs, why = cached_inputs(cache_dir, mirror, dom0)
    if inputs is None:
        return None, why
    target = target_dir(cache_dir, mirror, inputs)
    built = host.finished(target)
    if built is None:
        return None, f"the source-built host for these inputs is not built ({target})"
    return built, ""


def install_debian_kernel(root: Path, cache_dir: Path, mirror: str) -> tuple[Path, Path]:
    """Debian's kernel, its initramfs and modules, as the reference host has them."""
    base = host.base_tree(cache_dir, mirror)
    _, kernel, initrd = host.dom0_files(base)
    for name in (kernel.name, initrd.name, kernel.name.replace("vmlinuz", "System.map"),
                 kernel.name.replace("vmlinuz", "config")):
        run.run(["cp", "-a", base / "boot" / name, root / "boot"], writes=True)
    (root / "lib/modules").mkdir(parents=True, exist_ok=True)
    release = kernel.name.removeprefix("vmlinuz-")
    run.run(["cp", "-a", base / "lib/modules" / release, root / "lib/modules"], writes=True)
    return root / "boot" / kernel.name, root / "boot" / initrd.name


def source_host(cache_dir: Path, mirror: str = apt.DEFAULT_MIRROR, dom0: str = "source"
                ) -> host.Host:
    """The source-built host's tree, built once per cache key and reused."""
    lab_dir = cache.lab_cache(cache_dir)
    found = find_sources(cache_dir, download=True)
    assert found is not None
    inputs = Inputs(found, dom0_input(cache_dir, mirror, dom0),
                    kernels.cached_domu_kernel(cache_dir))
    # One lock per flavour: the source one may wait an hour for its dom0 kernel.
    with cache.locked(lab_dir / f"source-host-{dom0}-lock"):
        target = target_dir(cache_dir, mirror, inputs)
        built = host.finished(target)
        if built is not None:
            log.info("source-built host: cached at %s", target)
            return built
        base = base_tree(cache_dir, mirror)
        log.info("source-built host (%s dom0 kernel): xenlfs's builds and steps on a copy of "
                 "%s into %s", dom0, base, target)
        with cache.building(target) as work:
            root = work / "root"
            run.run(["cp", "-a", base, root], writes=True, timeout=1800)
            host.dress_as_lfs_host(root)
            build_from_source(root, found)
            if dom0 == "debian":
                kernel, initrd = install_debian_kernel(root, cache_dir, mirror)
                host.set_up_with_xenlfs(root, cache_dir, mirror, inputs.domu_kernel,
                                        boot_files=(xen_gz(root), kernel, initrd))
            else:
                (root / "etc/fstab").write_text(FSTAB)
                kernel, _ = install_dom0_kernel(root, cache_dir)
                host.set_up_with_xenlfs(root, cache_dir, mirror, inputs.domu_kernel,
                                        boot_files=(xen_gz(root), kernel, None),
                                        grub_cfg=GRUB_CFG, root_spec=ROOT_DEVICE)
    return host.Host(target / "root", host.ENTRY, host.GUEST)
