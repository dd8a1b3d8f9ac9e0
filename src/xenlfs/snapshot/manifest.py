"""The manifest beside each snapshot: metadata, then one JSON line per archive member.

It lives in ARCHIVE.manifest.jsonl so that the archive stays a plain tar that GNU tar
extracts with nothing extra in the tree. Non-UTF-8 file names are kept as JSON
surrogate escapes (\\udcff for byte 0xff), which Python reads back exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xenlfs.errors import SourceError, UsageError
from xenlfs.snapshot.entry import Entry

FORMAT = "xenlfs-snapshot-manifest"
VERSION = 1
SUFFIX = ".manifest.jsonl"


TAIL = 1 << 20  # the archive's last bytes hashed as its identity


def path_for(archive: Path) -> Path:
    return archive.with_name(archive.name + SUFFIX)


def tail_sha256(fd: int) -> str:
    """The hash of an archive's last MiB. zstd, gzip and xz end with a checksum of all the
    content, so this tells two archives apart at the cost of reading one MiB."""
    size = os.fstat(fd).st_size
    digest = hashlib.sha256()
    offset = max(size - TAIL, 0)
    while chunk := os.pread(fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def describes(meta: dict[str, Any], archive: Path) -> str | None:
    """None if the manifest `meta` is that of `archive`; else why not. The manifest is
    renamed into place before its archive, so a run killed between the two leaves a manifest
    beside an older archive, or none: this is how such a manifest is recognised."""
    with open(archive, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if meta.get("archive_bytes") != size:
            what = f"has {size} bytes but its manifest says {meta.get('archive_bytes')}"
        elif meta.get("archive_tail_sha256", "") not in ("", tail_sha256(f.fileno())):
            what = "ends with other bytes than its manifest records"
        else:
            return None
    return (f"the archive {what}: it is damaged, or it is not the archive this manifest "
            "describes (as a run killed between renaming the manifest and the archive leaves)")


@dataclass(frozen=True)
class Manifest:
    meta: dict[str, Any]
    entries: list[Entry]


def dump(meta: dict[str, Any], entries: Iterable[Entry]) -> Iterator[bytes]:
    """The manifest's bytes, a line at a time."""
    head = {"format": FORMAT, "version": VERSION, **meta}
    yield json.dumps(head, ensure_ascii=True).encode() + b"\n"
    for entry in entries:
        yield json.dumps(entry.to_json(), ensure_ascii=True).encode() + b"\n"


def write_fd(fd: int, meta: dict[str, Any], entries: Iterable[Entry]) -> None:
    with os.fdopen(os.dup(fd), "wb", buffering=1 << 20) as f:
        for line in dump(meta, entries):
            f.write(line)


def read(path: Path, *, meta_only: bool = False) -> Manifest:
    """Read a manifest; a damaged one is reported with its line and column."""
    if not path.is_file():
        raise UsageError(f"{path} does not exist: this archive has no manifest",
                         hint="a snapshot made by 'xenlfs snapshot create' has one beside it")
    entries: list[Entry] = []
    meta: dict[str, Any] = {}
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                data = json.loads(line)
                if number == 1:
                    if data.get("format") != FORMAT:
                        raise SourceError(str(path), 1, 1, "not a xenlfs snapshot manifest")
                    if data.get("version") != VERSION:
                        raise SourceError(str(path), 1, 1,
                                          f"manifest version {data.get('version')} is not "
                                          f"{VERSION}", "use the xenlfs that made it")
                    meta = data
                    if meta_only:
                        break
                    continue
                entries.append(Entry.from_json(data))
            except json.JSONDecodeError as e:
                raise SourceError(str(path), number, e.colno, f"damaged manifest: {e.msg}",
                                  "make the snapshot again, or verify the archive alone") from e
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise SourceError(str(path), number, 1, f"damaged manifest entry: {e!r}",
                                  "make the snapshot again") from e
    if not meta:
        raise SourceError(str(path), 1, 1, "empty manifest", "make the snapshot again")
    return Manifest(meta, entries)
