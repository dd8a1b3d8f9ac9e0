"""One booted lab per test session: many checks, one boot.

The `lab` fixture builds (cached) and boots Xen + dom0 once; later issues' lab tests take it
as an argument. With XENLFS_TEST_LAB=NAME, a lab already up under that name (`xenlfs lab up
--instance NAME`) is used instead and left running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from xenlfs import settings
from xenlfs.lab import images, instance


@pytest.fixture(scope="session")
def lab_cache_dir() -> Path:
    return Path(os.environ.get("XENLFS_CACHE_DIR") or settings.default_cache_dir())


@pytest.fixture(scope="session")
def lab_artefacts(lab_cache_dir: Path) -> images.Artefacts:
    return images.build(images.BuildOptions(cache_dir=lab_cache_dir))


@pytest.fixture(scope="session")
def lab(lab_artefacts: images.Artefacts) -> Iterator[instance.Lab]:
    name = os.environ.get("XENLFS_TEST_LAB")
    if name:
        existing = instance.load(name)
        if existing is not None and existing.running():
            yield existing
            return
    options = instance.UpOptions(name=f"pytest-{os.getpid()}")
    with instance.one_shot(lab_artefacts, options) as booted:
        yield booted
