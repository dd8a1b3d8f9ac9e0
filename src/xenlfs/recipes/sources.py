"""Source tarballs: the user's own (--source), or Debian's upstream orig tarball fetched with
`apt-get source --download-only` into CACHE/build/sources/PACKAGE and kept there. When
Debian's source cannot be had, the error says where upstream publishes its releases."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from xenlfs import run
from xenlfs.errors import CommandFailed, PreconditionError

log = logging.getLogger("xenlfs.build")

DEB_SRC_HINT = ("add a deb-src entry: copy the stanza of /etc/apt/sources.list.d/debian.sources "
                "with 'Types: deb-src' into its own .sources file, then apt-get update")


@dataclass(frozen=True)
class Upstream:
    """Where a source package comes from when Debian's mirror does not serve it."""

    releases: str        # upstream's release tarballs
    tarball: str         # what upstream names them
    debian_binary: str   # Debian's binary package with the same program, built


# Some mirrors serve no acpica-unix source at all (this project's answers 404 for every version).
UPSTREAM = {
    "acpica-unix": Upstream(
        "https://github.com/acpica/acpica/releases or Intel's ACPICA download page "
        "https://www.intel.com/content/www/us/en/developer/topic-technology/open/acpica/"
        "download.html",
        "acpica-unix-YYYYMMDD.tar.gz", "acpica-tools"),
}


def elsewhere(package: str) -> str:
    """What to do without Debian's source of PACKAGE: the --source hint."""
    found = UPSTREAM.get(package)
    if found is None:
        return "give the tarball with --source TARBALL (upstream's release tarball works the same)"
    return (f"give upstream's release tarball with --source TARBALL: {found.tarball} from "
            f"{found.releases}; or install Debian's binary package {found.debian_binary} "
            "instead of building it")


def _orig(directory: Path, package: str) -> Path | None:
    found = sorted(directory.glob(f"{package}_*.orig.tar.*"))
    return found[-1] if found else None


def debian_orig(package: str, cache_dir: Path, version: str | None = None) -> Path:
    """Debian's upstream tarball of a source package, downloaded once."""
    directory = cache_dir / "build/sources" / package
    cached = _orig(directory, package)
    if cached is not None and version is None:
        return cached
    directory.mkdir(parents=True, exist_ok=True)
    wanted = f"{package}={version}" if version else package
    try:
        run.run(["apt-get", "source", "--download-only", "-q", wanted], cwd=directory)
    except CommandFailed as e:
        if "deb-src" in e.stderr or "source package" in e.stderr.lower():
            raise PreconditionError(f"apt cannot find the source package {package}",
                                    hint=f"{DEB_SRC_HINT}; or {elsewhere(package)}") from e
        if version is not None or not _download_another_version(package, directory):
            raise PreconditionError(f"apt-get could not download the source of {package}:\n"
                                    f"{e.stderr}",
                                    hint=elsewhere(package)) from e
    found = _orig(directory, package)
    if found is None:
        raise PreconditionError(f"apt-get source {wanted} gave no orig tarball in {directory}",
                                hint=elsewhere(package))
    return found


def _download_another_version(package: str, directory: Path) -> bool:
    """Try the other versions apt knows of the source, newest first: a mirror may lack the
    newest (a security update's sources are on another host)."""
    listed = run.run(["apt-cache", "showsrc", "--only-source", package], check=False).stdout
    versions = [line.split(":", 1)[1].strip() for line in listed.splitlines()
                if line.startswith("Version:")]
    compare = functools.cmp_to_key(_debian_version_compare)
    for version in sorted(versions, key=compare, reverse=True)[1:]:
        log.warning("apt-get could not download the newest source of %s; trying %s",
                    package, version)
        try:
            run.run(["apt-get", "source", "--download-only", "-q", f"{package}={version}"],
                    cwd=directory)
            return True
        except CommandFailed:
            continue
    return False


def _debian_version_compare(a: str, b: str) -> int:
    # dpkg's own ordering, not string order ("4.17.10" > "4.17.7").
    if run.run(["dpkg", "--compare-versions", a, "gt", b], check=False).returncode == 0:
        return 1
    return 0 if a == b else -1
