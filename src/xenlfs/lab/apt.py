"""Debian as the lab's source: which package versions apt resolves for the suite, their .debs,
and debootstrap (the dom0 root, the reference LFS-style trees)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xenlfs import run
from xenlfs.errors import PreconditionError
from xenlfs.lab import dom0
from xenlfs.lab.cache import cache_key

DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_LISTS = Path("/var/lib/apt/lists")


@dataclass(frozen=True)
class Versions:
    """The Debian packages the lab is built from, as apt resolves them for the suite."""

    suite: str
    xen_hypervisor: str
    xen_utils: str
    kernel_package: str
    kernel: str


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


def debootstrap(target: Path, suite: str, mirror: str, packages: Sequence[str]) -> None:
    run.run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
             suite, target, mirror], writes=True, timeout=3600,
            hint="debootstrap needs the Debian mirror; set [lab] mirror or --mirror")
