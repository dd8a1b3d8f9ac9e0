"""Source tarballs: the user's own (--source), or Debian's upstream orig tarball fetched with
`apt-get source --download-only` into CACHE/build/sources/PACKAGE and kept there."""

from __future__ import annotations

from pathlib import Path

from xenlfs import run
from xenlfs.errors import CommandFailed, PreconditionError

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
        raise PreconditionError(f"apt-get could not download the source of {package}:\n"
                                f"{e.stderr}",
                                hint="give the tarball with --source (upstream's release "
                                "tarball works the same)") from e
    found = _orig(directory, package)
    if found is None:
        raise PreconditionError(f"apt-get source {wanted} gave no orig tarball in {directory}",
                                hint="give the tarball with --source")
    return found
