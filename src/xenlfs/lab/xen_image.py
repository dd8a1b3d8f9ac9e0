"""The Xen the lab boots: Debian's hypervisor package's xen.gz, or the user's, unpacked once
into a multiboot ELF (QEMU's -kernel loads Xen as a multiboot ELF, not gzipped)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from xenlfs import run
from xenlfs.digest import file_digest
from xenlfs.errors import UsageError
from xenlfs.lab import dom0
from xenlfs.lab.apt import Versions, download
from xenlfs.lab.cache import building, cache_key


def xen_dir(cache: Path, versions: Versions) -> Path:
    return cache / f"xen-{cache_key({'xen': versions.xen_hypervisor})}"


def xen_image(cache: Path, versions: Versions) -> Path:
    target = xen_dir(cache, versions)
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
