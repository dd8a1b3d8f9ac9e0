"""`xenlfs doctor` on this machine: a real Debian package installed and removed again changes
its row; the machine's package state is restored at the end."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

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
