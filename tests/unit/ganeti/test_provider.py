"""The provider's files: names, modes and texts Ganeti reads; variant names; the map from
variant to snapshot; the plan that only rewrites what differs."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from xenlfs import run
from xenlfs.errors import UsageError
from xenlfs.ganeti import provider

COMMAND = ["/opt/xen lfs/bin/python3", "-m", "xenlfs"]


def test_variant_names_are_safe_stable_and_distinct() -> None:
    assert provider.variant_name(Path("/v/lfs-12.2.tar.zst")) == "lfs-12.2"
    assert provider.variant_name(Path("/v/lfs-12.2.tgz")) == "lfs-12.2"
    odd = provider.variant_name(Path("/v/LFS 12+xen.tar.zst"))
    assert odd == provider.variant_name(Path("/other/LFS 12+xen.tar.zst"))
    assert odd.startswith("lfs-12-xen-") and all(c.isalnum() or c in "._-" for c in odd)
    # Names that differ only in what was replaced keep different variants.
    assert odd != provider.variant_name(Path("/v/LFS 12 xen.tar.zst"))
    assert provider.variant_name(Path("/v/+++.tar")).startswith("snapshot-")


def test_files_are_what_ganeti_reads(tmp_path: Path) -> None:
    snaps = [tmp_path / "b.tar.zst", tmp_path / "a.tar.gz"]
    files = {f.name: f for f in provider.provider_files(COMMAND, tmp_path / "os x", snaps)}
    assert set(files) == {"ganeti_api_version", "parameters.list", "variants.list",
                          provider.VARIANTS_MAP, *provider.SCRIPTS}
    assert files["ganeti_api_version"].text == "20\n"
    assert files["variants.list"].text == "a\nb\n"
    names = [line.split(None, 1)[0] for line in files["parameters.list"].text.splitlines()]
    assert names == ["hostname", "ip", "gateway", "root_password_hash", "ssh_key", "swap"]
    assert all(len(line.split(None, 1)) == 2
               for line in files["parameters.list"].text.splitlines())
    for script in provider.SCRIPTS:
        item = files[script]
        assert item.mode == 0o755 and item.text.startswith("#!/bin/sh\n")
        exec_line = item.text.splitlines()[-1]
        argv = shlex.split(exec_line)
        assert argv[:4] == ["exec", *COMMAND]
        assert argv[4:] == ["ganeti", "script", "--dir", str(tmp_path / "os x"), script, "$@"]


def test_a_pythonpath_is_kept_in_the_scripts(tmp_path: Path) -> None:
    files = provider.provider_files(COMMAND, tmp_path, [], "/mnt/host/x y.zip")
    create = next(f for f in files if f.name == "create").text
    assert "export PYTHONPATH='/mnt/host/x y.zip'\nexec " in create
    plain = next(f for f in provider.provider_files(COMMAND, tmp_path, []) if f.name == "create")
    assert "PYTHONPATH" not in plain.text


def test_a_snapshot_path_with_a_control_character_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="control character"):
        provider.provider_files(COMMAND, tmp_path, [tmp_path / "a\nb.tar"])


def test_variant_map_round_trip_and_bad_line(tmp_path: Path) -> None:
    items = provider.provider_files(COMMAND, tmp_path, [tmp_path / "x y.tar.zst"])
    provider.install(provider.plan(tmp_path, items))
    assert provider.read_variants(tmp_path) == {
        provider.variant_name(tmp_path / "x y.tar.zst"): tmp_path / "x y.tar.zst"}
    (tmp_path / provider.VARIANTS_MAP).write_text("good\t/a.tar\nbad line\n")
    with pytest.raises(UsageError, match=r"xenlfs-variants.tsv:2:1: expected"):
        provider.read_variants(tmp_path)
    with pytest.raises(UsageError, match="install-os"):
        provider.read_variants(tmp_path / "missing")


def test_plan_rewrites_only_what_differs(tmp_path: Path) -> None:
    items = provider.provider_files(COMMAND, tmp_path, [])
    assert len(provider.plan(tmp_path, items)) == len(items)
    provider.install(provider.plan(tmp_path, items))
    assert (tmp_path / "create").stat().st_mode & 0o777 == 0o755
    assert provider.plan(tmp_path, items) == []
    os.chmod(tmp_path / "verify", 0o644)
    assert [c.path.name for c in provider.plan(tmp_path, items)] == ["verify"]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    items = provider.provider_files(COMMAND, tmp_path / "p", [])
    run.set_dry_run(True)
    try:
        provider.install(provider.plan(tmp_path / "p", items))
    finally:
        run.set_dry_run(False)
    assert not (tmp_path / "p").exists()


def test_install_os_cli_dry_run(xenlfs, tmp_path: Path) -> None:
    (tmp_path / "snaps").mkdir()
    result = xenlfs("ganeti", "install-os", "--dir", str(tmp_path / "p"), "--snapshots",
                    str(tmp_path / "snaps"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would write: " + str(tmp_path / "p" / "create") in result.stdout
    assert "no snapshot in" in result.stderr
    assert not (tmp_path / "p").exists()
