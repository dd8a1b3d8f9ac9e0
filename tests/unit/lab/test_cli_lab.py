from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import run_xenlfs


def test_lab_help_lists_the_verbs() -> None:
    result = run_xenlfs("lab", "--help")
    assert result.returncode == 0
    for verb in ("build", "up", "down", "status", "run", "attach", "push", "pull",
                 "clean"):
        assert verb in result.stdout


def test_mistyped_verb_suggests(tmp_path: Path) -> None:
    result = run_xenlfs("lab", "stauts")
    assert result.returncode == 2
    assert "did you mean 'status'?" in result.stderr


def test_without_qemu_the_lab_says_how_to_install_it(tmp_path: Path) -> None:
    result = run_xenlfs("lab", "up", "--cache-dir", str(tmp_path),
                        env={"PATH": str(Path(sys.executable).parent) + ":/nonexistent"})
    assert result.returncode == 3, result.stderr
    assert "qemu-system-x86_64 is not installed" in result.stderr
    assert "apt-get install qemu-system-x86" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_without_a_command_is_a_usage_error() -> None:
    result = run_xenlfs("lab", "run", "--instance", "unit-none", "--")
    assert result.returncode == 2
    assert "no command given" in result.stderr


def test_bad_disk_is_a_usage_error(tmp_path: Path) -> None:
    result = run_xenlfs("lab", "up", "--disk", str(tmp_path / "missing.img"))
    assert result.returncode == 2
    assert "missing.img is not a file" in result.stderr


def test_clean_dry_run_removes_nothing(tmp_path: Path) -> None:
    (tmp_path / "lab/dom0-x").mkdir(parents=True)
    result = run_xenlfs("lab", "clean", "--dry-run", "--cache-dir", str(tmp_path))
    assert result.returncode == 0
    assert "would free" in result.stdout
    assert (tmp_path / "lab/dom0-x").is_dir()
