from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from xenlfs.errors import UsageError
from xenlfs.lab import dom0, images

MADISON = """\
linux-image-amd64 |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-amd64 |  6.1.176-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
xen-utils-4.17 | 4.17.7+13-g2445b30a44-0+deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
xen-utils-4.17 | 4.17.5+72-g01140da4e8-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
"""  # noqa: E501


def test_madison_picks_the_suites_own_version_not_security() -> None:
    assert images.madison_versions(MADISON, "bookworm") == {
        "linux-image-amd64": "6.1.176-1", "xen-utils-4.17": "4.17.5+72-g01140da4e8-1"}
    assert images.madison_versions(MADISON, "trixie") == {}


def test_kernel_package_from_the_meta_package() -> None:
    shown = "Package: linux-image-amd64\nDepends: linux-image-6.1.0-50-amd64 (= 6.1.176-1)\n"
    assert images.depends_kernel(shown) == "linux-image-6.1.0-50-amd64"
    assert images.depends_kernel("Package: x\n") is None


def test_cache_key_changes_with_every_input(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"xen": "4.17.5", "packages": ["a", "b"]}
    key = images.cache_key(base)
    assert key == images.cache_key(dict(reversed(list(base.items()))))
    assert key != images.cache_key({**base, "xen": "4.17.7"})
    assert key != images.cache_key({**base, "packages": ["a"]})
    monkeypatch.setattr(images, "BUILDER_VERSION", images.BUILDER_VERSION + 1)
    assert key != images.cache_key(base)


def test_dom0_files_are_part_of_the_initramfs_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = images.cache_key({"overlay": images.overlay_files()})
    monkeypatch.setattr(dom0, "DOM0_UP", dom0.DOM0_UP + "echo changed\n")
    assert images.cache_key({"overlay": images.overlay_files()}) != before


def test_apt_lists_stamp_follows_apt_get_update(tmp_path: Path) -> None:
    (tmp_path / "x_Packages").write_text("one")
    first = images.apt_lists_stamp(tmp_path)
    assert images.apt_lists_stamp(tmp_path) == first
    (tmp_path / "x_Packages").write_text("two, longer")
    assert images.apt_lists_stamp(tmp_path) != first


def test_module_files_are_relative_and_skip_builtins(tmp_path: Path) -> None:
    out = (f"insmod {tmp_path}/lib/modules/6.1/kernel/net/llc/llc.ko \n"
           f"insmod {tmp_path}/lib/modules/6.1/kernel/net/bridge/bridge.ko \n"
           "builtin crc32c\n")
    assert images.module_files(out, tmp_path) == [
        "lib/modules/6.1/kernel/net/llc/llc.ko", "lib/modules/6.1/kernel/net/bridge/bridge.ko"]


def test_user_xen_elf_is_used_as_is_and_gz_is_unpacked_once(tmp_path: Path) -> None:
    elf = tmp_path / "xen"
    elf.write_bytes(b"\x7fELF" + b"\0" * 60)
    assert images.user_xen(tmp_path / "cache", elf) == elf
    gz = tmp_path / "xen.gz"
    gz.write_bytes(gzip.compress(elf.read_bytes()))
    unpacked = images.user_xen(tmp_path / "cache", gz)
    assert unpacked.read_bytes() == elf.read_bytes()
    assert images.user_xen(tmp_path / "cache", gz) == unpacked
    other = tmp_path / "bzImage"
    other.write_bytes(b"MZ\0\0")
    with pytest.raises(UsageError, match="neither an ELF"):
        images.user_xen(tmp_path / "cache", other)


def test_building_renames_on_success_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with images.building(tmp_path / "a") as work:
        (work / "f").write_text("x")
    assert (tmp_path / "a/f").read_text() == "x"
    with pytest.raises(RuntimeError), images.building(tmp_path / "b") as work:
        (work / "f").write_text("x")
        raise RuntimeError
    assert sorted(os.listdir(tmp_path)) == ["a"]


def test_clean_empties_the_lab_cache(tmp_path: Path) -> None:
    cache = images.lab_cache(tmp_path)
    (cache / "dom0-1").mkdir(parents=True)
    (cache / "dom0-1/initrd.cpio").write_bytes(b"x" * 1000)
    (cache / "versions.json").write_text("{}")
    assert images.clean(tmp_path) >= 1000
    assert [p.name for p in cache.iterdir()] == [".lock"]


def test_cpio_packs_a_tree(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    (stage / "etc").mkdir(parents=True)
    (stage / "etc/hostname").write_text("dom0\n")
    os.symlink("/bin/busybox", stage / "init")
    images.cpio(stage, tmp_path / "out.cpio")
    data = (tmp_path / "out.cpio").read_bytes()
    assert data.startswith(b"070701")
    assert b"etc/hostname" in data and b"dom0\n" in data and b"TRAILER!!!" in data


def bzimage(payload: bytes) -> bytes:
    setup_sectors = 1
    header = bytearray(1024)
    header[0x1F1] = setup_sectors
    header[0x202:0x206] = b"HdrS"
    header[0x248:0x250] = (16).to_bytes(4, "little") + len(payload).to_bytes(4, "little")
    return bytes(header) + b"\0" * 16 + payload + b"tail"


def test_vmlinux_is_unpacked_from_xz_and_gzip_bzimages(tmp_path: Path) -> None:
    import lzma

    elf = b"\x7fELF" + os.urandom(1000)
    for name, packed in (("xz", lzma.compress(elf, format=lzma.FORMAT_XZ)),
                         ("gz", gzip.compress(elf))):
        (tmp_path / name).write_bytes(bzimage(packed))
        assert images.vmlinux(tmp_path / name) == elf
    (tmp_path / "zst").write_bytes(bzimage(b"\x28\xb5\x2f\xfd rest"))
    assert images.vmlinux(tmp_path / "zst") is None
    (tmp_path / "elf").write_bytes(elf)
    assert images.vmlinux(tmp_path / "elf") == elf
