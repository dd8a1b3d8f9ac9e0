"""Probe the machine for each requirement, and the host facts Xen cares about.

ROOT and PATH are parameters, so the same code checks this machine or a tree under test.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from xenlfs import run
from xenlfs.doctor import guest_types, jail
from xenlfs.doctor.findings import Finding, Status
from xenlfs.doctor.requirements import REQUIREMENTS, Kind, Requirement, at_least

_VERSION = re.compile(r"(?<![\d.])v?(\d+\.\d+(?:\.\d+)*[a-z]?)")
_INCLUDE = ("usr/include", "usr/local/include")
_PC_DIRS = ("usr/lib/pkgconfig", "usr/share/pkgconfig", "usr/lib64/pkgconfig",
            "usr/lib/x86_64-linux-gnu/pkgconfig", "usr/local/lib/pkgconfig")


def _version_of(text: str) -> str:
    match = _VERSION.search(text)
    return match[1] if match else "?"


def _program(req: Requirement, path: str) -> str | None:
    for name in req.probes:
        found = shutil.which(name, path=path)
        if found:
            result = run.run([found, *req.version_args], check=False, timeout=20)
            return f"{found} {_version_of(f'{result.stdout}{result.stderr}')}"
    return None


def _pkg_config_env(root: Path) -> dict[str, str]:
    if root == Path("/"):
        return {}
    return {"PKG_CONFIG_LIBDIR": ":".join(str(root / d) for d in _PC_DIRS),
            "PKG_CONFIG_PATH": "", "PKG_CONFIG_SYSROOT_DIR": str(root)}


def _module(req: Requirement, root: Path, path: str) -> str | None:
    tool = shutil.which("pkg-config", path=path) or shutil.which("pkgconf", path=path)
    if tool is None:
        return None
    for name in req.probes:
        result = run.run([tool, "--modversion", name], check=False, env=_pkg_config_env(root))
        if result.returncode == 0:
            return f"{name} {result.stdout.strip()}"
    return None


def _header(req: Requirement, root: Path) -> tuple[str, str] | None:
    for name in req.probes:
        for include in _INCLUDE:
            header = root / include / name
            if header.is_file():
                text = header.read_text(errors="replace")
                parts = re.findall(r"#\s*define\s+YAJL_(?:MAJOR|MINOR|MICRO)\s+(\d+)", text)
                version = ".".join(parts) if len(parts) == 3 else ""
                return f"/{include}/{name} {version}".rstrip(), text
    return None


def check_requirement(req: Requirement, *, root: Path, path: str, xen_version: str) -> Finding:
    needed = req.needed(xen_version)
    label = "required" if needed else (
        f"optional for Xen ≥ {req.optional_from}" if req.optional_from and req.required
        else "optional")
    found: str | None
    old = False
    if req.kind is Kind.PROGRAM:
        found = _program(req, path)
    elif req.kind is Kind.PKGCONFIG:
        found = _module(req, root, path)
    else:
        header = _header(req, root)
        found = header[0] if header else None
        if header and req.marker and req.marker not in header[1]:
            old = True
            found = f"{found} (older than {req.minimum})"
        elif header and req.minimum:
            found = f"{found} (≥ {req.minimum})"
    if found and req.minimum and req.kind is not Kind.HEADER:
        old = not at_least(found.rsplit(" ", 1)[-1], req.minimum)
    if found is None:
        status = Status.MISSING if needed else Status.ABSENT
    elif old:
        status = Status.OLD if needed else Status.ABSENT
    else:
        status = Status.OK
    fix = "" if status is Status.OK else f"{req.fix} (Debian: {req.debian})"
    return Finding(req.name, status, found or "not found", label, req.why, fix)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def host_checks(root: Path) -> list[Finding]:
    flags = set()
    for line in _read(root / "proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    virt = "Intel VT-x (vmx)" if "vmx" in flags else "AMD-V (svm)" if "svm" in flags else None
    findings = [Finding(
        "CPU virtualisation", Status.OK if virt else Status.WARN, virt or "no vmx/svm flag",
        "for HVM guests only", "HVM guests need VT-x or AMD-V; PV guests (the hint's) do not",
        "" if virt else "enable VT-x/AMD-V in the firmware setup, or run PV guests only")]
    mounts = [line.split()[4] for line in _read(root / "proc/self/mountinfo").splitlines()
              if len(line.split()) > 4]
    boot = "/boot" in mounts
    findings.append(Finding(
        "separate /boot", Status.INFO, "yes" if boot else "no: /boot is on /", "informational",
        "GRUB paths in grub.cfg are relative to the filesystem /boot is on",
        "" if boot else "paths in grub.cfg need the /boot prefix (xenlfs grub add does this)"))
    grub = root / "boot/grub/grub.cfg"
    findings.append(Finding(
        "GRUB config", Status.OK if grub.is_file() else Status.WARN,
        f"/{grub.relative_to(root)}" if grub.is_file() else "no /boot/grub/grub.cfg",
        "to boot Xen", "hint step 4 adds a Xen entry to it",
        "" if grub.is_file() else "LFS book, chapter 10 'Using GRUB to Set Up the Boot Process'"))
    caps = _read(root / "proc/xen/capabilities").strip()
    hypervisor = _read(root / "sys/hypervisor/type").strip()
    if "control_d" in caps:
        xen = "yes, as dom0 (control_d)"
    elif hypervisor == "xen" or (root / "proc/xen").is_dir():
        xen = "yes, as a guest (domU)"
    else:
        xen = "no"
    findings.append(Finding("running under Xen", Status.INFO, xen, "informational",
                            "after step 4 this should say dom0", ""))
    return findings


def doctor(*, root: Path = Path("/"), path: str | None = None,
           xen_version: str = "4.17") -> list[Finding]:
    search = path if path is not None else os.environ.get("PATH", os.defpath)
    found = [check_requirement(r, root=root, path=search, xen_version=xen_version)
             for r in REQUIREMENTS]
    # The jail is this host's kernel and privileges: another system under ROOT is not probed.
    this_host = [jail.finding()] if root == Path("/") else []
    return found + host_checks(root) + this_host + guest_types.findings(root)
