"""Ganeti 3.0's own code (Debian's ganeti-3.0) discovers, validates and runs the provider
`xenlfs ganeti install-os` writes: DiagnoseOS and ValidateOS accept it (and run verify),
InstanceOsAdd and RunRenameInstance run create and rename with the environment OSEnvironment
builds, and the import/export commands Ganeti's transfer daemon runs move a guest's root
from one real disk (an image file, a loop device) to another."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.ganeti.conftest import Node
from tests.system.guest.conftest import loop_over, sh
from xenlfs.lab import ganeti
from xenlfs.snapshot import excludes as ex
from xenlfs.snapshot import verify

GOOD = {"ip": "10.7.0.20/24", "gateway": "10.7.0.1", "root_password_hash": "$6$salt$hash"}


PARTITION = 1 << 20  # where xenlfs's one partition starts (root_path /dev/xvda1)


@contextlib.contextmanager
def mounted(device: Path | str, *, read_only: bool = True,
            offset: int = PARTITION) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="xenlfs-gnt-mnt-") as mnt:
        options = ["ro"] if read_only else []
        if Path(device).is_file() or offset:
            options += ["loop", f"offset={offset}"]
        sh("mount", *(["-o", ",".join(options)] if options else []), device, mnt)
        try:
            yield Path(mnt)
        finally:
            sh("umount", mnt)


def disk_image(node: Node, name: str, size_mib: int = 256) -> Path:
    path = node.root / "disks" / name
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    return path


def test_ganeti_discovers_the_provider_and_its_variants(node: Node) -> None:
    (row,) = node.ganeti("diagnose")["oses"]
    name, path, valid, diagnose, variants, parameters, api_versions, trusted = row
    assert (name, path, valid, diagnose) == ("xenlfs", str(node.provider), True, "")
    assert variants == [node.variant] and node.variant.startswith("lfs-12.2-xen-")
    assert [p[0] for p in parameters] == ["hostname", "ip", "gateway", "root_password_hash",
                                          "ssh_key", "swap"]
    assert api_versions == [20] and trusted


def test_ganeti_refuses_a_provider_script_it_cannot_run(node: Node) -> None:
    (node.provider / "rename").chmod(0o644)
    (row,) = node.ganeti("diagnose")["oses"]
    assert row[2] is False and "'rename'" in row[3] and "not executable" in row[3]


def test_validate_runs_verify_and_refuses_bad_parameters(node: Node) -> None:
    assert node.ganeti("validate", osparams=GOOD) == {"valid": True}
    bad = node.ganeti("validate", osparams={**GOOD, "hostname": "no_underscores"})
    assert bad["type"] == "RPCFail"
    assert "OS validation script failed" in bad["error"]
    assert "parameter hostname='no_underscores'" in bad["error"]
    unknown = node.ganeti("validate", osparams={"colour": "blue"})
    assert "not supported by the OS xenlfs: colour" in unknown["error"]
    wrong = node.ganeti("validate", os="xenlfs+nope", osparams={})
    assert "does not support variant 'nope'" in wrong["error"]


def test_create_and_rename_on_a_file_disk(node: Node) -> None:
    disk = disk_image(node, "web1-disk0")
    spec = {"name": "web1.example.org", "disk_kind": "file", "disk": str(disk),
            "osparams": GOOD}
    env = node.ganeti("env", **spec)["env"]
    assert env["DISK_0_PATH"] == str(disk) and env["DISK_0_BACKEND_TYPE"] == "file:loop"
    assert env["OS_VARIANT"] == node.variant and env["OSP_IP"] == "10.7.0.20/24"
    assert node.ganeti("add", **spec) == {"ok": True}
    # Ganeti's default root_path is /dev/xvda1: disk 0 gets a table with one partition.
    table = sh("sfdisk", "--dump", disk).stdout
    assert "start=        2048" in table and "type=83" in table
    with mounted(disk) as root:
        assert (root / "etc/hostname").read_text() == "web1\n"
        assert "127.0.1.1      web1" in (root / "etc/hosts").read_text()
        assert "lfs-host" not in (root / "etc/hosts").read_text()
        fstab = [line.split() for line in (root / "etc/fstab").read_text().splitlines()]
        assert ["/dev/xvda1", "/"] in [fields[:2] for fields in fstab]
        ifconfig = (root / "etc/sysconfig/ifconfig.eth0").read_text()
        assert "IP=10.7.0.20" in ifconfig and "GATEWAY=10.7.0.1" in ifconfig
        assert (root / "etc/shadow").read_text().startswith("root:$6$salt$hash:")
        assert (root / "dev/console").is_char_device()
    renamed = {**spec, "name": "shop.example.org"}
    assert node.ganeti("rename", old_name="web1.example.org", **renamed) == {"ok": True}
    with mounted(disk) as root:
        assert (root / "etc/hostname").read_text() == "shop\n"
        assert "127.0.1.1      shop" in (root / "etc/hosts").read_text()
        assert "web1" not in (root / "etc/hosts").read_text()
    # Reinstall: Ganeti runs create again over the guest's filesystem.
    with mounted(disk, read_only=False) as root:
        (root / "root/left-behind").write_text("old")
    assert node.ganeti("add", reinstall=True, **renamed) == {"ok": True}
    with mounted(disk) as root:
        assert not (root / "root/left-behind").exists()
        assert (root / "etc/hostname").read_text() == "shop\n"


def test_create_failure_reaches_the_user_through_ganeti(node: Node) -> None:
    (node.root / "snaps" / "LFS 12.2+xen.tar.zst").unlink()
    disk = disk_image(node, "web2-disk0")
    failed = node.ganeti("add", name="web2.example.org", disk_kind="file", disk=str(disk))
    assert "OS create script failed" in failed["error"]
    assert f"xenlfs: error: variant {node.variant}: its snapshot" in failed["error"]
    assert "hint: write the provider again: xenlfs ganeti install-os" in failed["error"]


@pytest.mark.parametrize("root_path", ["/dev/xvda1", "/dev/xvda"])
def test_export_then_import_on_loop_devices_gives_the_same_tree(node: Node,
                                                                 root_path: str) -> None:
    first, second = disk_image(node, "db-disk0"), disk_image(node, "db2-disk0")
    stream = node.root / "db.stream"
    offset = PARTITION if root_path.endswith("1") else 0
    with loop_over(first) as dev1, loop_over(second) as dev2:
        spec = {"name": "db.example.org", "disk_kind": "block", "osparams": GOOD,
                "hvparams": {"root_path": root_path}}
        assert node.ganeti("env", disk=dev1, **spec)["env"]["DISK_0_BACKEND_TYPE"] == "block"
        assert node.ganeti("add", disk=dev1, **spec) == {"ok": True}
        exported = node.ganeti("export", disk=dev1, stream=str(stream), **spec)
        assert exported["returncode"] == 0, exported["stderr"]
        assert exported["env"]["EXPORT_DEVICE"] == dev1
        assert stream.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd, as snapshots are
        imported = node.ganeti("import", disk=dev2, stream=str(stream), **spec)
        assert imported["returncode"] == 0, imported["stderr"]
        assert imported["env"]["IMPORT_DEVICE"] == dev2
        skip = [ex.Exclude("/lost+found", False, "lost+found").pattern]
        with mounted(dev1, offset=offset) as one, mounted(dev2, offset=offset) as two:
            before, after = verify.scan(one, skip), verify.scan(two, skip)
            assert len(before) > 20
            differences = verify.compare(before, after)
            assert differences.none, differences.to_json()
        # A stream cut short is refused, and said so in the import's output.
        stream.write_bytes(stream.read_bytes()[:300])
        cut = node.ganeti("import", disk=dev2, stream=str(stream), **spec)
        assert cut["returncode"] != 0 and "xenlfs: error:" in cut["stderr"]
    assert subprocess.run(["losetup", "--associated", first], capture_output=True,
                          text=True).stdout == ""


def test_export_refuses_a_disk_in_use_and_import_refuses_garbage(node: Node) -> None:
    disk, other = disk_image(node, "busy-disk0"), disk_image(node, "busy2-disk0")
    spec = {"name": "busy.example.org", "disk_kind": "file"}
    assert node.ganeti("add", disk=str(disk), **spec) == {"ok": True}
    stream = node.root / "busy.stream"
    with mounted(disk):
        busy = node.ganeti("export", disk=str(disk), stream=str(stream), **spec)
    assert busy["returncode"] != 0
    assert "xenlfs: error:" in busy["stderr"] and "mounted" in busy["stderr"]
    stream.write_bytes(b"\0" * 4096)
    garbage = node.ganeti("import", disk=str(other), stream=str(stream), **spec)
    assert garbage["returncode"] != 0
    assert "xenlfs: error: the input is not a tar archive" in garbage["stderr"]
    # Nothing was formatted: the disk is still all zeros.
    with open(other, "rb") as f:
        assert f.read(1 << 16) == bytes(1 << 16)


def test_reinstall_follows_a_changed_root_path(node: Node) -> None:
    disk = disk_image(node, "mover-disk0")
    spec = {"name": "mover.example.org", "disk_kind": "file", "disk": str(disk)}
    assert node.ganeti("add", **spec) == {"ok": True}
    assert "type=83" in sh("sfdisk", "--dump", disk).stdout
    whole = {**spec, "hvparams": {"root_path": "/dev/xvda"}}
    assert node.ganeti("add", reinstall=True, **whole) == {"ok": True}
    assert subprocess.run(["sfdisk", "--dump", disk], capture_output=True).returncode != 0
    with mounted(disk, offset=0) as root:
        fstab = [line.split()[:2] for line in (root / "etc/fstab").read_text().splitlines()]
        assert ["/dev/xvda", "/"] in fstab
    # Renaming with root_path back at xvda1 is refused: the disk has no partition.
    wrong = node.ganeti("rename", old_name="mover.example.org", **spec)
    assert "has no partition" in wrong["error"] or "no partition table" in wrong["error"]
    bad = node.ganeti("add", reinstall=True, **{**spec, "hvparams": {"root_path": "/dev/xvdb"}})
    assert "root_path '/dev/xvdb'" in bad["error"]


def test_verify_names_a_tool_the_node_lacks(node: Node) -> None:
    # Ganeti's PATH for OS scripts is fixed; a node without zstd is told so before any disk
    # is made (seen in the lab: dom0 had no zstd).
    env = {"OS_VARIANT": node.variant, "PATH": str(node.root / "bin")}
    (node.root / "bin").mkdir()
    for tool in ("tar", "mkfs.ext4", "sfdisk", "wipefs", "losetup", "blkid", "mount", "umount"):
        (node.root / "bin" / tool).symlink_to(shutil.which(tool) or "/nonexistent")
    done = subprocess.run([str(node.provider / "verify"), "parameters"], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("xenlfs: error: zstd is not installed on this node — ")
    assert "apt-get install zstd" in line


def test_the_labs_timeout_script_finds_its_lines_in_debians_ganeti(ganeti_code: Path,
                                                                   tmp_path: Path) -> None:
    # The lab (lab/ganeti.py TIMEOUTS) scales Ganeti's import/export and RPC timeouts for
    # TCG; each line it changes must be in Debian's ganeti-3.0 as written there.
    for name in {name for name, *_ in ganeti.TIMEOUTS}:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ganeti_code / "ganeti" / name, tmp_path / name)
    done = subprocess.run(["sh", "-c", ganeti.scale_timeouts_script(str(tmp_path))],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    for name, key, _, lab_value in ganeti.TIMEOUTS:
        assert f"\n{key} = {lab_value}\n" in (tmp_path / name).read_text()
