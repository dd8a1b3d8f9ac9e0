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


def lab_up_for_tests() -> instance.Lab | None:
    """The lab XENLFS_TEST_LAB names, when it is up."""
    name = os.environ.get("XENLFS_TEST_LAB")
    existing = instance.load(name) if name else None
    return existing if existing is not None and existing.running() else None


@pytest.fixture(scope="session")
def lab(lab_artefacts: images.Artefacts) -> Iterator[instance.Lab]:
    existing = lab_up_for_tests()
    if existing is not None:
        yield existing
        return
    options = instance.UpOptions(name=f"pytest-{os.getpid()}")
    with instance.one_shot(lab_artefacts, options) as booted:
        yield booted
