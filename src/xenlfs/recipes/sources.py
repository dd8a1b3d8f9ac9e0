"""Source tarballs: the user's own (--source), or Debian's upstream orig tarball fetched with
`apt-get source --download-only` into CACHE/build/sources/PACKAGE and kept there."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from xenlfs import run
from xenlfs.errors import CommandFailed, PreconditionError

log = logging.getLogger("xenlfs.build")

DEB_SRC_HINT = ("add a deb-src entry: copy the stanza of /etc/apt/sources.list.d/debian.sources "
                "with 'Types: deb-src' into its own .sources file, then apt-get update")


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
                                    hint=DEB_SRC_HINT) from e
        if version is not None or not _download_another_version(package, directory):
            raise PreconditionError(f"apt-get could not download the source of {package}:\n"
                                    f"{e.stderr}",
                                    hint="give the tarball with --source (upstream's release "
                                    "tarball works the same)") from e
    found = _orig(directory, package)
    if found is None:
        raise PreconditionError(f"apt-get source {wanted} gave no orig tarball in {directory}",
                                hint="give the tarball with --source")
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
