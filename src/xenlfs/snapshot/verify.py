"""Checking a snapshot: the archive is whole and every member matches its manifest line;
or, with a live tree, what was added, removed or changed since the snapshot."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xenlfs import run, ui
from xenlfs.errors import UsageError
from xenlfs.snapshot import excludes as ex
from xenlfs.snapshot import formats, manifest, readahead
from xenlfs.snapshot.entry import CONTENT, METADATA, Entry
from xenlfs.snapshot.tarscan import ArchiveDamaged, Scanner

CHUNK = 1 << 20
SHOWN = 50  # differences listed one by one; more are counted


@dataclass
class Report:
    archive: Path
    entries: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"archive": str(self.archive), "ok": self.ok, "entries": self.entries,
                "problems": self.problems, "seconds": round(self.seconds, 3),
                "note": self.note}


def _check_identity(archive: Path, meta: dict[str, Any], report: Report) -> None:
    mismatch = manifest.describes(meta, archive)
    if mismatch:
        report.problems.append(mismatch)


def verify(archive: Path, *, need_manifest: bool = True) -> Report:
    """Decompress and read the whole archive; every member must match the manifest.

    Without a manifest its files' hashes cannot be checked: that is a problem unless
    need_manifest is False (the hint's own .tgz, say), when it is only checked to be whole.
    A manifest that does not describe this archive (its size or last MiB) is a problem too.
    """
    start = time.monotonic()
    archive = Path(archive)
    if not archive.is_file():
        raise UsageError(f"{archive} does not exist or is not a file")
    compression = formats.detect(archive)
    report = Report(archive)
    recorded = None
    sidecar = manifest.path_for(archive)
    if sidecar.exists():
        recorded = manifest.read(sidecar)
        _check_identity(archive, recorded.meta, report)
    elif need_manifest:
        report.problems.append(f"it has no manifest ({sidecar.name}), so the hashes of its "
                               "files could not be verified; --no-manifest checks only that "
                               "it is whole")
    else:
        report.note = "it has no manifest, so only its wholeness was checked, not its hashes"
    scanner = Scanner()
    with tempfile.TemporaryFile() as errors, open(archive, "rb") as source, \
            ui.byte_progress() as progress:
        total = recorded.meta.get("tar_bytes") if recorded else None
        task = progress.add_task("verifying", total=total, files=0)
        child = run.spawn(compression.decompress, stdin=source, stdout=subprocess.PIPE,
                          stderr=errors) if compression.decompress else None
        stream = child.stdout if child and child.stdout else source
        stopped = False
        try:
            while chunk := stream.read(CHUNK):
                scanner.feed(chunk)
                progress.update(task, advance=len(chunk), files=len(scanner.entries))
            scanner.finish()
        except BaseException as e:
            if child:
                child.kill()
                stopped = True
            if not isinstance(e, ArchiveDamaged):
                raise
            report.problems.append(str(e))
        finally:
            if child:
                child.wait()
        errors.seek(0)
        if child and child.returncode != 0 and not stopped:
            message = errors.read().decode("utf-8", "replace").strip()
            report.problems.append(f"{compression.name} could not decompress the archive: "
                                   f"{message or f'exit status {child.returncode}'}")
    report.entries = len(scanner.entries)
    if recorded is not None:
        report.problems += _compare_members(recorded.entries, scanner.entries)
    report.seconds = time.monotonic() - start
    return report


def _compare_members(expected: list[Entry], found: list[Entry]) -> list[str]:
    """Members matched by name, so one missing or extra line is one problem, not a shift of
    every line after it."""
    wanted = {e.path: e for e in expected}
    got = {e.path: e for e in found}
    problems = []
    for entry in found:
        want = wanted.get(entry.path)
        if want is None:
            problems.append(f"{escaped(entry.path)}: in the archive but not in the manifest")
        elif want != entry:
            fields = [f for f in (*CONTENT, *METADATA) if getattr(want, f) != getattr(entry, f)]
            problems.append(f"{escaped(entry.path)}: {', '.join(fields)} differ from the "
                            "manifest")
    problems += [f"{escaped(e.path)}: in the manifest but missing from the archive"
                 for e in expected if e.path not in got]
    if len(expected) - len(wanted) != 0 or len(found) - len(got) != 0:
        problems.append("a name appears twice in the manifest or the archive")
    return problems[:SHOWN] + ([f"… and {len(problems) - SHOWN} more"]
                               if len(problems) > SHOWN else [])


def escaped(path: str) -> str:
    """A member's name for a terminal: one line, whatever bytes it holds (see ui.escaped)."""
    return ui.escaped(path)


# --- a live tree -------------------------------------------------------------------------

_KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
          stat.S_IFCHR: "char", stat.S_IFBLK: "block", stat.S_IFIFO: "fifo"}


def scan(root: Path, patterns: Iterable[str]) -> list[Entry]:
    """The tree as a snapshot of it would record it, sockets aside (tar skips them too)."""
    excluded = ex.matcher(list(patterns))
    entries: list[Entry] = []
    first: dict[tuple[int, int], str] = {}
    hashed = 0
    with readahead.Readahead(root, excluded) as ahead:
        for path, relative, _ in ex.walk(root, excluded):
            entry = _entry(path, relative, first)
            if entry is not None:
                entries.append(entry)
                if entry.type == "file":
                    hashed += entry.size
                    ahead.consumed(hashed)
    return entries


def _entry(path: bytes, relative: str, first: dict[tuple[int, int], str]) -> Entry | None:
    st = os.lstat(path)
    kind = _KINDS.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None
    base: dict[str, Any] = {"path": relative, "type": kind, "mode": stat.S_IMODE(st.st_mode),
                            "uid": st.st_uid, "gid": st.st_gid, "mtime_ns": st.st_mtime_ns}
    if kind != "dir" and st.st_nlink > 1:
        origin = first.setdefault((st.st_dev, st.st_ino), relative)
        if origin != relative:
            return Entry(**{**base, "type": "hardlink", "target": origin})
    base["xattrs"] = tuple(sorted(
        (n, os.getxattr(path, n, follow_symlinks=False).hex())
        for n in os.listxattr(path, follow_symlinks=False)))
    if kind == "file":
        with open(path, "rb") as f:
            base["sha256"] = hashlib.file_digest(f, "sha256").hexdigest()
        base["size"] = st.st_size
    elif kind == "symlink":
        base["target"] = os.fsdecode(os.readlink(path))
    elif kind in ("char", "block"):
        base["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return Entry(**base)


@dataclass
class Differences:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    content: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, list[str]] = field(default_factory=dict)

    @property
    def none(self) -> bool:
        return not (self.added or self.removed or self.content or self.metadata)

    def to_json(self) -> dict[str, Any]:
        return {"identical": self.none, "added": self.added, "removed": self.removed,
                "changed_content": self.content, "changed_metadata": self.metadata}


def _resolved(entries: Iterable[Entry]) -> tuple[dict[str, Entry], dict[str, tuple[str, ...]]]:
    """Hardlinks become copies of their file, plus the group of names they share; which name
    tar met first then does not matter."""
    by_path: dict[str, Entry] = {}
    groups: dict[str, list[str]] = {}
    for entry in entries:
        if entry.type == "hardlink" and entry.target in by_path:
            origin = by_path[entry.target]
            by_path[entry.path] = Entry(**{**_fields(origin), "path": entry.path})
            groups.setdefault(entry.target, [entry.target]).append(entry.path)
        else:
            by_path[entry.path] = entry
    links = {p: tuple(sorted(g)) for g in groups.values() for p in g}
    return by_path, links


def _fields(entry: Entry) -> dict[str, Any]:
    return {f: getattr(entry, f) for f in Entry.__slots__}


def compare(snapshot: Iterable[Entry], live: Iterable[Entry]) -> Differences:
    old, old_links = _resolved(snapshot)
    new, new_links = _resolved(live)
    found = Differences(added=sorted(new.keys() - old.keys()),
                        removed=sorted(old.keys() - new.keys()))
    for path in sorted(old.keys() & new.keys()):
        a, b = old[path], new[path]
        content = [f for f in CONTENT if getattr(a, f) != getattr(b, f)]
        metadata = [f for f in METADATA if getattr(a, f) != getattr(b, f)]
        if old_links.get(path) != new_links.get(path):
            metadata.append("links")
        if content:
            found.content[path] = content
        if metadata:
            found.metadata[path] = metadata
    return found


def against(archive: Path, tree: Path) -> tuple[Report, Differences]:
    """What differs between the snapshot (its manifest) and the live tree `tree`."""
    start = time.monotonic()
    if not tree.is_dir():
        raise UsageError(f"--against {tree}: not a directory")
    recorded = manifest.read(manifest.path_for(archive))
    report = Report(Path(archive), entries=len(recorded.entries))
    _check_identity(Path(archive), recorded.meta, report)
    patterns = [e["pattern"] for e in recorded.meta.get("excludes", [])]
    live = scan(tree, patterns)
    report.seconds = time.monotonic() - start
    return report, compare(recorded.entries, live)
