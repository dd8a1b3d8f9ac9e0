"""The corpus: each file's name says whether real xl accepts it (ok-*) or refuses it (bad-*);
tests/system/xl/test_oracle.py checks those labels against xl itself. Here: our checker
agrees with every label, and fuzzing finds no exception other than our typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xenlfs.errors import SourceError
from xenlfs.xl import cfg, check, disk, vif

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.cfg"))


def test_the_corpus_has_both_kinds():
    kinds = {f.name.split("-")[0] for f in FILES}
    assert kinds == {"ok", "bad"} and len(FILES) > 60


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_checker_accepts_and_refuses_as_xl_does(path: Path):
    report = check.check_file(path)
    errors = [str(f) for f in report.findings if f.severity == "error"]
    assert report.ok == path.name.startswith("ok-"), errors
    for finding in report.findings:
        assert finding.line >= 1 and finding.col >= 1 and finding.fix


PIECES = ["name", "memory", "disk", "vif", "a.b", "=", "+=", " ", "\t", "\n", "\r", ";", ",",
          "[", "]", "#", "# c\n", "'", '"', "\\", "\\n", "\\x4", "\\12", "0x1f", "12", "1g",
          '"s"', "'t'", "(", "-", ":", "é", "\0", "A"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join) | st.text(max_size=60))
def test_parser_raises_only_source_errors(text: str):
    try:
        config = cfg.parse(text, "f.cfg")
    except SourceError as e:
        assert e.line >= 1 and e.col >= 1 and str(e).startswith("f.cfg:")
        return
    check.check_config(config)  # the checker never fails on what parses


SPEC = ["phy:", "file:", "tap:", "aio:", "qcow2:", "foo:", "/dev/sdc12", "xvda1", "hdc:cdrom",
        "raw", "w", "ro", ",", ", ", "=", "target=", "vdev=", "format=", "access=", "devtype=",
        "cdrom", "acess=r", "script=", "backendtype=", "colo-port=", "0", "x"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(SPEC), max_size=12).map("".join) | st.text(max_size=40))
def test_disk_parser_raises_only_its_error(spec: str):
    try:
        d = disk.parse(spec)
    except disk.DiskSpecError as e:
        assert 0 <= e.offset <= len(spec) and e.fix
        return
    assert d.vdev is not None and d.format is not None


VIF = ["mac=", "00:16:3e:00:00:01", "zz", "bridge=", "xenbr0", "rate=", "10Mb/s", "@20ms",
       "devid=", "mtu=", "1", "type=", "vif", ",", " ", "=", "trusted", "brige="]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VIF), max_size=10).map("".join) | st.text(max_size=40))
def test_vif_parser_raises_only_its_error(spec: str):
    try:
        vif.parse(spec)
    except vif.VifSpecError as e:
        assert e.fix
