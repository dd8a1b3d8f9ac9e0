"""The reference hosts' bookkeeping (lab/host.py, lab/source_host.py): when a built host
counts as finished, and the cache key part both hosts share."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlfs.errors import PreconditionError
from xenlfs.lab import host, source_host


def test_a_host_is_finished_once_its_guest_config_is_in_place(tmp_path: Path) -> None:
    assert host.finished(tmp_path) is None
    (tmp_path / "root/etc/xen/auto").mkdir(parents=True)
    assert host.finished(tmp_path) is None
    (tmp_path / f"root/etc/xen/auto/{host.GUEST}.cfg").write_text("name = 'guest1'\n")
    assert host.finished(tmp_path) == host.Host(tmp_path / "root", host.ENTRY, host.GUEST)


def test_both_hosts_keys_follow_the_shared_steps(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if not (host.sources_dir() / host.BOOTSCRIPTS).is_file():
        pytest.skip("needs the LFS-Bootscripts tarball in ../shared/sources")
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(b"a domU kernel")
    for name in ("yajl", "libaio", "acpica", "xen"):
        (tmp_path / name).write_text(name)
    found = source_host.Sources(*(tmp_path / n for n in ("yajl", "libaio", "acpica", "xen")))
    assert found.by_recipe()["acpica"] == tmp_path / "acpica"

    def keys() -> tuple[str, str]:
        return (host.cache_key("base", "http://mirror", kernel),
                source_host.cache_key("http://mirror", found, "recipe", kernel))

    before = keys()
    monkeypatch.setattr(host, "DOM0_MEMORY", "dom0_mem=1024M,max:1024M")
    after = keys()
    assert after[0] != before[0] and after[1] != before[1]
    kernel.write_bytes(b"another domU kernel")
    assert all(a != b for a, b in zip(keys(), after, strict=True))


def test_the_built_hypervisor_is_found_through_links_inside_the_tree(tmp_path: Path) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "xen-4.17.5.gz").write_bytes(b"xen")
    (boot / "xen-4.17.gz").symlink_to("xen-4.17.5.gz")
    (boot / "xen.gz").symlink_to("/boot/xen-4.17.gz")  # absolute: the tree's own /boot
    assert source_host.xen_gz(tmp_path) == boot / "xen-4.17.5.gz"
    (boot / "xen.gz").unlink()
    (boot / "xen.gz").symlink_to("/etc/hostname")  # a file, but not in /boot
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname").write_text("host\n")
    with pytest.raises(PreconditionError, match="is not a link to a file in /boot"):
        source_host.xen_gz(tmp_path)
