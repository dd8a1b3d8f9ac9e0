from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xenlfs.errors import PreconditionError
from xenlfs.lab import instance
from xenlfs.lab.boot import Disk, LabSpec


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(instance, "runtime_root", lambda: tmp_path)
    return tmp_path


def write_state(runtime: Path, name: str, pid: int) -> instance.Lab:
    spec = LabSpec(xen=Path("/x"), dom0_kernel=Path("/k"), dom0_initrd=Path("/i"),
                   run_dir=runtime / name, disks=(Disk(Path("/d.img"), "d"),))
    spec.run_dir.mkdir(parents=True)
    lab = instance.Lab(name, spec, pid, 0.0, [("xen", 1.0)])
    lab.save()
    return lab


def dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_state_round_trips(runtime: Path) -> None:
    lab = write_state(runtime, "a", 1)
    loaded = instance.load("a")
    assert loaded is not None
    assert loaded.spec == lab.spec and loaded.phases == [("xen", 1.0)]


def test_no_state_is_down(runtime: Path) -> None:
    assert instance.status("nothing")["state"] == "down"
    with pytest.raises(PreconditionError, match="no lab named 'nothing' is up"):
        instance.find("nothing")


def test_a_lab_whose_qemu_is_gone_is_stale(runtime: Path) -> None:
    write_state(runtime, "gone", dead_pid())
    assert instance.status("gone")["state"] == "stale"
    with pytest.raises(PreconditionError, match="stale") as caught:
        instance.find("gone")
    assert "lab down" in str(caught.value)


def test_a_recycled_pid_is_not_our_qemu(runtime: Path) -> None:
    lab = write_state(runtime, "recycled", os.getpid())
    assert not lab.running()
    assert instance.status("recycled")["state"] == "stale"


def test_down_clears_state_and_keeps_logs(runtime: Path) -> None:
    lab = write_state(runtime, "old", dead_pid())
    lab.spec.serial_log.write_text("log")
    instance.down("old")
    assert instance.load("old") is None
    assert lab.spec.serial_log.read_text() == "log"


def test_unreadable_state_is_ignored(runtime: Path) -> None:
    (runtime / "bad").mkdir()
    (runtime / "bad/state.json").write_text(json.dumps({"name": "bad"}))
    assert instance.load("bad") is None


def test_names_are_checked() -> None:
    with pytest.raises(PreconditionError, match="bad lab name"):
        instance.run_dir("../etc")


def test_python_sources_include_xenlfs_and_its_dependencies() -> None:
    names = {p.name for p in instance.python_sources()}
    assert {"xenlfs", "rich"} <= names
