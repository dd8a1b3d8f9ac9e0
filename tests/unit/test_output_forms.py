"""Every table or report xenlfs prints, read as a user reads it: piped (`| cat`, a CI log,
`script`) it is plain text with one finding per line; on a terminal (a real pseudo-terminal)
it is a table as wide as the terminal, COLUMNS honoured; NO_COLOR and TERM=dumb get the
plain form even on a terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import ROOT
from xenlfs import settings, ui
from xenlfs.commands.lab_demo import print_report
from xenlfs.lab.demo import DemoReport

KERNEL_DATA = ROOT / "tests/unit/kernel/data"
TINY = str(KERNEL_DATA / "tinyconfig-6.1.config")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = re.compile("[\u2500-\u257f]")  # box drawing
GRUB_CFG = """\
set default="xenlfs-xen"
set timeout=5
menuentry "GNU/Linux, with Linux 6.1.0-13-amd64 and a title long enough to wrap in a narrow \
terminal" --id gnulinux {
    linux /vmlinuz-6.1.0-13-amd64 root=/dev/sda2 ro
}
menuentry 'LFS, Xen' --id xenlfs-xen {
    multiboot /xen.gz
}
"""


def environment(**extra: str) -> dict[str, str]:
    """The user's environment without the variables that pick a form, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM")}
    return {**env, "PYTHONPATH": str(ROOT / "src"), "XDG_CONFIG_HOME": "/nonexistent",
            "TERM": "xterm", **extra}


def piped(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command line with stdout and stderr to pipes, as in `xenlfs … | cat`."""
    return subprocess.run([sys.executable, "-m", "xenlfs", *args], capture_output=True,
                          text=True, env=environment(**env), check=False)


def on_terminal(*args: str, width: int = 100, raw: bool = False, **env: str) -> str:
    """The real command line on a pseudo-terminal `width` columns wide: what the user sees
    (stdout and stderr together), colour codes and carriage returns taken out (unless
    `raw`)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "xenlfs", *args], stdin=slave, stdout=slave,
                            stderr=slave, env=environment(**env), close_fds=True)
    os.close(slave)
    written = read_all(master).decode()
    proc.wait(timeout=60)
    return written if raw else ANSI.sub("", written).replace("\r\n", "\n")


def read_all(master: int) -> bytes:
    """What was written to a pseudo-terminal, once every writer has closed it."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return b"".join(chunks)


def assert_plain(text: str) -> list[str]:
    assert text.endswith("\n")
    assert not BOX.search(text), text
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert all(line == line.rstrip() for line in lines)  # nothing padded to a width
    return lines


def assert_fits(text: str, width: int) -> list[str]:
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, too_wide
    return lines


def the_line(lines: list[str], *parts: str) -> str:
    """The one line holding all of `parts`, in order."""
    pattern = re.compile(".*".join(re.escape(p) for p in parts))
    found = [line for line in lines if pattern.search(line)]
    assert len(found) == 1, (parts, found)
    return found[0]


def the_row(lines: list[str], *cells: str) -> str:
    """The one line that is exactly this row: these cells, apart by two spaces or more."""
    cells_ = list(cells)
    while cells_ and not cells_[-1]:
        cells_.pop()
    pattern = re.compile(" {2,}".join(re.escape(c) for c in cells_))
    found = [line for line in lines if pattern.fullmatch(line)]
    assert len(found) == 1, (cells, found)
    return found[0]


def test_doctor_piped_is_one_line_per_finding_whatever_columns_says():
    findings = json.loads(piped("doctor", "--json").stdout)["findings"]
    result = piped("doctor", COLUMNS="40")
    lines = assert_plain(result.stdout)
    assert lines[:2] == ["Prerequisites of Xen 4.17", lines[1]]
    assert lines[1].split() == ["status", "what", "found", "needed", "how", "to", "fix"]
    for f in findings:
        the_row(lines, f["status"], f["name"], f["found"], f["needed"], f["fix"])
    assert len(lines) == 2 + len(findings) + 1  # title, header, findings, summary
    problems = [f["name"] for f in findings if f["problem"]]
    assert lines[-1] == (f"{len(problems)} required prerequisite(s) missing: "
                         + ", ".join(problems) if problems else "everything required is there")
    assert result.stderr == ""  # the summary is on the report's stream
    # Never formatted to a width: the same text for any COLUMNS.
    assert piped("doctor", COLUMNS="200").stdout == result.stdout


@pytest.mark.parametrize("width", [60, 120])
def test_doctor_on_a_terminal_is_a_table_as_wide_as_the_terminal(width):
    drawn = on_terminal("doctor", width=width, raw=True)
    assert "\x1b[32mok" in drawn  # in colour
    seen = ANSI.sub("", drawn).replace("\r\n", "\n")
    lines = assert_fits(seen, width)
    assert BOX.search(seen)
    if width < 80:  # narrower than any machine's findings: the table fills the terminal
        assert max(len(line) for line in lines) == width
    assert "Prerequisites of Xen 4.17" in seen


def test_columns_overrides_the_terminal_width():
    seen = on_terminal("doctor", width=150, COLUMNS="70")
    assert max(len(line) for line in assert_fits(seen, 70)) == 70


@pytest.mark.parametrize("columns", ["0", "30"])
def test_a_terminal_too_narrow_for_the_table_gets_every_finding_plain(columns):
    findings = json.loads(piped("doctor", "--json").stdout)["findings"]
    seen = on_terminal("doctor", COLUMNS=columns)
    assert not BOX.search(seen)
    lines = seen.splitlines()
    for f in findings:
        the_row(lines, f["status"], f["name"], f["found"], f["needed"], f["fix"])
    assert "required prerequisite(s) missing" in " ".join(seen.split())  # however narrow


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_color_and_dumb_terminals_get_the_plain_form(env):
    seen = on_terminal("doctor", width=60, **env)
    assert not BOX.search(seen) and "\x1b" not in seen
    assert seen.replace("\r", "") == piped("doctor").stdout


def test_kernel_check_piped_and_on_a_terminal():
    report = json.loads(piped("kernel", "check", TINY, "--role", "domU", "--json").stdout)
    result = piped("kernel", "check", TINY, "--role", "domU")
    assert result.returncode == 1
    lines = assert_plain(result.stdout)
    for option in report["options"]:
        [line] = [line for line in lines if line.split()[1:2] == [option["symbol"]]]
        assert line.startswith(option["status"] + " ")
        if not option["met"]:
            assert line.endswith(option["why"])
    failing = [o for o in report["options"] if not o["met"] and o["level"] == "required"]
    assert lines[-1].startswith(f"{len(failing)} required option(s) missing for a domU")
    seen = on_terminal("kernel", "check", TINY, "--role", "domU", width=72)
    assert_fits(seen, 72)
    assert BOX.search(seen) and "CONFIG_XEN_PV" in seen


def test_config_show_gives_sizes_as_the_user_writes_them(tmp_path: Path):
    cfg = tmp_path / "xenlfs.toml"
    cfg.write_text('[lab]\ndom0_memory = "1536M"\n')
    lines = assert_plain(piped("--config", str(cfg), "config", "show").stdout)
    assert re.fullmatch(r"lab\.memory +3 GiB +default", the_line(lines, "lab.memory "))
    assert re.fullmatch(rf"lab\.dom0_memory +1536 MiB +{re.escape(str(cfg))}",
                        the_line(lines, "lab.dom0_memory"))
    assert re.fullmatch(r"lab\.xen +\(not set\) +default", the_line(lines, "lab.xen "))
    rows = {r["key"]: r for r in json.loads(
        piped("--config", str(cfg), "config", "show", "--json").stdout)}
    assert rows["lab.memory"]["value"] == 3 << 30  # --json: exact numbers
    assert rows["lab.dom0_memory"]["value"] == 1536 << 20
    assert rows["lab.xen"]["value"] is None
    assert_fits(on_terminal("config", "show", width=64), 64)


def test_grub_list_piped_and_on_a_terminal(tmp_path: Path):
    cfg = tmp_path / "grub.cfg"
    cfg.write_text(GRUB_CFG)
    result = piped("grub", "list", "--grub-cfg", str(cfg))
    lines = assert_plain(result.stdout)
    assert the_line(lines, "GNU/Linux", "narrow terminal'", "gnulinux").startswith(" ")
    assert the_line(lines, f"{cfg}:6", "'LFS, Xen'", "xenlfs-xen").startswith("* ")
    assert lines[-1] == "(* default, x written by xenlfs)"
    seen = on_terminal("grub", "list", "--grub-cfg", str(cfg), width=64)
    assert_fits(seen, 64)
    assert BOX.search(seen)


def test_lab_status_piped():
    name = f"output-{os.getpid()}"
    result = piped("lab", "status", "--instance", name)
    assert result.returncode == 0, result.stderr
    assert assert_plain(result.stdout) == [f"lab {name!r}: down"]


def test_table_rows_stay_one_line_whatever_a_cell_holds():
    table = ui.Table("name", "note")
    table.add_row("a\nb", "tab\there")
    table.add_row("c", "")
    assert table.plain() == "name  note\na\\nb  tab\\there\nc\n"


def test_plain_columns_line_up_with_wide_characters():
    table = ui.Table("archive", "size")
    table.add_row("スナップ.tar.zst", "1 GiB")
    table.add_row("lfs.tar.zst", "2 GiB")
    first, second = table.plain().splitlines()[1:]
    assert first.index("1 GiB") + 4 == second.index("2 GiB")  # 4 wide characters: 4 more


@pytest.mark.parametrize("size", [0, 1, 1000, 4096, 1536 << 20, 3 << 30, 1 << 30, 5 << 40])
def test_exact_sizes_read_back_as_the_same_number(size):
    assert settings.parse_size(ui.size(size)) == size


def test_sizes_and_durations_read_as_a_user_writes_them():
    assert [ui.size(n) for n in (3 << 30, 1536 << 20, 123456789, 512)] == \
        ["3 GiB", "1536 MiB", "118 MiB", "512 B"]
    assert [ui.seconds(s) for s in (0.42, 75.4, 3725)] == ["0.4 s", "1 min 15 s", "1 h 02 min"]


def demo_report() -> tuple[DemoReport, str]:
    report = DemoReport(console_tail=["xenguest1 login: root", "\x1b[1mbold\x1b[0m\rredrawn"],
                        guest_view={"hypervisor": "xen", "root": "/dev/root ext4"},
                        guest_listed={"name": "xenguest1", "id": 3, "memory": 256},
                        logs={"serial": "/var/log/xenlfs/lab/serial.log"})
    report.times.steps = [("step 0: snapshot the reference LFS root", 3.24),
                          ("lab: build (cached) and boot Xen + dom0", 75.4)]
    return report, "The PV guest booted under Xen"


def test_demo_report_piped(monkeypatch: pytest.MonkeyPatch):
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    report, verdict = demo_report()
    read, write = os.pipe()
    with open(write, "w") as out:
        print_report(report, [], out)
    with open(read) as given:
        lines = assert_plain(given.read())
    assert r"\x1b[1mbold\x1b[0m\rredrawn" in lines  # a console line stays one line
    the_row(lines, "xenguest1", "3", "256 MiB")
    the_row(lines, "step 0: snapshot the reference LFS root", "3.2 s")
    the_row(lines, "lab: build (cached) and boot Xen + dom0", "1 min 15 s")
    assert lines[-1].startswith(verdict)


def test_demo_report_on_a_terminal(monkeypatch: pytest.MonkeyPatch):
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "44")
    report, verdict = demo_report()
    master, slave = pty.openpty()
    with open(slave, "w") as terminal:
        print_report(report, [], terminal)
    seen = ANSI.sub("", read_all(master).decode()).replace("\r\n", "\n")
    assert BOX.search(seen) and verdict in seen
    assert_fits(seen, 44)
