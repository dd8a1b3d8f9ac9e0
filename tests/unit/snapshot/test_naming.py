from __future__ import annotations

from pathlib import Path

import pytest

from xenlfs.commands.snapshot import output_path, shown
from xenlfs.errors import UsageError


def test_default_name_goes_into_the_snapshot_dir_with_the_compression_suffix():
    path, compression = output_path(None, Path("/var/backups"), "zstd", False)
    assert path.parent == Path("/var/backups")
    assert path.name.endswith(".tar.zst")
    assert compression.name == "zstd"


def test_a_bare_name_goes_into_the_dir_and_a_path_stays_where_it_is():
    assert output_path(Path("lfs"), Path("/b"), "xz", False)[0] == Path("/b/lfs.tar.xz")
    assert output_path(Path("./x/lfs.tgz"), Path("/b"), "zstd", False)[0] == Path("x/lfs.tgz")


def test_the_suffix_decides_unless_it_contradicts_the_command_line():
    assert output_path(Path("/s/lfs.tar.gz"), Path("/b"), "zstd", False)[1].name == "gzip"
    with pytest.raises(UsageError, match="names a gzip archive"):
        output_path(Path("/s/lfs.tar.gz"), Path("/b"), "zstd", True)


def test_paths_are_shown_absolute_with_undecodable_bytes_escaped():
    assert shown(".") == "/"
    assert shown("caf\udce9") == "/caf\\xe9"
