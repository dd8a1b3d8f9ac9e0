"""Snapshot output as a user reads it: piped or logged, a line per step with its time and
never a carriage-return redraw; `snapshot list` one archive per line, sizes as a user writes
them; on a terminal, progress bars and a list as wide as the terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.system.snapshot.conftest import make_tree
from tests.unit.test_output_forms import BOX, assert_fits, assert_plain, on_terminal, piped

HIDE_CURSOR = "\x1b[?25l"


def test_create_extract_and_list_in_a_log(workdir: Path):
    root = make_tree(workdir / "root")
    archive = workdir / "snaps/first.tar.zst"
    archive.parent.mkdir()
    made = piped("snapshot", "create", "--root", str(root), str(archive))
    assert made.returncode == 0, made.stderr
    for stream in (made.stdout, made.stderr):
        assert "\r" not in stream and "\x1b" not in stream
    assert re.search(rf"^==> snapshot {re.escape(str(root))} to .*\n    snapshot .* done in "
                     r"\d+\.\d s$", made.stderr, re.M), made.stderr
    assert re.search(r": \d+ entries, [\d.]+ [KM]iB of files in [\d.]+ [KM]iB, \d+\.\d s; ",
                     made.stdout), made.stdout
    (workdir / "snaps/killed.tar.zst.partial-123").write_bytes(b"left by kill -9")
    unpacked = piped("snapshot", "extract", str(archive), str(workdir / "out"))
    assert unpacked.returncode == 0, unpacked.stderr
    assert "\r" not in unpacked.stderr and "done in" in unpacked.stderr

    rows = json.loads(piped("snapshot", "list", "--json", str(workdir / "snaps")).stdout)
    listed = piped("snapshot", "list", str(workdir / "snaps"))
    lines = assert_plain(listed.stdout)
    assert lines[0].split() == ["archive", "size", "created", "root", "status"]
    assert len(lines) == 1 + len(rows)
    for row in rows:  # exact bytes in --json, a size a user reads in the list
        [line] = [line for line in lines if line.startswith(row["archive"] + " ")]
        assert re.search(r"  \d+(\.\d+)? (B|KiB|MiB)  ", line), line
        assert line.endswith(row["status"])
    seen = on_terminal("snapshot", "list", str(workdir / "snaps"), width=60)
    assert BOX.search(seen)
    assert_fits(seen, 60)


def test_progress_is_drawn_only_on_a_terminal(workdir: Path):
    root = make_tree(workdir / "root")
    drawn = on_terminal("snapshot", "create", "--root", str(root), str(workdir / "a.tar.zst"),
                        raw=True)
    assert HIDE_CURSOR in drawn  # rich's live progress display started
    logged = piped("snapshot", "create", "--root", str(root), str(workdir / "b.tar.zst"))
    assert logged.returncode == 0, logged.stderr
    assert HIDE_CURSOR not in logged.stderr and "\r" not in logged.stderr
