"""`guest list` and `guest top` in a real dom0, read as a script or a log reads them (the
lab's channel gives them pipes): plain text, one domain per line, sizes a user reads."""

from __future__ import annotations

import json
import re

import pytest

from tests.unit.test_output_forms import BOX, assert_plain
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
