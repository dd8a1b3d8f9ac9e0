"""grub add/list/remove on real filesystems, checked by GRUB's own tools."""

from __future__ import annotations

import gzip
import struct
import subprocess
from pathlib import Path

import pytest

from xenlfs.host import bootfiles
from xenlfs.lab import apt, dom0
from xenlfs.lab.cache import lab_cache
from xenlfs.settings import default_cache_dir

LFS_CFG = """\
# Begin /boot/grub/grub.cfg
set default=0
set timeout=5

insmod part_gpt
insmod ext2
set root=(hd0,2)

menuentry "GNU/Linux, Linux 6.1-lfs-12.0" {
        linux   /boot/vmlinuz-6.1-lfs-12.0 root=/dev/sda2 ro
}
submenu 'Old kernels' {
    menuentry 'Linux 5.19' --id old {
        if [ "${grub_platform}" = "pc" ]; then linux /boot/vmlinuz-5.19 root=/dev/sda2; fi
    }
}
"""

BROKEN_CFG = """\
set default=0
menuentry "LFS" {
        linux /vmlinuz root=/dev/sda2 ro
        if [ -f /x ]; then
}
"""


def fake_xen(path: Path) -> Path:
    """A gzipped image with valid Multiboot 1 and 2 headers (what grub-file looks for)."""
    m1, m2 = bootfiles.MULTIBOOT1_MAGIC, bootfiles.MULTIBOOT2_MAGIC
    head = struct.pack("<III", m1, 0, -m1 & 0xFFFFFFFF) + b"\0" * 4
    head += struct.pack("<IIII", m2, 0, 24, -(m2 + 24) & 0xFFFFFFFF) + struct.pack("<HHI", 0, 0, 8)
    path.write_bytes(gzip.compress(b"\0" * 4096 + head + b"\0" * 8192))
    return path


def boot_tree(boot: Path, cfg: str = LFS_CFG) -> Path:
    (boot / "grub").mkdir(parents=True, exist_ok=True)
    fake_xen(boot / "xen.gz")
    (boot / "vmlinuz-6.1-xen-dom0").write_bytes(b"MZ not really a kernel")
    (boot / "grub/grub.cfg").write_text(cfg)
    return boot / "grub/grub.cfg"


def grub_add(xenlfs, boot: Path, *extra: str, env: dict[str, str] | None = None):
    return xenlfs("grub", "add", "--grub-cfg", str(boot / "grub/grub.cfg"),
                  "--xen", str(boot / "xen.gz"), "--kernel", str(boot / "vmlinuz-6.1-xen-dom0"),
                  "--root", "/dev/sda2", "--xen-args", "dom0_mem=1024M,max:1024M", *extra, env=env)


def script_check(path: Path) -> None:
    subprocess.run(["grub-script-check", str(path)], check=True)


def backups(cfg: Path) -> list[Path]:
    return sorted(cfg.parent.glob("grub.cfg.*.xenlfs-bak"))


def test_separate_boot_partition_gives_paths_from_its_top(xenlfs, ext4_mount):
    cfg = boot_tree(ext4_mount)
    result = grub_add(xenlfs, ext4_mount, "--default")
    assert result.returncode == 0, result.stderr
    text = cfg.read_text()
    assert "\tmultiboot /xen.gz placeholder dom0_mem=1024M,max:1024M\n" in text
    assert "\tmodule /vmlinuz-6.1-xen-dom0 placeholder root=/dev/sda2 ro\n" in text
    assert text.startswith(LFS_CFG.split("set timeout")[0])
    script_check(cfg)
    assert len(backups(cfg)) == 1 and backups(cfg)[0].read_text() == LFS_CFG

    again = grub_add(xenlfs, ext4_mount, "--default")
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert cfg.read_text() == text and len(backups(cfg)) == 1


def test_boot_on_the_root_filesystem_keeps_the_boot_prefix(xenlfs, ext4_mount):
    cfg = boot_tree(ext4_mount / "boot")
    assert grub_add(xenlfs, ext4_mount / "boot").returncode == 0
    text = cfg.read_text()
    assert "\tmultiboot /boot/xen.gz placeholder" in text
    assert "\tmodule /boot/vmlinuz-6.1-xen-dom0 placeholder" in text
    script_check(cfg)


def test_boot_mount_option_stands_for_a_separate_partition(xenlfs, tmp_path):
    cfg = boot_tree(tmp_path / "boot")
    assert grub_add(xenlfs, tmp_path / "boot", "--boot-mount", str(tmp_path / "boot"),
                    "--multiboot2").returncode == 0
    assert "\tmultiboot2 /xen.gz placeholder" in cfg.read_text()
    assert "\tmodule2 /vmlinuz-6.1-xen-dom0 placeholder" in cfg.read_text()
    script_check(cfg)


def test_existing_entries_list_change_and_remove(xenlfs, tmp_path):
    boot = tmp_path / "boot"
    cfg = boot_tree(boot)
    assert grub_add(xenlfs, boot, "--boot-mount", str(boot), "--default").returncode == 0
    changed = grub_add(xenlfs, boot, "--boot-mount", str(boot), "--default",
                       "--title", "LFS 12.0, Xen 4.17")
    assert changed.returncode == 0
    text = cfg.read_text()
    assert text.count("--id xenlfs-xen") == 1 and "'LFS 12.0, Xen 4.17'" in text
    script_check(cfg)

    listed = xenlfs("grub", "list", "--grub-cfg", str(cfg), "--json")
    import json
    rows = json.loads(listed.stdout)
    assert [(r["title"], r["xenlfs"], r["default"]) for r in rows] == [
        ("GNU/Linux, Linux 6.1-lfs-12.0", False, False), ("Old kernels", False, False),
        ("Linux 5.19", False, False), ("LFS 12.0, Xen 4.17", True, True)]

    dry = xenlfs("grub", "remove", "--grub-cfg", str(cfg), "--dry-run")
    assert dry.returncode == 0 and "-menuentry 'LFS 12.0, Xen 4.17'" in dry.stdout
    assert cfg.read_text() == text
    assert xenlfs("grub", "remove", "--grub-cfg", str(cfg)).returncode == 0
    assert cfg.read_text() == LFS_CFG
    script_check(cfg)


def test_dry_run_shows_the_diff_and_writes_nothing(xenlfs, tmp_path):
    cfg = boot_tree(tmp_path / "boot")
    result = grub_add(xenlfs, tmp_path / "boot", "--boot-mount", str(tmp_path / "boot"),
                      "--dry-run")
    assert result.returncode == 0
    assert "+\tmultiboot /xen.gz placeholder" in result.stdout
    assert cfg.read_text() == LFS_CFG and not backups(cfg)


def test_malformed_grub_cfg_is_an_error_with_its_line_and_is_left_alone(xenlfs, tmp_path):
    cfg = boot_tree(tmp_path / "boot", BROKEN_CFG)
    before = cfg.stat().st_mtime_ns
    result = grub_add(xenlfs, tmp_path / "boot", "--boot-mount", str(tmp_path / "boot"))
    assert result.returncode == 1
    assert f"{cfg}:5:1: GRUB cannot parse this file" in result.stderr
    assert "Traceback" not in result.stderr
    assert cfg.read_text() == BROKEN_CFG and cfg.stat().st_mtime_ns == before
    assert not backups(cfg)


def test_a_kernel_given_as_xen_is_refused(xenlfs, tmp_path):
    boot = tmp_path / "boot"
    cfg = boot_tree(boot)
    result = xenlfs("grub", "add", "--grub-cfg", str(cfg), "--boot-mount", str(boot),
                    "--xen", str(boot / "vmlinuz-6.1-xen-dom0"),
                    "--kernel", str(boot / "vmlinuz-6.1-xen-dom0"), "--root", "/dev/sda2")
    assert result.returncode == 3 and "is not a Multiboot image" in result.stderr
    assert cfg.read_text() == LFS_CFG


def test_files_on_different_filesystems_are_refused(xenlfs, ext4_mount, tmp_path):
    cfg = boot_tree(ext4_mount)
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "vmlinuz").write_bytes(b"kernel")
    result = xenlfs("grub", "add", "--grub-cfg", str(cfg), "--xen", str(ext4_mount / "xen.gz"),
                    "--kernel", str(other / "vmlinuz"), "--root", "/dev/sda2")
    assert result.returncode == 3 and "different filesystems" in result.stderr


@pytest.fixture(scope="module")
def debian_xen_gz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's real xen.gz, from the package the lab boots (downloaded once into its cache)."""
    cache = lab_cache(default_cache_dir())
    versions = apt.cached_versions(cache)
    deb = apt.download(dom0.XEN_HYPERVISOR_PACKAGE, versions.xen_hypervisor,
                       cache / "downloads")
    unpacked = tmp_path_factory.mktemp("xen-deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    return unpacked / "boot" / f"xen-{dom0.XEN_SERIES}-amd64.gz"


def test_real_xen_is_multiboot_for_grub_file_and_for_the_header_scan(debian_xen_gz: Path):
    for version in (1, 2):
        assert bootfiles.is_multiboot(debian_xen_gz, version)
        head = bootfiles._head(debian_xen_gz, bootfiles.MULTIBOOT2_SEARCH)
        assert bootfiles.has_multiboot_header(head, version)


def test_without_grub_tools_the_fallbacks_agree(xenlfs, tmp_path):
    """No grub-file or grub-script-check on PATH: the header scan and the brace check."""
    with_tools = boot_tree(tmp_path / "a/boot")
    without = boot_tree(tmp_path / "b/boot")
    assert grub_add(xenlfs, tmp_path / "a/boot", "--boot-mount", str(tmp_path / "a")
                    ).returncode == 0
    bare = grub_add(xenlfs, tmp_path / "b/boot", "--boot-mount", str(tmp_path / "b"),
                    env={"PATH": "/nonexistent"})
    assert bare.returncode == 0, bare.stderr
    assert with_tools.read_text() == without.read_text()
    script_check(without)

    broken = boot_tree(tmp_path / "c/boot", "menuentry 'x' {\n  echo\n")
    result = grub_add(xenlfs, tmp_path / "c/boot", "--boot-mount", str(tmp_path / "c"),
                      env={"PATH": "/nonexistent"})
    assert result.returncode == 1 and f"{broken}:1:15: '{{' is never closed" in result.stderr


def test_once_boots_xen_on_the_next_boot_only(xenlfs, tmp_path):
    boot = tmp_path / "boot"
    cfg = boot_tree(boot)
    env_file = boot / "grub/grubenv"
    assert grub_add(xenlfs, boot, "--boot-mount", str(boot), "--once", "--default"
                    ).returncode == 2
    dry = grub_add(xenlfs, boot, "--boot-mount", str(boot), "--once", "--dry-run")
    assert dry.returncode == 0 and "+\tsave_env next_entry" in dry.stdout
    assert f"would run: grub-editenv {env_file} set next_entry=xenlfs-xen" in dry.stderr
    assert not env_file.exists() and cfg.read_text() == LFS_CFG

    assert grub_add(xenlfs, boot, "--boot-mount", str(boot), "--once").returncode == 0
    script_check(cfg)
    listed = subprocess.run(["grub-editenv", str(env_file), "list"], capture_output=True,
                            text=True, check=True).stdout
    assert "next_entry=xenlfs-xen" in listed.splitlines()
    text = cfg.read_text()
    again = grub_add(xenlfs, boot, "--boot-mount", str(boot), "--once")
    assert again.returncode == 0 and cfg.read_text() == text

    assert xenlfs("grub", "remove", "--grub-cfg", str(cfg)).returncode == 0
    assert cfg.read_text() == LFS_CFG
    listed = subprocess.run(["grub-editenv", str(env_file), "list"], capture_output=True,
                            text=True, check=True).stdout
    assert "next_entry" not in listed
