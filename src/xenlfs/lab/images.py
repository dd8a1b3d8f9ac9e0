"""Everything the lab boots, built once and cached: Xen, the dom0 kernel and dom0 initramfs.

Each artefact lives in a cache directory named by a hash of its inputs: the Debian package
versions apt resolves for the suite, the options, the files xenlfs adds and BUILDER_VERSION.
A changed input gives a new key and so a rebuild; a stale cache can never hide a change.
An artefact is built beside its final name and renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import logging
import lzma
import os
import re
import shutil
import stat
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlfs import run, ui
from xenlfs.digest import file_digest
from xenlfs.errors import PreconditionError, UsageError
from xenlfs.lab import dom0

log = logging.getLogger("xenlfs.lab")

# Bump when the way any artefact is built changes: it is part of every cache key.
BUILDER_VERSION = 2
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Versions:
    """The Debian packages the lab is built from, as apt resolves them for the suite."""

    suite: str
    xen_hypervisor: str
    xen_utils: str
    kernel_package: str
    kernel: str


@dataclass(frozen=True)
class Artefacts:
    """What QEMU boots: a multiboot Xen, the dom0 kernel and its initramfs."""

    xen: Path
    dom0_kernel: Path
    dom0_initrd: Path
    description: Mapping[str, Any]


def cache_key(inputs: Mapping[str, Any]) -> str:
    data = {"builder": BUILDER_VERSION, **inputs}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- apt: which versions ------------------------------------------------------------------

def madison_versions(output: str, suite: str) -> dict[str, str]:
    """Package → version that `apt-cache madison` lists for `suite`/main (not -security)."""
    versions: dict[str, str] = {}
    for line in output.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) == 3 and fields[2].split()[1:2] == [f"{suite}/main"]:
            versions.setdefault(fields[0], fields[1])
    return versions


def depends_kernel(show_output: str) -> str | None:
    """The linux-image-<abi>-amd64 package a linux-image-amd64 record depends on."""
    match = re.search(r"^Depends:.*?\b(linux-image-[0-9][^\s,]*)", show_output, re.MULTILINE)
    return match[1] if match else None


def _versions(packages: list[str], suite: str) -> list[str]:
    found = madison_versions(run.run(["apt-cache", "madison", *packages]).stdout, suite)
    for package in packages:
        if package not in found:
            raise PreconditionError(
                f"apt knows no {package} in Debian {suite}/main",
                hint=f"add 'deb {DEFAULT_MIRROR} {suite} main' to /etc/apt/sources.list "
                "and run apt-get update")
    return [found[p] for p in packages]


APT_LISTS = Path("/var/lib/apt/lists")


def apt_lists_stamp(lists: Path = APT_LISTS) -> str:
    """Changes whenever apt-get update changes what apt knows."""
    entries = sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                     for p in lists.glob("*") if p.is_file())
    return cache_key({"apt_lists": entries})


def cached_versions(cache: Path, suite: str = dom0.SUITE) -> Versions:
    """resolve_versions(), remembered until apt's package lists change (apt-cache is slow)."""
    memo = cache / "versions.json"
    stamp = apt_lists_stamp()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads(memo.read_text())
        if data["stamp"] == stamp and data["versions"]["suite"] == suite:
            return Versions(**data["versions"])
    versions = resolve_versions(suite)
    memo.write_text(json.dumps({"stamp": stamp, "versions": vars(versions)}) + "\n")
    return versions


def resolve_versions(suite: str = dom0.SUITE) -> Versions:
    meta, hypervisor, utils = _versions(
        [dom0.KERNEL_META_PACKAGE, dom0.XEN_HYPERVISOR_PACKAGE, dom0.XEN_UTILS_PACKAGE], suite)
    shown = run.run(["apt-cache", "show", f"{dom0.KERNEL_META_PACKAGE}={meta}"]).stdout
    kernel_package = depends_kernel(shown)
    if kernel_package is None:
        raise PreconditionError(f"cannot tell which kernel {dom0.KERNEL_META_PACKAGE} {meta} "
                                "installs", hint="run apt-get update and try again")
    (kernel,) = _versions([kernel_package], suite)
    return Versions(suite, hypervisor, utils, kernel_package, kernel)


def download(package: str, version: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    found = sorted(directory.glob(f"{package}_*.deb"))
    wanted = [p for p in found if p.name.split("_")[1].replace("%3a", ":") == version]
    if wanted:
        return wanted[0]
    run.run(["apt-get", "download", "-q", f"{package}={version}"], cwd=directory, timeout=1800,
            hint="apt-get download needs the Debian mirror; run apt-get update")
    wanted = [p for p in directory.glob(f"{package}_*.deb")
              if p.name.split("_")[1].replace("%3a", ":") == version]
    if not wanted:
        raise PreconditionError(f"apt-get download {package}={version} left no .deb in {directory}")
    return wanted[0]


# --- the cache ------------------------------------------------------------------------------

def lab_cache(cache_dir: Path) -> Path:
    return cache_dir / "lab"


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    """One builder at a time per cache directory."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def building(target: Path) -> Iterator[Path]:
    """A fresh directory beside `target`; renamed onto it when the body succeeds."""
    work = target.with_name(target.name + ".building")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if target.exists():  # an incomplete or older artefact under the same key
        shutil.rmtree(target)
    os.rename(work, target)


def clean(cache_dir: Path) -> int:
    """Remove every cached lab artefact; returns the bytes freed."""
    cache = lab_cache(cache_dir)
    if not cache.exists():
        return 0
    freed = 0
    for path in cache.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                freed += path.lstat().st_size
    if not run.dry_run():
        with locked(cache):
            for entry in cache.iterdir():
                if entry.name == ".lock":
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    return freed


# --- Xen ------------------------------------------------------------------------------------

def xen_image(cache: Path, versions: Versions) -> Path:
    target = cache / f"xen-{cache_key({'xen': versions.xen_hypervisor})}"
    if (target / "xen.elf").is_file():
        return target / "xen.elf"
    deb = download(dom0.XEN_HYPERVISOR_PACKAGE, versions.xen_hypervisor, cache / "downloads")
    with building(target) as work:
        run.run(["dpkg-deb", "-x", deb, work / "deb"])
        gunzip(work / "deb/boot" / f"xen-{dom0.XEN_SERIES}-amd64.gz", work / "xen.elf")
        shutil.rmtree(work / "deb")
    return target / "xen.elf"


def gunzip(source: Path, target: Path) -> None:
    with gzip.open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def user_xen(cache: Path, path: Path) -> Path:
    """A user's Xen: a multiboot ELF as is, or xen.gz gunzipped once into the cache."""
    if not path.is_file():
        raise UsageError(f"argument --xen: {path} is not a file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"\x7fELF":
        return path
    if magic[:2] != b"\x1f\x8b":
        raise UsageError(f"argument --xen: {path} is neither an ELF image nor gzip-compressed",
                         hint="give Xen's xen.gz or its gunzipped multiboot ELF")
    target = cache / f"xen-user-{cache_key({'sha256': file_digest(path)})}"
    if not (target / "xen.elf").is_file():
        with building(target) as work:
            gunzip(path, work / "xen.elf")
    return target / "xen.elf"


# --- the dom0 kernel ------------------------------------------------------------------------

def kernel_tree(cache: Path, versions: Versions) -> tuple[Path, str]:
    """Debian's kernel package unpacked with its modules indexed: (tree, module version).

    boot/vmlinux-RELEASE is its uncompressed ELF: Xen decompressing a bzImage under TCG
    costs 10-20 s of every boot; loading an ELF costs nothing."""
    target = cache / f"kernel-{cache_key({'kernel': [versions.kernel_package, versions.kernel]})}"
    release = versions.kernel_package.removeprefix("linux-image-")
    if not (target / "boot" / f"vmlinux-{release}").is_file():
        deb = download(versions.kernel_package, versions.kernel, cache / "downloads")
        with building(target) as work:
            run.run(["dpkg-deb", "-x", deb, work])
            run.run(["depmod", "-b", work, release])
            elf = vmlinux(work / "boot" / f"vmlinuz-{release}")
            if elf is None:
                raise PreconditionError(f"cannot unpack the ELF kernel from {deb.name}")
            (work / "boot" / f"vmlinux-{release}").write_bytes(elf)
    return target, release


def vmlinux(bzimage: Path) -> bytes | None:
    """The ELF kernel inside a bzImage (xz, gzip or lzma payload), or None."""
    data = bzimage.read_bytes()
    if data[:4] == b"\x7fELF":
        return data
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        return None
    setup_sectors = data[0x1F1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sectors + 1) * 512 + offset
    payload = data[start:start + length]
    try:
        if payload.startswith(b"\xfd7zXZ\x00"):
            elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
        elif payload.startswith(b"\x1f\x8b"):
            elf = zlib.decompressobj(wbits=31).decompress(payload)
        elif payload.startswith(b"\x5d\x00\x00"):
            elf = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(payload)
        else:
            return None
    except (lzma.LZMAError, zlib.error):
        return None
    return elf if elf.startswith(b"\x7fELF") else None


def user_kernel(cache: Path, path: Path) -> Path:
    """A user's dom0 kernel, as its ELF when it can be unpacked (faster boots), else as is."""
    target = cache / f"kernel-user-{cache_key({'sha256': file_digest(path)})}"
    if (target / "vmlinux").is_file():
        return target / "vmlinux"
    elf = vmlinux(path)
    if elf is None:
        log.info("%s: kept compressed (Xen will unpack it at every boot)", path)
        return path
    with building(target) as work:
        (work / "vmlinux").write_bytes(elf)
    return target / "vmlinux"


def module_files(show_depends: str, tree: Path) -> list[str]:
    """Module paths relative to `tree` from `modprobe --show-depends` output; builtins skipped."""
    files = []
    for line in show_depends.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "insmod":
            files.append(os.path.relpath(parts[1], tree))
    return files


def needed_modules(tree: Path, release: str, modules: Sequence[str]) -> list[str]:
    wanted: set[str] = set()
    for module in modules:
        result = run.run(["modprobe", "-d", tree, "-S", release, "--show-depends", module],
                         check=False)
        if result.returncode != 0:
            log.warning("kernel %s has no module %s (built in, or not configured)", release,
                        module)
        wanted.update(module_files(result.stdout, tree))
    return sorted(wanted)


# --- the dom0 root and initramfs ------------------------------------------------------------

def rootfs(cache: Path, versions: Versions, mirror: str, packages: Sequence[str]) -> Path:
    """debootstrap minbase with the toolstack (about a minute), slimmed; cached."""
    inputs = {"suite": versions.suite, "mirror": mirror, "packages": sorted(packages),
              "xen_utils": versions.xen_utils}
    target = cache / f"rootfs-{cache_key(inputs)}"
    if (target / "etc/os-release").exists():
        return target
    with building(target) as work:
        debootstrap(work, versions.suite, mirror, packages)
        got = run.run(["chroot", work, "dpkg-query", "-W", "-f", "${Version}",
                       dom0.XEN_UTILS_PACKAGE], check=False).stdout.strip()
        if got and got != versions.xen_utils:
            log.warning("the mirror gave %s %s, apt's lists say %s: run apt-get update",
                        dom0.XEN_UTILS_PACKAGE, got, versions.xen_utils)
    return target


def debootstrap(target: Path, suite: str, mirror: str, packages: Sequence[str]) -> None:
    run.run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
             suite, target, mirror], writes=True, timeout=3600,
            hint="debootstrap needs the Debian mirror; set [lab] mirror or --mirror")


def busybox() -> Path:
    found = shutil.which("busybox")
    if found is None:
        raise PreconditionError("busybox is not installed (the lab's dom0 and guests use it)",
                                hint="on Debian: apt-get install busybox-static")
    return Path(found)


def overlay_files() -> dict[str, tuple[int, str]]:
    """Files xenlfs adds to the dom0 tree: path → (mode, text)."""
    agent = (Path(__file__).parent / "agent.py").read_text()
    return {"etc/xenlfs/dom0-up": (0o755, dom0.DOM0_UP), "etc/inittab": (0o644, dom0.INITTAB),
            dom0.AGENT_PATH.lstrip("/"): (0o644, agent)}


def cpio(stage: Path, output: Path) -> None:
    """Pack a tree as a newc cpio archive (what the kernel unpacks as its initramfs)."""
    names = ["."]
    for top, dirs, files in os.walk(stage):
        dirs.sort()
        rel = os.path.relpath(top, stage)
        names.extend(os.path.join(".", rel, n) if rel != "." else f"./{n}"
                     for n in sorted(dirs + files))
    run.run(["cpio", "-o", "-H", "newc", "--quiet", "-O", output.resolve()],
            input="\n".join(names) + "\n", cwd=stage, timeout=600)


def slim(stage: Path, exclude: Sequence[str] = dom0.EXCLUDE) -> None:
    """Leave out what a lab dom0 never uses; precompile what its Python imports."""
    for pattern in exclude:
        for path in sorted(stage.glob(pattern), reverse=True):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    # Debian's python3 ships no bytecode; compiling at every boot costs seconds under TCG.
    run.run(["chroot", stage, "python3", "-c", f"import {', '.join(dom0.PYTHON_IMPORTS)}"],
            env={"PYTHONHASHSEED": "0"})


def populate(stage: Path, kernel: tuple[Path, str] | None, modules: Sequence[str],
             exclude: Sequence[str] = dom0.EXCLUDE) -> None:
    slim(stage, exclude)
    if kernel is not None:
        tree, release = kernel
        for relative in needed_modules(tree, release, modules):
            (stage / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(tree / relative, stage / relative)
        for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            if (tree / f"lib/modules/{release}/{name}").exists():
                shutil.copy2(tree / f"lib/modules/{release}/{name}",
                             stage / f"lib/modules/{release}/{name}")
        run.run(["depmod", "-b", stage, release])
    for relative, (mode, text) in overlay_files().items():
        path = stage / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, mode)
    shutil.copy2(busybox(), stage / "bin/busybox")
    (stage / "init").unlink(missing_ok=True)
    os.symlink("/bin/busybox", stage / "init")
    (stage / "dev/console").unlink(missing_ok=True)
    os.mknod(stage / "dev/console", 0o600 | stat.S_IFCHR, os.makedev(5, 1))


def dom0_initrd(cache: Path, root: Path, kernel: tuple[Path, str] | None,
                kernel_id: str, modules: Sequence[str],
                exclude: Sequence[str] = dom0.EXCLUDE) -> Path:
    inputs = {"root": root.name, "kernel": kernel_id, "modules": sorted(modules),
              "overlay": overlay_files(), "busybox": file_digest(busybox()),
              "exclude": list(exclude), "imports": dom0.PYTHON_IMPORTS}
    target = cache / f"dom0-{cache_key(inputs)}"
    if (target / "initrd.cpio").is_file():
        return target / "initrd.cpio"
    with building(target) as work:
        stage = work / "stage"
        run.run(["cp", "-a", root, stage])
        populate(stage, kernel, modules, exclude)
        cpio(stage, work / "initrd.cpio")
        shutil.rmtree(stage)
        (work / "inputs.json").write_text(json.dumps(inputs, indent=2, default=str) + "\n")
    return target / "initrd.cpio"


@dataclass(frozen=True)
class BuildOptions:
    cache_dir: Path
    mirror: str = DEFAULT_MIRROR
    packages: tuple[str, ...] = dom0.PACKAGES
    modules: tuple[str, ...] = dom0.MODULES
    xen: Path | None = None
    dom0_kernel: Path | None = None
    dom0_modules: Path | None = None
    exclude: tuple[str, ...] = dom0.EXCLUDE  # a flavour (lab/hvm.py) keeps more


def custom_kernel_modules(root: Path, kernel: Path) -> tuple[Path, str]:
    """A user's modules tree (INSTALL_MOD_PATH of modules_install) for their dom0 kernel."""
    releases = sorted(p.name for p in (root / "lib/modules").glob("*") if p.is_dir())
    if len(releases) != 1:
        raise UsageError(f"argument --dom0-modules: {root}/lib/modules must hold exactly one "
                         f"kernel release, found {releases or 'none'}",
                         hint=f"give the INSTALL_MOD_PATH you used for {kernel.name}")
    return root, releases[0]


def build(options: BuildOptions, times: ui.StepTimes | None = None) -> Artefacts:
    """Everything the lab boots, from the cache when the inputs have not changed."""
    cache = lab_cache(options.cache_dir)
    with locked(cache):
        with ui.step("resolve Debian package versions", times):
            versions = cached_versions(cache)
        with ui.step("Xen hypervisor", times):
            xen = (user_xen(cache, options.xen) if options.xen
                   else xen_image(cache, versions))
        with ui.step("dom0 kernel", times):
            kernel: tuple[Path, str] | None
            if options.dom0_kernel is not None:
                if not options.dom0_kernel.is_file():
                    raise UsageError(f"argument --dom0-kernel: {options.dom0_kernel} is not a file")
                vmlinuz = user_kernel(cache, options.dom0_kernel)
                kernel = (custom_kernel_modules(options.dom0_modules, vmlinuz)
                          if options.dom0_modules else None)
                kernel_id = file_digest(options.dom0_kernel)
            else:
                kernel = kernel_tree(cache, versions)
                vmlinuz = kernel[0] / "boot" / f"vmlinux-{kernel[1]}"
                kernel_id = f"{versions.kernel_package}={versions.kernel}"
        with ui.step("dom0 root (debootstrap)", times):
            root = rootfs(cache, versions, options.mirror, options.packages)
        with ui.step("dom0 initramfs", times):
            initrd = dom0_initrd(cache, root, kernel, kernel_id, options.modules,
                                 options.exclude)
    description = {"versions": vars(versions), "xen": str(xen), "dom0_kernel": str(vmlinuz),
                   "dom0_initrd": str(initrd), "initrd_bytes": initrd.stat().st_size}
    return Artefacts(xen, vmlinuz, initrd, description)
