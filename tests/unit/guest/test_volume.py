"""The exact command lines of attaching and detaching a guest's volume, and their undo order,
without root: a recording runner stands in for run.run (kiwi tests its command lines this
way). What needs no root stays real: the image file, the lock, the mount directory,
/proc/self/mountinfo. tests/system/guest runs the same code with the real tools."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from xenlfs import run
from xenlfs.errors import CommandFailed
from xenlfs.guest import inuse, storage, volume
from xenlfs.guest.storage import Layout, MiB

LVM = "--config 'activation{udev_sync=0 udev_rules=0} devices{obtain_device_list_from_udev=0}'"

# What `sfdisk --json` prints for a 64 MiB image with one Linux partition from 1 MiB.
SFDISK_JSON = """{"partitiontable": {"label": "dos", "id": "0x1", "device": "g.img",
  "unit": "sectors", "sectorsize": 512,
  "partitions": [{"node": "g.img1", "start": 2048, "size": 129024, "type": "83"}]}}"""


@dataclass
class Recorder:
    """Records each command line; answers readers from `answers` (by the line's start) and
    fails the first command that starts with a key of `failures`."""

    answers: Mapping[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)

    def __call__(self, argv: Sequence[Any], *, writes: bool = False, check: bool = True,
                 input: Any = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        line = run.command_line(argv)
        self.lines.append(line)
        if writes:
            self.writes.append(line)
        if input is not None:
            self.inputs[line] = input
        for start, stderr in list(self.failures.items()):
            if line.startswith(start):
                del self.failures[start]
                raise CommandFailed(f"{line} failed", argv=[str(a) for a in argv],
                                    returncode=32, stderr=stderr)
        stdout = next((out for start, out in self.answers.items() if line.startswith(start)),
                      "")
        return subprocess.CompletedProcess(list(argv), 0, stdout, "")


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The mount base (the lock and the mount point) in tmp_path instead of /run/xenlfs."""
    monkeypatch.setattr(inuse, "MOUNT_BASE", tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def loop(tmp_path: Path) -> Path:
    """Stands in for /dev/loop7, the device `losetup --find` names (no mknod without root)."""
    path = tmp_path / "loop7"
    path.touch()
    return path


def recording(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Recorder:
    recorder = Recorder(**kwargs)
    monkeypatch.setattr(run, "run", recorder)
    return recorder


def test_a_new_partitioned_image_is_made_attached_formatted_mounted_then_undone(
        tmp_path: Path, base: Path, loop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "g.img"
    runner = recording(monkeypatch, answers={"sfdisk --json": SFDISK_JSON,
                                             "losetup --find": f"{loop}\n"})
    layout = Layout("image", image, create=True, size=64 * MiB, partition_table="dos",
                    mkfs="ext4")
    mnt = base / "guest-g1"
    with volume.attached(layout, "g1") as where:
        assert where == mnt and mnt.is_dir()
        assert image.stat().st_size == 64 * MiB  # sparse, made by xenlfs itself
    assert runner.lines == [
        f"sfdisk --quiet --wipe always --no-reread --no-tell-kernel {image}",
        f"sfdisk --json {image}",
        "losetup --find",
        f"losetup --offset 1048576 --sizelimit 66060288 {loop} {image}",
        f"mkfs.ext4 -F -q -L g1 {loop}",
        f"mount -t ext4 {loop} {mnt}",
        # undone in reverse: unmount, then detach
        f"umount {mnt}",
        f"losetup --detach {loop}",
    ]
    assert runner.inputs == {f"sfdisk --quiet --wipe always --no-reread --no-tell-kernel {image}":
                             "label: dos\nstart=2048, type=L\n"}
    assert runner.writes == [line for line in runner.lines
                             if not line.startswith(("sfdisk --json", "losetup --find"))]
    assert image.exists() and not mnt.exists()


def test_a_failed_run_unmounts_detaches_and_removes_the_image_it_made(
        tmp_path: Path, base: Path, loop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "g.img"
    runner = recording(monkeypatch, answers={"losetup --find": f"{loop}\n"})
    layout = Layout("image", image, create=True, size=8 * MiB, mkfs="ext4")
    mnt = base / "guest-g1"
    with pytest.raises(RuntimeError, match="extraction broke"), \
            volume.attached(layout, "g1"):
        raise RuntimeError("extraction broke")
    assert runner.lines == [
        "losetup --find",
        f"losetup --offset 0 {loop} {image}",
        f"mkfs.ext4 -F -q -L g1 {loop}",
        f"mount -t ext4 {loop} {mnt}",
        f"umount {mnt}",
        f"losetup --detach {loop}",
    ]
    assert not image.exists()  # made by this run: removed last, after the detach


def test_an_existing_image_loses_stale_loops_keeps_its_filesystem_and_is_kept(
        tmp_path: Path, base: Path, loop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "g.img"
    image.write_bytes(b"\0" * MiB)
    runner = recording(monkeypatch, answers={"losetup --associated": "/dev/loop3\n",
                                             "losetup --find": f"{loop}\n"})
    layout = Layout("image", image, fstype="ext3")
    mnt = base / "guest-old"
    with pytest.raises(RuntimeError), volume.attached(layout, "old"):
        raise RuntimeError
    assert runner.lines == [
        f"losetup --associated {image} --output NAME --noheadings",
        "losetup --detach /dev/loop3",
        "losetup --find",
        f"losetup --offset 0 {loop} {image}",
        f"mount -t ext3 {loop} {mnt}",
        f"umount {mnt}",
        f"losetup --detach {loop}",
    ]
    assert image.exists()  # not made by this run: never removed


def test_a_new_logical_volume_is_created_and_removed_again_when_the_run_fails(
        base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = recording(monkeypatch)
    lv = Path("/dev/vg0/g2")
    layout = Layout("lv", lv, create=True, size=2048 * MiB, mkfs="ext4", vg="vg0")
    mnt = base / "guest-g2"
    with pytest.raises(RuntimeError), volume.attached(layout, "g2"):
        raise RuntimeError
    assert runner.lines == [
        f"lvcreate {LVM} --yes --name g2 --size 2048m vg0",
        f"mkfs.ext4 -F -q -L g2 {lv}",
        f"mount -t ext4 {lv} {mnt}",
        f"umount {mnt}",
        f"lvremove {LVM} --yes {lv}",
    ]
    assert runner.writes == runner.lines


def test_a_logical_volume_that_worked_is_unmounted_and_kept(
        base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = recording(monkeypatch)
    lv = Path("/dev/vg0/g2")
    layout = Layout("lv", lv, create=True, size=2048 * MiB, mkfs="ext4", vg="vg0")
    with volume.attached(layout, "g2"):
        pass
    assert runner.lines[-1] == f"umount {base / 'guest-g2'}"
    assert not any(line.startswith("lvremove") for line in runner.lines)


def test_a_failed_mount_is_not_unmounted_but_the_loop_is_detached(
        tmp_path: Path, base: Path, loop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "g.img"
    runner = recording(monkeypatch, answers={"losetup --find": f"{loop}\n"},
                       failures={"mount": "wrong fs type"})
    layout = Layout("image", image, create=True, size=8 * MiB, mkfs="ext4")
    with pytest.raises(CommandFailed, match="mount -t ext4"), volume.attached(layout, "g1"):
        pass
    assert runner.lines[-2:] == [f"mount -t ext4 {loop} {base / 'guest-g1'}",
                                 f"losetup --detach {loop}"]
    assert not image.exists()


def test_a_busy_mount_is_detached_lazily(
        tmp_path: Path, base: Path, loop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = recording(monkeypatch, answers={"losetup --find": f"{loop}\n"},
                       failures={"umount": "target is busy"})
    layout = Layout("image", tmp_path / "g.img", create=True, size=8 * MiB, mkfs="ext4")
    mnt = base / "guest-g1"
    with volume.attached(layout, "g1"):
        pass
    assert runner.lines[-3:] == [f"umount {mnt}", f"umount --lazy {mnt}",
                                 f"losetup --detach {loop}"]


def test_a_loop_taken_meanwhile_is_skipped_for_the_next_free_one(
        tmp_path: Path, loop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "g.img"
    runner = recording(monkeypatch, answers={"losetup --find": f"{loop}\n"},
                       failures={"losetup --offset": "failed to set up loop device: "
                                 "Device or resource busy"})
    assert volume.attach_loop(image, MiB, 4 * MiB) == str(loop)
    attach = f"losetup --offset 1048576 --sizelimit 4194304 {loop} {image}"
    assert runner.lines == ["losetup --find", attach, "losetup --find", attach]


def test_a_directory_target_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = recording(monkeypatch)
    with volume.attached(Layout("dir", tmp_path), "g1") as where:
        assert where == tmp_path
    assert runner.lines == []



def test_the_loops_over_an_existing_image_are_asked_for_once_a_run(
        tmp_path: Path, base: Path, loop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "g.img"
    with open(image, "wb") as f:
        f.truncate(64 * MiB)
    runner = recording(monkeypatch, answers={"losetup --find": f"{loop}\n"})
    layout = storage.decide(storage.Request("g", image, mkfs="ext3"), 0)
    assert layout.loops == ()  # decide() looked: none
    with pytest.raises(RuntimeError), volume.attached(layout, "g"):
        raise RuntimeError
    assert [line for line in runner.lines if line.startswith("losetup --associated")] == [
        f"losetup --associated {image} --output NAME --noheadings"]
    assert f"mkfs.ext3 -F -q -L g {loop}" in runner.lines  # the image was used: attached
