"""The doctor on a fake root (headers, .pc files, /proc, /boot as files) and a PATH holding
only what the test puts there; the programs it finds are the real ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from xenlfs.doctor import check
from xenlfs.doctor.findings import Status
from xenlfs.doctor.requirements import REQUIREMENTS


def by_name(findings: list[check.Finding]) -> dict[str, check.Finding]:
    return {f.name: f for f in findings}


def root_with(tmp_path: Path, *, aio_new: bool = True, cpu: str = "fpu vme de",
              boot_mounted: bool = False, caps: str | None = None) -> Path:
    root = tmp_path / "root"
    include = root / "usr/include"
    (include / "yajl").mkdir(parents=True)
    (include / "yajl/yajl_version.h").write_text(
        "#define YAJL_MAJOR 2\n#define YAJL_MINOR 1\n#define YAJL_MICRO 0\n")
    (include / "libaio.h").write_text("extern int io_setup(int, void *);\n"
                                      + ("static inline void io_prep_preadv(void);\n"
                                         if aio_new else ""))
    pc = root / "usr/lib/pkgconfig"
    pc.mkdir(parents=True)
    (pc / "zlib.pc").write_text("Name: zlib\nDescription: z\nVersion: 1.3.1\n")
    (root / "proc").mkdir()
    (root / "proc/cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {cpu}\n")
    mounts = "22 1 8:2 / / rw - ext4 /dev/sda2 rw\n"
    if boot_mounted:
        mounts += "23 22 8:1 / /boot rw - ext4 /dev/sda1 rw\n"
    (root / "proc/self").mkdir()
    (root / "proc/self/mountinfo").write_text(mounts)
    if caps is not None:
        (root / "proc/xen").mkdir()
        (root / "proc/xen/capabilities").write_text(caps)
    return root


def path_with(tmp_path: Path, *programs: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in programs:
        real = shutil.which(name)
        if real is None:
            pytest.skip(f"needs {name}")
        (bin_dir / name).symlink_to(real)
    return str(bin_dir)


def test_an_empty_path_misses_every_required_program(tmp_path: Path) -> None:
    found = by_name(check.doctor(root=root_with(tmp_path), path=str(tmp_path)))
    assert found["make"].status is Status.MISSING
    assert found["make"].fix == "LFS book, chapter 8 'Make' (Debian: make)"
    # Without iasl: the build, where upstream's tarballs are if Debian's source is not, and
    # Debian's binary package.
    iasl = found["iasl"].fix
    assert iasl.startswith("xenlfs build acpica (from Debian's acpica-unix source, or "
                           "--source TARBALL: acpica-unix-YYYYMMDD.tar.gz from "
                           "https://github.com/acpica/acpica/releases"), iasl
    assert iasl.endswith(" (Debian: acpica-tools)"), iasl
    assert found["CMake"].status is Status.ABSENT and found["CMake"].needed == "optional"
    assert found["bcc (dev86)"].status is Status.ABSENT      # not needed by Xen 4.17
    assert all(found[r.name].problem for r in REQUIREMENTS
               if r.kind == "program" and r.needed("4.17"))


def test_dev86_is_required_for_the_hints_xen(tmp_path: Path) -> None:
    found = by_name(check.doctor(root=root_with(tmp_path), path=str(tmp_path),
                                 xen_version="4.9"))
    assert found["bcc (dev86)"].status is Status.MISSING
    assert found["bcc (dev86)"].fix == "xenlfs build dev86 (Debian: bcc)"


def test_real_programs_with_their_versions(tmp_path: Path) -> None:
    path = path_with(tmp_path, "make", "pkg-config")
    found = by_name(check.doctor(root=root_with(tmp_path), path=path))
    version = subprocess.run(["make", "--version"], capture_output=True, text=True).stdout
    assert found["make"].status is Status.OK
    assert found["make"].found == f"{tmp_path}/bin/make {version.split()[2]}"
    assert found["zlib"].status is Status.OK and found["zlib"].found == "zlib 1.3.1"
    assert found["GLib"].status is Status.MISSING        # no glib-2.0.pc under the root


def test_headers_and_the_libaio_minimum(tmp_path: Path) -> None:
    found = by_name(check.doctor(root=root_with(tmp_path), path=str(tmp_path)))
    assert found["libyajl"].status is Status.OK
    assert found["libyajl"].found == "/usr/include/yajl/yajl_version.h 2.1.0"
    assert found["libaio"].status is Status.OK and "≥ 0.3.107" in found["libaio"].found
    old = by_name(check.doctor(root=root_with(tmp_path / "old", aio_new=False),
                               path=str(tmp_path)))
    assert old["libaio"].status is Status.OLD and old["libaio"].problem
    assert "older than 0.3.107" in old["libaio"].found


def test_host_checks(tmp_path: Path) -> None:
    plain = by_name(check.host_checks(root_with(tmp_path)))
    assert plain["CPU virtualisation"].status is Status.WARN
    assert "PV guests" in plain["CPU virtualisation"].why
    assert plain["CPU virtualisation"].needed == "for HVM guests only"
    assert plain["separate /boot"].found == "no: /boot is on /"
    assert plain["GRUB config"].status is Status.WARN
    assert plain["running under Xen"].found == "no"
    root = root_with(tmp_path / "b", cpu="fpu vmx sse", boot_mounted=True, caps="control_d\n")
    (root / "boot/grub").mkdir(parents=True)
    (root / "boot/grub/grub.cfg").write_text("set timeout=5\n")
    xen = by_name(check.host_checks(root))
    assert xen["CPU virtualisation"].found == "Intel VT-x (vmx)"
    assert xen["separate /boot"].found == "yes"
    assert xen["GRUB config"].status is Status.OK
    assert xen["running under Xen"].found == "yes, as dom0 (control_d)"
    assert not any(f.problem for f in xen.values())


def test_cli_json_and_exit_code(tmp_path: Path, xenlfs) -> None:
    root = root_with(tmp_path)
    result = xenlfs("doctor", "--root", str(root), "--json",
                    env={"PATH": path_with(tmp_path, "make") + os.pathsep + "/nonexistent"})
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    rows = {f["name"]: f for f in report["findings"]}
    assert rows["make"]["status"] == "ok" and rows["C compiler"]["problem"] is True
    table = xenlfs("doctor", "--root", str(root), env={"PATH": str(tmp_path / "bin"),
                                                        "COLUMNS": "200"})
    assert table.returncode == 1
    assert "xenlfs build acpica" in table.stdout and "required prerequisite(s) missing" in \
        table.stdout
