"""No input can hurt the checker: device files, FIFOs, huge files, deep lists, long strings,
byte order marks and binary bytes each end in a plain file:line:col error (or a verdict),
never a hang, a traceback or memory out of proportion to the file."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from tests.conftest import ROOT
from xenlfs.errors import SourceError
from xenlfs.xl import cfg, check

BASE = 'name = "g"\nkernel = "/k"\n'


def check_cli(path: str) -> subprocess.CompletedProcess[str]:
    """`xenlfs guest check PATH` with a deadline: a hang fails the test instead of the run."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME="/nonexistent")
    return subprocess.run([sys.executable, "-m", "xenlfs", "guest", "check", path],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.mark.parametrize("path, kind", [("/dev/zero", "a device"), ("/dev/null", "a device"),
                                        ("/", "a directory")])
def test_a_file_that_is_not_regular_is_refused_unread(path: str, kind: str):
    result = check_cli(path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{path}:1:1: error: {path} is {kind}, not a config file" in result.stdout


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path):
    fifo = tmp_path / "g.cfg"
    os.mkfifo(fifo)
    result = check_cli(str(fifo))
    assert result.returncode == 1
    assert f"{fifo} is a FIFO, not a config file" in result.stdout


def test_a_file_beyond_the_size_cap_is_refused_unread(tmp_path: Path):
    big = tmp_path / "g.cfg"
    with big.open("wb") as f:
        f.truncate(cfg.MAX_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(SourceError, match="larger than 4 MiB"):
        cfg.read(big)


def nested(depth: int, opening: str = "[") -> str:
    return BASE + "x = " + opening * depth + '"a"' + "]" * depth + "\n"


def test_lists_as_deep_as_xl_allows_are_read():
    # The real xl reads 4996 levels and refuses 4997 (tests/system/xl checks this boundary).
    value = cfg.parse(nested(4996)).values["x"]
    for _ in range(4996):
        assert isinstance(value, cfg.List)
        value = value.items[0]
    assert isinstance(value, cfg.Atom) and value.text == "a"
    assert value.pos == (3, len("x = ") + 4996 + 1)
    with pytest.raises(SourceError, match="nested too deep"):
        cfg.parse(nested(4997))
    with pytest.raises(SourceError, match="nested too deep"):
        cfg.parse(nested(100_000))


def test_deep_lists_can_be_turned_into_plain_values():
    plain = cfg.parse(nested(4000)).plain()["x"]
    for _ in range(4000):
        assert isinstance(plain, list)
        plain = plain[0]
    assert plain == "a"


def test_a_long_string_costs_memory_in_proportion():
    piece = "a" * 3000 + "\\n"
    text = BASE + 'extra = "' + piece * 1000 + '"\n'  # 3 MB, escapes all along
    tracemalloc.start()
    try:
        config = cfg.parse(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert config.string("extra") == ("a" * 3000 + "\n") * 1000
    assert peak < 20 * len(text), f"{peak} bytes to parse {len(text)}"


def test_a_utf8_byte_order_mark_is_named():
    with pytest.raises(SourceError) as e:
        cfg.parse("\ufeff" + BASE, "g.cfg")
    assert (e.value.line, e.value.col) == (1, 1)
    assert "byte order mark" in e.value.what and "sed -i" in (e.value.fix or "")


@pytest.mark.parametrize("data, what, col", [
    (b"\xff\xfe\x00", "byte 0xFF, which is not UTF-8 text", 1),
    (b"\x00x = 1\n", "a NUL byte", 1),
    (b'x = "a"\x7fb\n', "control character U+007F", 8),
    (b"\xc3\xa9 = 1\n", "(U+00E9) is not allowed here", 1),
])
def test_binary_bytes_are_named_where_they_are(tmp_path: Path, data: bytes, what: str,
                                               col: int):
    path = tmp_path / "g.cfg"
    path.write_bytes(BASE.encode() + data)
    report = check.check_file(path)
    assert not report.ok
    (finding,) = report.findings
    assert (finding.line, finding.col) == (3, col) and what in finding.what and finding.fix


def test_many_distinct_keys_are_checked_without_a_scan_per_key():
    # the 10,000-line timing is bench/xl_check.py's; here: the answer stays right
    text = BASE + "".join(f"key{i} = {i}\n" for i in range(5000))
    report = check.check_config(cfg.parse(text))
    assert report.ok and sum("unknown key" in f.what for f in report.findings) == 5000


def test_what_the_file_holds_cannot_drive_the_terminal(tmp_path: Path):
    # xl takes any byte but a quote, backslash or newline inside a string: an escape
    # sequence in a value, or a newline in the file's name, is shown, never acted on
    folder = tmp_path / "two\nlines"
    folder.mkdir()
    path = folder / "g.cfg"
    path.write_bytes(BASE.encode() + b'type = "hvm"\nbios = "\x1b[2J\xfe"\n')
    result = check_cli(str(path))
    assert result.returncode == 1 and "\x1b" not in result.stderr + result.stdout
    shown = str(path).replace("\n", "\\n")
    assert f"{shown}:4:8: error: unknown bios '\\x1b[2J\\xfe'" in result.stdout
    assert f"{shown}: xl would refuse it" in result.stdout


def test_a_long_list_of_tiny_items_costs_memory_in_proportion():
    # the costliest file per byte: "1," is two bytes and one value; at the 4 MiB cap this
    # bound keeps the checker under a quarter of a GiB
    text = BASE + "x = [" + "1," * 100_000 + "1]\n"
    tracemalloc.start()
    try:
        config = cfg.parse(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    value = config.values["x"]
    assert isinstance(value, cfg.List) and len(value.items) == 100_001
    assert peak < 60 * len(text), f"{peak} bytes to parse {len(text)}"


def test_disk_specs_of_many_words_are_read():
    # each prefix's trailing context runs to the end of the spec: matched naively, 100 specs
    # of 4,000 prefixes (as long as xl's scanner allows) took over a minute
    spec = "phy:" * 4_000 + "/dev/x,xvda,w"
    disks = ", ".join(f'"{spec}"' for _ in range(100))
    report = check.check_config(cfg.parse(BASE + f"disk = [{disks}]\n"))
    assert report.guest is not None and len(report.guest.disks) == 100
    assert (report.guest.disks[0].target, report.guest.disks[0].vdev) == ("/dev/x", "xvda")


def test_a_disk_word_longer_than_xls_scanner_reads_is_refused():
    report = check.check_config(cfg.parse(BASE + 'disk = ["phy:' + "/a" * 9000 + ',xvda,w"]\n',
                                          "g.cfg"))
    (error,) = [f for f in report.findings if f.severity == "error"]
    assert (error.line, error.col) == (3, 10) and "past its buffer" in error.what


def test_many_additions_to_one_key_are_joined_once():
    # joined at each +=, 100,000 additions copied gigabytes and took minutes
    text = BASE + 'extra += "ab"\n' * 100_000 + "disk += []\n" + 'disk += ["x"]\n' * 1000
    config = cfg.parse(text)
    assert config.string("extra") == "ab" * 100_000
    assert cfg.plain(config.values["disk"]) == ["x"] * 1000


def test_numbers_of_ten_thousand_digits_are_read_as_c_reads_them():
    # Python refuses to convert more than 4300 decimal digits; C just overflows
    big = "9" * 10_000
    text = (BASE + f'memory = {big}\nvcpus = 1\ncpus = "{big}"\nirqs = ["{big}"]\n'
            f'disk = ["phy:/dev/x,d{big},w", "/x,raw,xvdb,w,colo-port={big}"]\n'
            f'vif = ["rate={big}Mb/s"]\n')
    report = check.check_config(cfg.parse(text, "g.cfg"))
    errors = {f.what.split(" ")[0] for f in report.findings if f.severity == "error"}
    assert errors == {"cpus", "irqs", "vif"}, errors  # xl too: the rest it takes or ignores
