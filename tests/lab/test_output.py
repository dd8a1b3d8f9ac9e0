"""`guest list` and `guest top` in a real dom0, read as a script or a log reads them (the
lab's channel gives them pipes): plain text, one domain per line, sizes a user reads."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.unit.test_output_forms import BOX, assert_plain, piped
from xenlfs.lab.instance import Lab


@pytest.mark.parametrize("verb", ["list", "top"])
def test_guest_list_and_top_piped_in_dom0(lab: Lab, verb: str):
    env = lab.install_xenlfs()
    run = ["python3", "-m", "xenlfs", "guest", verb]
    rows = json.loads(lab.channel.run([*run, "--json"], env=env).stdout)
    result = lab.channel.run(run, env=env, check=False)
    assert result.returncode == 0, result.stderr
    lines = assert_plain(result.stdout)
    assert not BOX.search(result.stdout)
    assert lines[0].split()[:2] == ["name", "id" if verb == "list" else "cpu"]
    assert len(lines) == 1 + len(rows)
    [dom0] = [line for line in lines if line.startswith("Domain-0 ")]
    assert re.search(r"  \d+(\.\d+)? (MiB|GiB)  ", dom0), dom0


def test_lab_status_of_a_running_lab_piped(lab: Lab):
    report = json.loads(piped("lab", "status", "--instance", lab.name, "--json").stdout)
    result = piped("lab", "status", "--instance", lab.name)
    assert result.returncode == 0, result.stderr
    lines = assert_plain(result.stdout)
    assert lines[0] == f"lab {lab.name!r}: up"
    assert re.fullmatch(rf"pid +{report['pid']}", lines[1])
    assert re.fullmatch(r"dom0_uptime +\d+(\.\d s| min \d\d s| h \d\d min)", lines[2]), lines
    assert re.fullmatch(rf"hvm +{re.escape(report['hvm'])}", lines[3])  # what Xen offers guests
    assert re.fullmatch(rf"serial_log +{re.escape(report['serial_log'])}", lines[4])


def test_lab_demo_report_piped():
    """The demo's closing report as a CI log has it (the demo's steps go to stderr)."""
    result = piped("lab", "demo", "--instance", f"pytest-demo-plain-{os.getpid()}",
                   "--guest-memory", "256")
    assert result.returncode == 0, result.stderr[-4000:]
    lines = assert_plain(result.stdout)
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    assert re.search(r"^    step 6: xenlfs guest create .* done in ", result.stderr, re.M)
    assert "What the guest reports about itself:" in lines
    assert re.fullmatch(r"hypervisor +xen", lines[lines.index("What the guest reports about "
                                                              "itself:") + 1])
    listed = lines.index("xenlfs guest list (in dom0):")
    assert re.fullmatch(r"xenguest1 +\d+ +256 MiB", lines[listed + 2])
    steps = lines.index("Steps:")
    assert lines[steps + 1].split() == ["step", "time"]
    assert re.fullmatch(r"step 0: snapshot the reference LFS root +\d+(\.\d s| min \d\d s)",
                        lines[steps + 2])
    assert lines[-1].startswith("The PV guest booted under Xen")
