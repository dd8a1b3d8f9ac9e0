"""The hint from source, rehearsed: the source-built host (lab/source_host.py: libyajl,
libaio, iasl and Xen's hypervisor and tools built by xenlfs into the host tree, a dom0 kernel
by `kernel fix --role dom0` + build + install with no initramfs, then service install,
bridge setup, grub add and a guest in /etc/xen/auto) boots through `xenlfs rehearse` to the
guest's login, with the xenstored, xenconsoled and xl xenlfs built running its dom0.

Building the host is slow (the Xen build and the dom0 kernel): that test is in the slow tier.
The rehearsal of a host already built for today's inputs runs in the lab tier; without one
it is skipped, saying which input is not built.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.lab.test_rehearse import rehearse, tree_digest
from xenlfs.lab import host, source_host

pytestmark = [pytest.mark.lab]


@pytest.mark.slow
def test_the_source_built_host_is_built_and_cached(lab_cache_dir: Path) -> None:
    built = source_host.source_host(lab_cache_dir)
    again, why = source_host.cached_source_host(lab_cache_dir)
    assert again == built, why
    root = built.root
    # Nothing of Xen, and no kernel, from Debian: dpkg knows no such package in the tree.
    status = (root / "var/lib/dpkg/status").read_text()
    for package in ("xen-utils-4.17", "xen-hypervisor-4.17-amd64", "libyajl2", "libaio1",
                    "linux-image-amd64", "initramfs-tools"):
        assert f"Package: {package}\n" not in status, package
    assert (root / "usr/lib/libyajl.so.2").exists() and (root / "usr/sbin/xl").is_file()
    assert not list((root / "boot").glob("initrd*"))
    # The Xen entry `grub add` wrote loads Xen and the dom0 kernel, and nothing else.
    entry = (root / "boot/grub/grub.cfg").read_text().split("xenlfs-xen", 1)[1]
    entry = entry.split("}", 1)[0]
    assert "/vmlinuz-6.1.192-xen-dom0 " in entry and entry.count("module") == 1, entry


@pytest.fixture(scope="module")
def source_built(lab_cache_dir: Path) -> host.Host:
    found, why = source_host.cached_source_host(lab_cache_dir)
    if found is None:
        pytest.skip(f"no source-built host for today's inputs: {why}; build it with "
                    "pytest -m slow tests/lab/test_source_host.py")
    return found


def test_the_source_built_host_reaches_the_guest_login(source_built: host.Host) -> None:
    before = tree_digest(source_built.root)
    result, data = rehearse(source_built.root)
    assert result.returncode == 0, json.dumps(data.get("failure"), indent=2) + \
        result.stderr[-3000:]
    assert data["ok"] and data["failure"] is None
    keys = [p["phase"] for p in data["phases"]]
    assert keys[:3] == ["grub", "xen", "dom0_load"] and keys[-1] == f"guest:{host.GUEST}"
    assert all(p["status"] in ("passed", "implied") for p in data["phases"])
    seen = {p["phase"] for p in data["phases"] if p["status"] == "passed"}
    # xenstored and xenconsoled started by xencommons, dom0 up, xl listing it, the guest
    # at its login: each seen on the console. The only Xen in the tree is xenlfs's build.
    assert {"grub", "xen", "init", "xencommons", "control_d", "xl",
            f"guest:{host.GUEST}"} <= seen
    assert data["entry"]["kernel"] == "/vmlinuz-6.1.192-xen-dom0", data["entry"]
    assert [b for b in data["bootscripts"] if b["status"] == "FAIL"] == []
    assert tree_digest(source_built.root) == before
    xl = subprocess.run(["chroot", str(source_built.root), "ldd", "/usr/sbin/xl"],
                        capture_output=True, text=True, check=True).stdout
    assert re.search(r"libyajl.so.2 => (/usr)?/lib/libyajl.so.2 ", xl), xl
