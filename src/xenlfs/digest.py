"""A file's SHA-256: how the build and lab caches recognise their inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: Path) -> str:
    """The file's SHA-256 as hex, read in blocks (tarballs and images are large)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
