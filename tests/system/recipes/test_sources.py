"""Without Debian's source and without --source, `xenlfs build acpica` says where upstream's
release tarballs are and that Debian's acpica-tools is an alternative. apt is the real
apt-get, given a private source list (APT_CONFIG): no deb-src at all, or a deb-src that lists
acpica-unix but lacks its files (what a mirror answering 404 does)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SOURCES_INDEX = """\
Package: acpica-unix
Binary: acpica-tools
Version: 20250404-1
Maintainer: Nobody <nobody@example.org>
Architecture: any
Format: 3.0 (quilt)
Directory: .
Checksums-Sha256:
 {empty} 0 acpica-unix_20250404-1.dsc
 {empty} 0 acpica-unix_20250404.orig.tar.gz
"""
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def private_apt(tmp_path: Path, *, listed: bool) -> dict[str, str]:
    """An apt configuration of its own: its lists, its cache, its (maybe empty) sources."""
    state = tmp_path / "apt"
    parts = state / "sources.list.d"
    for directory in (parts, state / "lists/partial", state / "cache/archives/partial"):
        directory.mkdir(parents=True)
    config = state / "apt.conf"
    config.write_text(f'Dir::Etc::SourceList "/dev/null";\nDir::Etc::SourceParts "{parts}";\n'
                      f'Dir::State::Lists "{state}/lists";\nDir::Cache "{state}/cache";\n')
    env = {"APT_CONFIG": str(config)}
    if listed:
        repo = tmp_path / "mirror"
        repo.mkdir()
        (repo / "Sources").write_text(SOURCES_INDEX.format(empty=EMPTY_SHA256))
        (parts / "mirror.sources").write_text(
            f"Types: deb-src\nURIs: file:{repo}\nSuites: ./\nTrusted: yes\n")
        subprocess.run(["apt-get", "-q", "update"], env=env | {"PATH": "/usr/bin:/bin"},
                       check=True, capture_output=True)
    return env


@pytest.mark.parametrize("listed", [False, True], ids=["no-deb-src", "mirror-lacks-it"])
def test_build_acpica_without_a_source_says_where_upstreams_are(xenlfs, tmp_path: Path,
                                                                 listed: bool) -> None:
    env = private_apt(tmp_path, listed=listed)
    result = xenlfs("build", "acpica", "--cache-dir", str(tmp_path / "cache"),
                    "--log-dir", str(tmp_path / "logs"), "--destdir", str(tmp_path / "dest"),
                    env=env)
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 3, said
    assert "Traceback" not in said
    assert ("apt cannot find the source package acpica-unix" if not listed
            else "apt-get could not download the source of acpica-unix") in said
    assert ("give upstream's release tarball with --source TARBALL: acpica-unix-YYYYMMDD.tar.gz "
            "from https://github.com/acpica/acpica/releases or Intel's ACPICA download page "
            "https://www.intel.com/") in said
    assert "; or install Debian's binary package acpica-tools instead of building it" in said
    assert not (tmp_path / "dest").exists()
