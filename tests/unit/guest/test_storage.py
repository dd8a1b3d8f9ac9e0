"""Target decisions that need no device: sizes, the guest's disk spec, the CLI's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_xenlfs
from xenlfs.errors import PreconditionError, UsageError
from xenlfs.guest import storage
from xenlfs.guest.storage import Layout, MiB
from xenlfs.xl import cfg, check


def test_default_size_has_room_and_whole_mebibytes():
    content = 700 * 10**6
    size = storage.default_size(content)
    assert size % MiB == 0 and size >= storage.needed(content)


@pytest.mark.parametrize(("layout", "spec"), [
    (Layout("image", Path("/srv/g.img")), "format=raw, vdev=xvda1, access=rw, target=/srv/g.img"),
    (Layout("image", Path("/srv/g.img"), partition_table="gpt"),
     "format=raw, vdev=xvda, access=rw, target=/srv/g.img"),
    (Layout("block", Path("/dev/sdc12")), "phy:/dev/sdc12,xvda1,w"),
    (Layout("lv", Path("/dev/vg0/g")), "phy:/dev/vg0/g,xvda1,w"),
])
def test_disk_specs_are_what_xl_reads(layout: Layout, spec: str):
    assert layout.disk_spec == spec
    text = f'name = "g"\nkernel = "/k"\nmemory = 256\ndisk = ["{spec}"]\n'
    report = check.check_config(cfg.parse(text, "g.cfg"))
    assert not [f for f in report.findings if f.severity == "error"]


def test_directory_has_no_disk():
    assert Layout("dir", Path("/srv/c")).disk_spec is None


def test_missing_target_without_size_is_a_usage_error(tmp_path: Path):
    with pytest.raises(UsageError, match="does not exist"):
        storage.decide(storage.Request("g", tmp_path / "nothing"), 1000)


def test_new_image_too_small_is_refused_before_anything(tmp_path: Path):
    with pytest.raises(PreconditionError, match="too small"):
        storage.decide(storage.Request("g", tmp_path / "g.img", size=8 * MiB), 1000)
    assert not (tmp_path / "g.img").exists()


def test_cli_usage_errors(tmp_path: Path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"")
    result = run_xenlfs("guest", "prepare", "g", "--snapshot", str(archive), "--target",
                        str(tmp_path), "--ip", "10.0.0.1")
    assert result.returncode == 2 and "prefix" in result.stderr
    result = run_xenlfs("guest", "prepare", "g", "--snapshot", str(archive), "--gateway",
                        "1.2.3.4")
    assert result.returncode == 2 and "--gateway" in result.stderr
    result = run_xenlfs("guest", "prepare", "bad_name!", "--snapshot", str(archive))
    assert result.returncode == 2 and "not a valid host name" in result.stderr
