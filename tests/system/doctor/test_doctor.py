"""`xenlfs doctor` on this machine: a real Debian package installed and removed again changes
its row; the machine's package state is restored at the end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600"]
PACKAGE = "libyajl-dev"


def installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package],
                            capture_output=True, text=True, check=False)
    return result.stdout.endswith(" installed")


def apt(*args: str) -> None:
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run([*APT, *args], check=True, capture_output=True, env=env)


@pytest.fixture
def restore_package() -> Iterator[None]:
    was = installed(PACKAGE)
    yield
    if was and not installed(PACKAGE):
        apt("install", "--no-install-recommends", PACKAGE)
    elif not was and installed(PACKAGE):
        apt("remove", PACKAGE)


def rows(xenlfs) -> tuple[int, dict[str, dict[str, object]]]:
    result = xenlfs("doctor", "--json")
    report = json.loads(result.stdout)
    assert report["ok"] is (result.returncode == 0)
    return result.returncode, {f["name"]: f for f in report["findings"]}


def test_installing_and_removing_libyajl_dev_flips_its_row(xenlfs, restore_package) -> None:
    if installed(PACKAGE):
        apt("remove", PACKAGE)
    code, before = rows(xenlfs)
    assert before["libyajl"]["status"] == "missing" and before["libyajl"]["problem"]
    assert "xenlfs build yajl" in str(before["libyajl"]["fix"])
    assert code == 1
    apt("install", "--no-install-recommends", PACKAGE)
    _, after = rows(xenlfs)
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", PACKAGE],
                             capture_output=True, text=True, check=True).stdout
    upstream = version.split("-")[0].split(":")[-1]
    assert after["libyajl"]["status"] == "ok"
    assert after["libyajl"]["found"] == f"/usr/include/yajl/yajl_version.h {upstream}"
    apt("remove", PACKAGE)
    _, removed = rows(xenlfs)
    assert removed["libyajl"]["status"] == "missing"


def test_programs_are_found_with_their_real_versions(xenlfs) -> None:
    _, found = rows(xenlfs)
    gcc = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert found["C compiler"]["status"] == "ok"
    assert found["C compiler"]["found"] == f"{shutil.which('gcc')} {gcc}"
    zlib = subprocess.run(["pkg-config", "--modversion", "zlib"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert found["zlib"]["found"] == f"zlib {zlib}"
    cpu = Path("/proc/cpuinfo").read_text()
    expect_virt = " vmx" in cpu or " svm" in cpu
    assert (found["CPU virtualisation"]["status"] == "ok") is expect_virt


def test_the_extraction_jail_is_made_for_real_and_fails_without_cap_sys_admin(xenlfs) -> None:
    _, found = rows(xenlfs)
    jail = found["extraction jail"]
    assert jail["status"] == "ok" and not jail["problem"]
    # A container's root without CAP_SYS_ADMIN: the same jail cannot be made, and doctor
    # says so with the reason unshare gave and what to do, and exits 1.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "XDG_CONFIG_HOME": "/nonexistent"}
    result = subprocess.run(["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin",
                             sys.executable, "-m", "xenlfs", "doctor", "--json"],
                            capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 1, result.stderr
    jail = {f["name"]: f for f in json.loads(result.stdout)["findings"]}["extraction jail"]
    assert jail["status"] == "missing" and jail["problem"]
    assert jail["found"] == "does not work: unshare: unshare failed: Operation not permitted"
    assert "CAP_SYS_ADMIN" in jail["fix"]


def test_another_systems_root_gets_no_jail_row(xenlfs, tmp_path: Path) -> None:
    result = xenlfs("doctor", "--json", "--root", str(tmp_path))
    names = [f["name"] for f in json.loads(result.stdout)["findings"]]
    assert "extraction jail" not in names and "C compiler" in names
