from __future__ import annotations

import logging

import pytest

from xenlfs import run
from xenlfs.errors import CommandFailed, ToolMissing


def test_captures_output():
    result = run.run(["sh", "-c", "echo out; echo err >&2"])
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_failure_becomes_typed_error_with_stderr_tail():
    with pytest.raises(CommandFailed) as caught:
        run.run(["sh", "-c", "echo broken >&2; exit 4"], hint="try again")
    assert caught.value.returncode == 4
    assert "exit status 4" in str(caught.value)
    assert "broken" in str(caught.value)
    assert "hint: try again" in str(caught.value)


def test_missing_program_names_the_package():
    with pytest.raises(ToolMissing) as caught:
        run.run(["no-such-program-xenlfs"])
    assert "no-such-program-xenlfs is not installed" in str(caught.value)
    assert caught.value.exit_code == 3


def test_missing_known_program_hints_debian_and_lfs(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolMissing) as caught:
        run.run(["zstd", "--version"])
    assert "apt-get install zstd" in str(caught.value)
    assert "LFS book" in str(caught.value)


def test_dry_run_skips_writing_commands_but_runs_readers(tmp_path, caplog):
    marker = tmp_path / "written"
    caplog.set_level(logging.INFO, logger="xenlfs")
    with run.dry_run_as(True):
        run.run(["touch", str(marker)], writes=True)
        seen = run.run(["echo", "read"]).stdout
    assert not marker.exists()
    assert seen == "read\n"
    assert f"would run: touch {marker}" in caplog.text


def test_command_lines_are_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="xenlfs")
    run.run(["echo", "a b"])
    assert "+ echo 'a b'" in caplog.text


def test_timeout_is_an_error():
    with pytest.raises(CommandFailed) as caught:
        run.run(["sleep", "5"], timeout=0.2)
    assert "did not finish within 0.2 s" in str(caught.value)
