from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenlfs.lab import cache


def test_cache_key_changes_with_every_input(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"xen": "4.17.5", "packages": ["a", "b"]}
    key = cache.cache_key(base)
    assert key == cache.cache_key(dict(reversed(list(base.items()))))
    assert key != cache.cache_key({**base, "xen": "4.17.7"})
    assert key != cache.cache_key({**base, "packages": ["a"]})
    monkeypatch.setattr(cache, "BUILDER_VERSION", cache.BUILDER_VERSION + 1)
    assert key != cache.cache_key(base)


def test_cache_key_of_a_fixed_input_never_changes() -> None:
    # Every warm cache (CI's, a user's) is found by these keys: a new way of computing them
    # would rebuild everything silently. Change this value only with a BUILDER_VERSION bump.
    assert cache.cache_key({"xen": "4.17.5", "packages": ["a", "b"]}) == "f29d21f00f86da6a"


def test_building_renames_on_success_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with cache.building(tmp_path / "a") as work:
        (work / "f").write_text("x")
    assert (tmp_path / "a/f").read_text() == "x"
    with pytest.raises(RuntimeError), cache.building(tmp_path / "b") as work:
        (work / "f").write_text("x")
        raise RuntimeError
    assert sorted(os.listdir(tmp_path)) == ["a"]


def test_clean_empties_the_lab_cache(tmp_path: Path) -> None:
    lab_dir = cache.lab_cache(tmp_path)
    (lab_dir / "dom0-1").mkdir(parents=True)
    (lab_dir / "dom0-1/initrd.cpio").write_bytes(b"x" * 1000)
    (lab_dir / "versions.json").write_text("{}")
    assert cache.clean(tmp_path) >= 1000
    assert [p.name for p in lab_dir.iterdir()] == [".lock"]
