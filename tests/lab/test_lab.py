"""The lab boots real Xen with a real dom0, xl works, and a PV guest runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_xenlfs
from xenlfs.lab import images, tiny
from xenlfs.lab.boot import LabBootFailed
from xenlfs.lab.instance import Lab, UpOptions, load, up


def test_dom0_is_xens_control_domain(lab: Lab) -> None:
    info = lab.channel.run(["xl", "info"]).stdout
    assert "xen_major" in info and "virt_caps" in info
    listing = lab.channel.run(["xl", "list"]).stdout.splitlines()
    assert listing[1].split()[:2] == ["Domain-0", "0"]
    assert lab.channel.run(["cat", "/proc/xen/capabilities"]).stdout.strip() == "control_d"


def test_a_pv_guest_boots_and_logs_its_marker(lab: Lab, lab_cache_dir: Path) -> None:
    line, seconds = tiny.boot(lab, lab_cache_dir, name="tiny-test")
    assert line.startswith(tiny.MARKER)
    assert "hypervisor=xen" in line
    assert seconds < 120


def test_channel_returns_status_streams_and_input(lab: Lab) -> None:
    result = lab.channel.run(["sh", "-c", "cat; echo err >&2; exit 5"], input="in\n",
                             check=False)
    assert (result.returncode, result.stdout, result.stderr) == (5, "in\n", "err\n")


def test_files_go_in_and_out(lab: Lab, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(3 << 20))
    lab.channel.push(source, "/root/copied/in.bin")
    lab.channel.pull("/root/copied/in.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()


def test_cli_runs_a_command_in_a_running_lab(lab: Lab) -> None:
    result = run_xenlfs("lab", "run", "--instance", lab.name, "--", "sh", "-c",
                        "xl list | head -2; exit 3")
    assert result.returncode == 3, result.stderr
    assert "Domain-0" in result.stdout


def test_xenlfs_runs_inside_dom0(lab: Lab) -> None:
    env = lab.install_xenlfs()
    result = lab.channel.run(["python3", "-m", "xenlfs", "--version"], env=env)
    assert result.stdout.startswith("xenlfs ")


def test_a_boot_that_times_out_says_why_and_keeps_the_log(
        lab_artefacts: images.Artefacts) -> None:
    options = UpOptions(name=f"pytest-timeout-{os.getpid()}", boot_timeout=3)
    with pytest.raises(LabBootFailed) as caught:
        up(lab_artefacts, options)
    message = str(caught.value)
    assert "dom0 was not ready within 3 s" in message
    assert "full serial log:" in message
    assert caught.value.log_path.is_file()
    assert "boot-timeout" in message
    assert load(options.name) is None  # QEMU was stopped, its state cleared
    shutil.rmtree(caught.value.log_path.parent)


def test_a_disk_image_can_be_attached_to_the_running_dom0(lab: Lab, tmp_path: Path) -> None:
    image = tmp_path / "guest.img"
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    serial = f"t{os.getpid()}"[:20]
    device = lab.attach_disk(image, serial)
    assert device.startswith("/dev/vd")
    lab.channel.run(["mkfs.ext4", "-q", "-F", device], timeout=120)
    with open(image, "rb") as f:
        f.seek(1024 + 0x38)
        assert f.read(2) == b"\x53\xef"  # ext4's superblock magic, written from dom0
