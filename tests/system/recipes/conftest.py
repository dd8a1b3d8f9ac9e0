"""Source tarballs for the build tests: the project's own shared/sources beside the checkout
(upstream's tarballs the mirror lacks, each checked against its SHA256SUMS), else Debian's
source packages: a deb-src entry made from the machine's own debian.sources, and the orig
tarballs fetched once into the cache by xenlfs itself."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from xenlfs.digest import file_digest
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


def shared_sources() -> list[Path]:
    """The project's shared/sources directories: beside this checkout (CI's clone has a copy
    of shared/ beside it), and beside the main checkout when this is a git worktree."""
    found = [ROOT.parent / "shared/sources"]
    common = subprocess.run(["git", "rev-parse", "--git-common-dir"], cwd=ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()
    if common:
        found.append((ROOT / common).resolve().parent.parent / "shared/sources")
    return [d for i, d in enumerate(found) if d.is_dir() and d not in found[:i]]


def sha256sums(directory: Path) -> dict[str, str]:
    sums = directory / "SHA256SUMS"
    if not sums.is_file():
        return {}
    # "HASH  NAME", or "HASH *NAME" as sha256sum --binary writes it.
    return {name.lstrip("*"): digest for digest, name in
            (line.split(maxsplit=1) for line in sums.read_text().splitlines() if line.strip())}


def checked(tarball: Path, sums: dict[str, str]) -> Path:
    """TARBALL, if its SHA256SUMS line (when it has one) matches; a wrong one fails the test."""
    if not tarball.is_file():
        pytest.fail(f"{tarball} is not a file")
    wanted = sums.get(tarball.name)
    if wanted is not None and file_digest(tarball) != wanted:
        pytest.fail(f"{tarball}: sha256 {file_digest(tarball)} is not {wanted} (SHA256SUMS)")
    return tarball


def shared_tarball(package: str) -> Path | None:
    """Upstream's PACKAGE-VERSION.tar.* listed in a shared SHA256SUMS, the newest listed."""
    for directory in shared_sources():
        names = sorted(n for n in sha256sums(directory)
                       if n.startswith(f"{package}-") and ".tar" in n)
        if names:
            return checked(directory / names[-1], sha256sums(directory))
    return None


@pytest.fixture(scope="session")
def orig(deb_src: None, cache_dir: Path):  # type: ignore[no-untyped-def]
    """The source tarball of a Debian source package: $XENLFS_TEST_SOURCE_<PKG>, else
    upstream's in shared/sources, else Debian's orig tarball. A tarball whose name a
    SHA256SUMS (its own directory's or shared/sources') lists must have that hash."""
    def get(package: str) -> Path:
        override = os.environ.get(f"XENLFS_TEST_SOURCE_{package.replace('-', '_').upper()}")
        if override:
            path = Path(override)
            sums = sha256sums(path.parent)
            for directory in shared_sources():
                sums = sha256sums(directory) | sums
            return checked(path, sums)
        shared = shared_tarball(package)
        if shared is not None:
            return shared
        try:
            return sources.debian_orig(package, cache_dir)
        except PreconditionError as e:
            if package == "acpica-unix":
                # Some mirrors (this project's) do not serve it and there is no shared/ here.
                pytest.skip(f"{e}; no ../shared/sources/acpica-unix-*.tar.gz beside the "
                            "checkout; set XENLFS_TEST_SOURCE_ACPICA_UNIX to an ACPICA tarball")
            raise
    return get
