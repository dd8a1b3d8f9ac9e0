"""The lab's cache: one directory per artefact, named by a hash of its inputs.

The inputs are the Debian package versions apt resolves for the suite, the options, the files
xenlfs adds and BUILDER_VERSION. A changed input gives a new key and so a rebuild; a stale
cache can never hide a change. An artefact is built beside its final name and renamed into
place when complete. Keys are shared with every cache already built (CI's, yesterday's): the
way one is computed never changes without a BUILDER_VERSION bump.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from xenlfs import run

# Bump when the way any artefact is built changes: it is part of every cache key.
BUILDER_VERSION = 2


def cache_key(inputs: Mapping[str, Any]) -> str:
    data = {"builder": BUILDER_VERSION, **inputs}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def lab_cache(cache_dir: Path) -> Path:
    return cache_dir / "lab"


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    """One builder at a time per cache directory."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def building(target: Path) -> Iterator[Path]:
    """A fresh directory beside `target`; renamed onto it when the body succeeds."""
    work = target.with_name(target.name + ".building")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if target.exists():  # an incomplete or older artefact under the same key
        shutil.rmtree(target)
    os.rename(work, target)


def clean(cache_dir: Path) -> int:
    """Remove every cached lab artefact; returns the bytes freed."""
    cache = lab_cache(cache_dir)
    if not cache.exists():
        return 0
    freed = 0
    for path in cache.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                freed += path.lstat().st_size
    if not run.dry_run():
        with locked(cache):
            for entry in cache.iterdir():
                if entry.name == ".lock":
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    return freed
