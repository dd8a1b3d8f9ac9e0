"""Which guest types this host can run: PV always; PVH and HVM need hardware virtualisation
(Intel VT-x or AMD-V), and HVM also a device model (Xen's qemu) and hvmloader.

Outside Xen the CPU flags tell (vmx/svm; ept/npt for hardware-assisted paging). In dom0 Xen
hides those flags, so `xl info` is asked instead: its virt_caps ("hvm", "hap", "shadow") and
xen_caps ("hvm-3.0-x86_64") are what Xen itself will offer guests.
"""

from __future__ import annotations

import re
from pathlib import Path

from xenlfs import run
from xenlfs.doctor.findings import Finding, Status

DEVICE_MODELS = ("usr/lib/xen-*/bin/qemu-system-i386", "usr/libexec/xen-qemu-system-i386",
                 "usr/lib/xen/bin/qemu-system-i386", "usr/bin/qemu-system-i386")
HVMLOADERS = ("usr/lib/xen-*/boot/hvmloader", "usr/lib/xen/boot/hvmloader",
              "usr/libexec/xen/boot/hvmloader")
ENABLE = ("enable VT-x/AMD-V in the firmware setup (nested: give this machine the flag, "
          "e.g. QEMU -cpu …,+svm)")


def xl_info_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _cpu_flags(root: Path) -> set[str]:
    flags: set[str] = set()
    try:
        text = (root / "proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return flags
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return flags


def _in_dom0(root: Path) -> bool:
    try:
        return "control_d" in (root / "proc/xen/capabilities").read_text()
    except OSError:
        return False


def hardware(root: Path, xl_info: str | None) -> tuple[bool, str]:
    """(can run hardware-virtualised guests, what says so)."""
    if xl_info is not None:
        fields = xl_info_fields(xl_info)
        virt, caps = fields.get("virt_caps", "").split(), fields.get("xen_caps", "")
        if "hvm" in virt or re.search(r"\bhvm-", caps):
            paging = "HAP" if "hap" in virt else "shadow paging"
            return True, f"xl info: hvm in virt_caps/xen_caps ({paging})"
        return False, (f"xl info: no hvm in virt_caps ({' '.join(virt) or 'empty'}) or "
                       f"xen_caps ({caps or 'empty'})")
    flags = _cpu_flags(root)
    cpu = "Intel VT-x (vmx)" if "vmx" in flags else "AMD-V (svm)" if "svm" in flags else None
    if cpu is None:
        return False, "the CPU shows no vmx/svm flag"
    paging = "HAP (ept/npt)" if flags & {"ept", "npt"} else "shadow paging (no ept/npt)"
    return True, f"{cpu}, {paging}"


def _found(root: Path, patterns: tuple[str, ...]) -> Path | None:
    for pattern in patterns:
        hits = sorted(root.glob(pattern))
        if hits:
            return hits[-1]
    return None


def findings(root: Path = Path("/"), xl_info: str | None = None) -> list[Finding]:
    """One finding per guest type; xl_info is asked of xl in dom0 when not given."""
    if xl_info is None and root == Path("/") and _in_dom0(root):
        result = run.run(["xl", "info"], check=False)
        xl_info = result.stdout if result.returncode == 0 else None
    hvm, evidence = hardware(root, xl_info)
    out = [Finding("guest type PV", Status.OK, "always", "the hint's guests",
                   "Xen runs PV guests on any x86-64 CPU, no VT-x/AMD-V needed", "")]
    status = Status.OK if hvm else Status.WARN
    out.append(Finding("guest type PVH", status, evidence, "guest prepare --type pvh",
                       "PVH guests run in hardware virtualisation (no device model)",
                       "" if hvm else ENABLE + "; or run PV guests"))
    model, loader = _found(root, DEVICE_MODELS), _found(root, HVMLOADERS)
    missing = [what for what, path in (("qemu device model", model),
                                       ("hvmloader", loader)) if path is None]
    if hvm and not missing:
        found = f"{evidence}; device model /{model.relative_to(root)}" if model else evidence
    else:
        found = evidence if not hvm else f"{evidence}; no {' and no '.join(missing)}"
    fix = ENABLE if not hvm else ("" if not missing else "install Xen's tools with qemu-xen "
                                  "(Debian: apt-get install qemu-system-xen seabios)")
    out.append(Finding("guest type HVM", Status.OK if hvm and not missing else Status.WARN,
                       found, "guest prepare --type hvm",
                       "an emulated PC: hardware virtualisation, qemu in dom0, hvmloader", fix))
    return out
