"""Debian's source packages for the build tests: a deb-src entry made from the machine's own
debian.sources, and the orig tarballs fetched once into the cache by xenlfs itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from xenlfs.errors import PreconditionError
from xenlfs.recipes import sources
from xenlfs.settings import default_cache_dir

SOURCES = Path("/etc/apt/sources.list.d")
DEB_SRC = SOURCES / "xenlfs-tests-deb-src.sources"
APT = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600"]


def _has_deb_src() -> bool:
    files = [*SOURCES.glob("*.sources"), *SOURCES.glob("*.list"), Path("/etc/apt/sources.list")]
    return any("deb-src" in f.read_text() for f in files if f.is_file())


@pytest.fixture(scope="session")
def deb_src() -> None:
    if _has_deb_src():
        return
    debian = SOURCES / "debian.sources"
    if not debian.is_file():
        pytest.skip("no /etc/apt/sources.list.d/debian.sources to make a deb-src entry from")
    text = "\n".join("Types: deb-src" if line.strip() == "Types: deb" else line
                     for line in debian.read_text().splitlines()) + "\n"
    DEB_SRC.write_text(text)
    subprocess.run([*APT, "update"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return default_cache_dir()


@pytest.fixture(scope="session")
def orig(deb_src: None, cache_dir: Path):  # type: ignore[no-untyped-def]
    """Debian's orig tarball of a source package; $XENLFS_TEST_SOURCE_<PKG> overrides it."""
    def get(package: str) -> Path:
        override = os.environ.get(f"XENLFS_TEST_SOURCE_{package.replace('-', '_').upper()}")
        if override:
            return Path(override)
        try:
            return sources.debian_orig(package, cache_dir)
        except PreconditionError as e:
            if package == "acpica-unix":
                # Some mirrors (this project's proxy) do not serve it; say so, do not fail.
                pytest.skip(f"{e}; set XENLFS_TEST_SOURCE_ACPICA_UNIX to an ACPICA tarball")
            raise
    return get
