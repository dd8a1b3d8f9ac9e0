"""The dom0 kernel the lab boots: Debian's kernel package (or the user's kernel), as an
uncompressed ELF, with its modules tree for the initramfs to pick from."""

from __future__ import annotations

import logging
import lzma
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

from xenlfs import run
from xenlfs.digest import file_digest
from xenlfs.errors import PreconditionError, UsageError
from xenlfs.lab.apt import Versions, download
from xenlfs.lab.cache import building, cache_key

log = logging.getLogger("xenlfs.lab")


def kernel_dir(cache: Path, versions: Versions) -> Path:
    return cache / f"kernel-{cache_key({'kernel': [versions.kernel_package, versions.kernel]})}"


def kernel_tree(cache: Path, versions: Versions) -> tuple[Path, str]:
    """Debian's kernel package unpacked with its modules indexed: (tree, module version).

    boot/vmlinux-RELEASE is its uncompressed ELF: Xen decompressing a bzImage under TCG
    costs 10-20 s of every boot; loading an ELF costs nothing."""
    target = kernel_dir(cache, versions)
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


def custom_kernel_modules(root: Path, kernel: Path) -> tuple[Path, str]:
    """A user's modules tree (INSTALL_MOD_PATH of modules_install) for their dom0 kernel."""
    releases = sorted(p.name for p in (root / "lib/modules").glob("*") if p.is_dir())
    if len(releases) != 1:
        raise UsageError(f"argument --dom0-modules: {root}/lib/modules must hold exactly one "
                         f"kernel release, found {releases or 'none'}",
                         hint=f"give the INSTALL_MOD_PATH you used for {kernel.name}")
    return root, releases[0]


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
