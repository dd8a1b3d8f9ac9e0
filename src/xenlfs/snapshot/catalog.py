"""The snapshots in a directory, and what one of them holds (read-only)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from xenlfs.errors import UsageError, XenlfsError
from xenlfs.snapshot import atomic, formats, manifest


def describe(archive: Path) -> dict[str, Any]:
    """One archive: its size and, from its manifest, when, where and what it snapshotted."""
    st = archive.stat()
    row: dict[str, Any] = {"archive": str(archive), "bytes": st.st_size,
                           "modified": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                     time.gmtime(st.st_mtime))}
    sidecar = manifest.path_for(archive)
    if not sidecar.exists():
        return {**row, "status": "no manifest"}
    try:
        meta = manifest.read(sidecar, meta_only=True).meta
    except XenlfsError as e:
        return {**row, "status": f"bad manifest: {e}"}
    try:
        status = manifest.describes(meta, archive) or "ok"
    except OSError as e:
        status = f"cannot read the archive: {e.strerror}"
    keys = ("created", "host", "kernel", "root", "compression", "entries", "content_bytes")
    return {**row, **{k: meta.get(k) for k in keys}, "status": status}


def listing(directory: Path) -> list[dict[str, Any]]:
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory",
                         hint="give the directory that holds the snapshots, or set "
                         "[snapshot] dir")
    rows = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(atomic.TEMP_PREFIX):
            state = "being written" if atomic.locked(path) else \
                "unfinished, left by a killed run (the next create removes it)"
            rows.append({"archive": str(path), "bytes": path.stat().st_size, "status": state})
        elif path.name.endswith(manifest.SUFFIX):
            archive = path.with_name(path.name[:-len(manifest.SUFFIX)])
            if not archive.exists():
                rows.append({"archive": str(archive), "bytes": 0,
                             "status": "missing: only its manifest is left"})
        elif path.is_file() and path.name.endswith(formats.ARCHIVE_SUFFIXES):
            rows.append(describe(path))
    return rows


def show(archive: Path) -> dict[str, Any]:
    """The manifest's metadata and a summary of its entries."""
    if not archive.is_file():
        raise UsageError(f"{archive} does not exist or is not a file")
    recorded = manifest.read(manifest.path_for(archive))
    kinds = Counter(e.type for e in recorded.entries)
    return {**describe(archive), "meta": recorded.meta, "types": dict(sorted(kinds.items())),
            "setuid": [e.path for e in recorded.entries if e.mode & 0o6000 and e.type == "file"],
            "capabilities": [e.path for e in recorded.entries
                             if any(n == "security.capability" for n, _ in e.xattrs)]}
