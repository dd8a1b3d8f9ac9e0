"""A guest's NAME is checked where it enters, by one function, for every verb that takes one:
a bad name is a usage error (exit 2) that says why, before anything is made or run."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from xenlfs.errors import UsageError
from xenlfs.xl import name

LONG = "x" * 300
BAD = {
    "": "empty",
    LONG: "300 characters",
    "a/../../x": "'/'",
    "../x": "'/'",
    ".hidden": "starts with '.'",
    "-c": "option",
    "two\nlines": "'\\n'",
    "tab\there": "'\\t'",
    "a b": "a space",
    "bell\x07": "'\\x07'",
    "42": "domain id",
}


@pytest.mark.parametrize("bad", sorted(BAD))
def test_bad_names_say_why(bad: str):
    assert BAD[bad] in (name.problem(bad) or "")
    with pytest.raises(UsageError) as error:
        name.check(bad)
    assert error.value.hint == name.RULES
    assert "\n" not in error.value.message  # escaped, never printed raw


@pytest.mark.parametrize("good", ["xenguest1", "lfs-12.2_test", "x" * 64, "Domain.1", "é"])
def test_good_names_pass(good: str):
    assert name.check(good) == good


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snap") / "root.tar"
    with tarfile.open(path, "w") as tar:
        tar.addfile(tarfile.TarInfo("./etc"))
    return path


def verbs(archive: Path, target: Path) -> dict[str, list[str]]:
    return {
        "prepare": ["guest", "prepare", "NAME", "--snapshot", str(archive), "--target",
                    str(target), "--dry-run"],
        "config": ["guest", "config", "NAME", "--kernel", "/boot/k", "--memory", "256",
                   "--dry-run"],
        "create": ["guest", "create", "NAME", "--dry-run"],
        "console": ["guest", "console", "NAME"],
        "shutdown": ["guest", "shutdown", "NAME", "--dry-run"],
        "destroy": ["guest", "destroy", "NAME", "--dry-run"],
    }


# For NAME|FILE verbs (config, create) a value with '/' is a file path (see the test below).
CASES = [(verb, bad) for verb in ("prepare", "config", "create", "console", "shutdown",
                                  "destroy")
         for bad in (LONG, "a/../../x", "new\nline")
         if not ("/" in bad and verb in ("config", "create"))]


@pytest.mark.parametrize(("verb", "bad"), CASES)
def test_every_verb_refuses_a_bad_name_with_exit_2(xenlfs, archive: Path, tmp_path: Path,
                                                   verb: str, bad: str):
    argv = [bad if a == "NAME" else a for a in verbs(archive, tmp_path / "target")[verb]]
    result = xenlfs(*argv, "--config-dir", str(tmp_path / "xen")) if verb in (
        "prepare", "config", "create", "shutdown") else xenlfs(*argv)
    assert result.returncode == 2, result.stderr
    assert "cannot name a guest" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not (tmp_path / "xen").exists() and not (tmp_path / "target").exists()


def test_a_config_file_path_names_the_guest_by_its_file_name(xenlfs, tmp_path: Path):
    out = tmp_path / "dir" / "web1"
    result = xenlfs("guest", "config", str(out), "--kernel", "/boot/k", "--memory", "256",
                    "--dry-run")
    assert result.returncode == 0, result.stderr
    assert '+name = "web1"' in result.stdout


def test_lab_demo_checks_its_guest_name_when_parsing():
    from xenlfs.cli import build_parser

    argv = ["lab", "demo", "--guest", "a/../../x"]
    with pytest.raises(SystemExit) as exit_:
        build_parser(argv).parse_args(argv)
    assert exit_.value.code == 2
