"""The provider directory Ganeti reads: its files, computed from the snapshots xenlfs knows.

Ganeti (lib/backend.py, _TryOSFromDisk) wants `ganeti_api_version`, `parameters.list` and the
executable scripts create, export, import, rename and verify as regular files; `variants.list`
is optional. Each script only execs xenlfs with the script's name, so the logic lives in
Python (ganeti/scripts.py). Ganeti runs them with a bare PATH (/sbin:/bin:/usr/sbin:/usr/bin),
so they name the Python that runs xenlfs by its absolute path.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from xenlfs import files
from xenlfs.errors import UsageError
from xenlfs.snapshot import formats

API_VERSION = 20
SCRIPTS = ("create", "import", "export", "rename", "verify")
VARIANTS_MAP = "xenlfs-variants.tsv"  # variant TAB archive: which snapshot a variant names

# (name, help) as parameters.list has them; Ganeti passes each as OSP_<NAME upper-cased>.
PARAMETERS = (
    ("hostname", "the guest's host name (default: the first label of the instance name)"),
    ("ip", "the guest's IPv4 address with prefix (192.168.1.2/24), or 'dhcp'"),
    ("gateway", "the guest's IPv4 gateway (with a static ip)"),
    ("root_password_hash", "root's password as a crypt hash (openssl passwd -6)"),
    ("ssh_key", "a public key for root's authorized_keys (the key's text)"),
    ("swap", "an fstab swap line for this guest device, e.g. /dev/xvdb"),
)

_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def variant_name(archive: Path) -> str:
    """A Ganeti variant for a snapshot: its file name without the archive suffix, lower case,
    other characters turned into '-'. Stable: the same file gives the same variant."""
    name = archive.name
    for suffix in formats.ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    safe = _UNSAFE.sub("-", name.lower()).strip("-.") or "snapshot"
    if safe != name:
        # Two names that differ only in what was replaced must not share a variant.
        safe += "-" + hashlib.sha256(archive.name.encode("utf-8", "surrogateescape")
                                     ).hexdigest()[:6]
    return safe


@dataclass(frozen=True)
class ProviderFile:
    name: str
    text: str
    mode: int


def script_text(command: list[str], provider_dir: Path, script: str,
                pythonpath: str | None = None) -> str:
    # The script's name last: Ganeti's arguments (verify's 'parameters') follow it.
    argv = [*command, "ganeti", "script", "--dir", str(provider_dir), script]
    # Ganeti clears the environment: a PYTHONPATH that made xenlfs importable is kept here.
    keep = f"export PYTHONPATH={shlex.quote(pythonpath)}\n" if pythonpath else ""
    return ("#!/bin/sh\n"
            "# Written by 'xenlfs ganeti install-os': Ganeti's OS interface (API 20) calls\n"
            f"# this for '{script}'; xenlfs reads Ganeti's environment and does the work.\n"
            f"{keep}exec {shlex.join(argv)} \"$@\"\n")


def provider_files(command: list[str], provider_dir: Path, snapshots: Iterable[Path],
                   pythonpath: str | None = None) -> list[ProviderFile]:
    """Every file of the provider. `command` runs xenlfs (absolute paths), with
    `pythonpath` if xenlfs is only importable with it."""
    variants: dict[str, Path] = {}
    for archive in sorted(snapshots):
        if any(ord(c) < 32 for c in str(archive)) or "\t" in str(archive):
            raise UsageError(f"snapshot {archive!r}: a control character in its path",
                             hint="rename the snapshot file")
        variants.setdefault(variant_name(archive), archive)
    out = [ProviderFile("ganeti_api_version", f"{API_VERSION}\n", 0o644),
           ProviderFile("parameters.list",
                        "".join(f"{name} {help_}\n" for name, help_ in PARAMETERS), 0o644),
           ProviderFile("variants.list", "".join(f"{v}\n" for v in variants), 0o644),
           ProviderFile(VARIANTS_MAP, "".join(f"{v}\t{a}\n" for v, a in variants.items()),
                        0o644)]
    out += [ProviderFile(s, script_text(command, provider_dir, s, pythonpath), 0o755)
            for s in SCRIPTS]
    return out


def read_variants(provider_dir: Path) -> dict[str, Path]:
    """The variant → snapshot map install-os wrote."""
    path = provider_dir / VARIANTS_MAP
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}",
                         hint="write the provider again: xenlfs ganeti install-os") from e
    out: dict[str, Path] = {}
    for number, line in enumerate(text.splitlines(), 1):
        variant, tab, archive = line.partition("\t")
        if not tab or not variant:
            raise UsageError(f"{path}:{number}:1: expected 'VARIANT<TAB>ARCHIVE'",
                             hint="write the provider again: xenlfs ganeti install-os")
        out[variant] = Path(archive)
    return out


def plan(provider_dir: Path, wanted: list[ProviderFile]) -> list[files.FileChange]:
    """The files whose text or mode differs from what is there (reads only)."""
    if provider_dir.exists() and not provider_dir.is_dir():
        raise UsageError(f"{provider_dir} exists and is not a directory")
    changes = []
    for item in wanted:
        path = provider_dir / item.name
        old, old_mode = None, None
        if path.is_file():
            old = path.read_text(encoding="utf-8", errors="surrogateescape")
            old_mode = path.stat().st_mode & 0o777
        change = files.FileChange(path, old, item.text, item.mode, old_mode)
        if change.needed:
            changes.append(change)
    return changes


def install(changes: list[files.FileChange]) -> None:
    """Each change written (its directory made); under --dry-run each diff shown."""
    for change in changes:
        change.apply()
