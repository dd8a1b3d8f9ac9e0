"""The README's main job: the hint end to end, asserted on what the guest itself reports."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_xenlfs


def host_xl_configs() -> dict[str, float]:
    """This host's /etc/xen: the lab's guest configs belong to its dom0, never here."""
    xen = Path("/etc/xen")
    return {p.name: p.stat().st_mtime for p in xen.iterdir()} if xen.is_dir() else {}


def test_lab_demo_guest_logs_in_and_reports_xen():
    before = host_xl_configs()
    result = run_xenlfs("lab", "demo", "--json", "--instance", f"pytest-demo-{os.getpid()}",
                        "--guest-memory", "256")
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    view = report["guest_view"]
    assert view["hypervisor"] == "xen"
    assert view["root"] == "/dev/root ext4"
    assert view["root_device"] == view["xvda1_device"] == "202:1"
    assert 200 * 1024 <= int(view["memory_kib"]) <= 256 * 1024
    assert report["guest_listed"]["memory"] == 256
    assert report["problems"] == []
    assert host_xl_configs() == before
