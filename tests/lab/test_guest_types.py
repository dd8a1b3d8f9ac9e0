"""Issue 19's acceptance: from the demo's one snapshot, a PVH guest and an HVM guest, each
prepared by `guest prepare --type …`, boot to a login prompt and say what they are."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import run_xenlfs
from tests.lab.test_demo import host_xl_configs


@pytest.mark.parametrize(("kind", "boot_line"), [
    ("pvh", "Xen PVH"),
    ("hvm", "Xen HVM"),
])
def test_guest_of_each_type_logs_in_and_reports_it(kind: str, boot_line: str) -> None:
    before = host_xl_configs()
    result = run_xenlfs("lab", "demo", "--json", "--type", kind, "--instance",
                        f"pytest-{kind}-{os.getpid()}", "--guest", f"{kind}guest",
                        "--guest-memory", "256")
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    view = report["guest_view"]
    assert view["hypervisor"] == "xen"
    assert view["guest_type"] == kind.upper()  # /sys/hypervisor/guest_type
    assert boot_line in view["boot_line"]      # dmesg: "Booting kernel on Xen PVH"
    assert view["root_device"] == view["xvda1_device"] == "202:1"
    assert report["type"] == kind and report["login_seconds"] > 0
    assert report["problems"] == []
    assert host_xl_configs() == before  # the disk was prepared here, its config is dom0's
    assert report["virtualisation"] == "HVM and PVH with HAP"  # the lab's -cpu qemu64,+svm,+npt
