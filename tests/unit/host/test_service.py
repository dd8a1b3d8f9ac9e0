from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenlfs.errors import PreconditionError
from xenlfs.host import service


def lfs_root(tmp_path: Path) -> Path:
    for d in ["init.d", *(f"rc{n}.d" for n in range(7))]:
        (tmp_path / "etc/rc.d" / d).mkdir(parents=True)
    return tmp_path


def test_script_follows_lfs_bootscript_conventions():
    text = service.render(Path("/usr"))
    assert text.startswith("#!/bin/sh\n")
    assert "### BEGIN INIT INFO" in text and "### END INIT INFO" in text
    assert "# Default-Start:       3 4 5\n" in text
    assert "\n. /lib/lsb/init-functions\n" in text
    for word in ("log_info_msg", "evaluate_retval", "start)", "stop)", "restart)", "status)",
                 "XENSTORED=/usr/sbin/xenstored", "mount -t xenfs xenfs /proc/xen",
                 "XEN_INIT_DOM0=/usr/lib/xen/bin/xen-init-dom0", "modprobe"):
        assert word in text


def test_plan_links_start_and_stop_levels(tmp_path):
    plan = service.plan_install(lfs_root(tmp_path), Path("/usr"))
    names = sorted(str(link.relative_to(tmp_path / "etc/rc.d")) for link, _ in plan.links)
    assert names == ["rc0.d/K15xencommons", "rc1.d/K15xencommons", "rc2.d/K15xencommons",
                     "rc3.d/S25xencommons", "rc4.d/S25xencommons", "rc5.d/S25xencommons",
                     "rc6.d/K15xencommons"]
    assert {target for _, target in plan.links} == {"../init.d/xencommons"}


def test_install_then_nothing_pending(tmp_path):
    plan = service.plan_install(lfs_root(tmp_path), Path("/usr"))
    service.apply_install(plan)
    assert service.pending(plan) == (None, [])
    assert os.access(plan.script, os.X_OK)
    assert (tmp_path / "etc/rc.d/rc3.d/S25xencommons").resolve() == plan.script


def test_a_tree_without_bootscripts_is_refused(tmp_path):
    with pytest.raises(PreconditionError, match="not an LFS bootscript tree"):
        service.plan_install(tmp_path, Path("/usr"))


def fake_proc(tmp_path: Path, caps: str | None, commands: dict[int, str]) -> Path:
    proc = tmp_path / "proc"
    (proc / "xen").mkdir(parents=True)
    if caps is not None:
        (proc / "xen/capabilities").write_text(caps)
    for pid, comm in commands.items():
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "comm").write_text(comm + "\n")
    return proc


def test_status_healthy_dom0(tmp_path):
    checks = service.status(fake_proc(tmp_path, "control_d\n", {10: "xenstored",
                                                                 11: "xenconsoled", 1: "init"}))
    assert [(c.name, c.ok) for c in checks] == [
        ("control_d", True), ("xenstored", True), ("xenconsoled", True)]
    assert checks[1].detail == "running, pid 10"


def test_status_domu_and_no_daemons(tmp_path):
    checks = service.status(fake_proc(tmp_path, "", {1: "init", 2: "oxenstored"}))
    assert [(c.name, c.ok) for c in checks] == [
        ("control_d", False), ("xenstored", True), ("xenconsoled", False)]
    assert "xencommons start" in checks[2].fix
