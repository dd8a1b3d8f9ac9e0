"""`doctor`'s guest types on fixture roots: the CPU flags outside Xen, `xl info` in dom0."""

from __future__ import annotations

from pathlib import Path

from xenlfs.doctor import guest_types
from xenlfs.doctor.findings import Status

# `xl info` in the lab's dom0 (Xen 4.17 under QEMU TCG, -cpu qemu64: AMD-V, no NPT) ...
XL_INFO_SHADOW = """host                   : dom0
virt_caps              : pv hvm shadow gnttab-v1 gnttab-v2
xen_caps               : xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64
"""
# ... and as it would read without AMD-V/VT-x.
XL_INFO_PV_ONLY = """xen_caps               : xen-3.0-x86_64
virt_caps              : pv pv_directio gnttab-v1 gnttab-v2
"""


def root_with(tmp_path: Path, flags: str, *, qemu: bool = True) -> Path:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(f"processor\t: 0\nflags\t\t: fpu {flags}\n")
    if qemu:
        for rel in ("usr/lib/xen-4.17/bin/qemu-system-i386", "usr/lib/xen-4.17/boot/hvmloader"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_bytes(b"")
    return tmp_path


def by_name(found: list) -> dict[str, object]:
    return {f.name.removeprefix("guest type "): f for f in found}


def test_no_vmx_or_svm_means_pv_only(tmp_path: Path) -> None:
    found = by_name(guest_types.findings(root_with(tmp_path, "sse2 lm")))
    assert found["PV"].status is Status.OK
    for kind in ("PVH", "HVM"):
        assert found[kind].status is Status.WARN and "no vmx/svm" in found[kind].found
        assert "VT-x/AMD-V" in found[kind].fix
    assert not any(f.problem for f in found.values())  # never fails the doctor


def test_svm_with_npt_and_a_device_model(tmp_path: Path) -> None:
    found = by_name(guest_types.findings(root_with(tmp_path, "svm npt lm")))
    assert found["PVH"].status is found["HVM"].status is Status.OK
    assert "AMD-V (svm), HAP" in found["HVM"].found
    assert "qemu-system-i386" in found["HVM"].found


def test_hvm_without_qemu_says_what_to_install(tmp_path: Path) -> None:
    found = by_name(guest_types.findings(root_with(tmp_path, "vmx", qemu=False)))
    assert found["PVH"].status is Status.OK
    assert found["HVM"].status is Status.WARN
    assert "no qemu device model and no hvmloader" in found["HVM"].found
    assert "qemu-system-xen" in found["HVM"].fix


def test_in_dom0_xl_info_decides(tmp_path: Path) -> None:
    root = root_with(tmp_path, "lm")  # Xen hides vmx/svm from dom0's cpuinfo
    found = by_name(guest_types.findings(root, XL_INFO_SHADOW))
    assert found["HVM"].status is Status.OK and "shadow paging" in found["HVM"].found
    found = by_name(guest_types.findings(root, XL_INFO_PV_ONLY))
    assert found["PVH"].status is Status.WARN
    assert "no hvm in virt_caps (pv pv_directio" in found["PVH"].found
