"""What the user sees: messages, steps with their timings, progress, JSON and tables.

Two forms, picked from the stream (see `plain`):
- on a terminal: colour, rich tables as wide as the terminal (COLUMNS honoured), progress bars;
- off one (a pipe, a log, CI, `script`), or with NO_COLOR or TERM=dumb: plain text, one row per
  line, columns aligned with spaces, nothing wrapped, cut or drawn; a step is a line with its time.

A verb that prints a table or a report of findings builds a `Table` and calls its `print`:

    table = ui.Table("status", "what", "found", title="Prerequisites of Xen 4.17")
    for f in findings:
        table.add_row(f.status, f.name, f.found, style="red" if f.problem else "green")
    table.print(summary="2 missing: GLib, Pixman", style="red")

Cells are plain text (never rich markup); sizes go through `size` ("3 GiB"), durations through
`seconds`; `--json` prints the exact numbers instead (`print_json`). A line that is not a row
(a verdict) goes through `say`. A new verb's report (e.g. a rehearsal's phases) is a Table
too, so it reads the same piped and on a terminal; tests/unit/test_output_forms.py has the
helpers that check both forms through the real command line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("xenlfs")


# rich is imported on first use: importing it costs seconds under the lab's TCG dom0,
# where xenlfs runs once per command.
@cache
def _console(to_stderr: bool) -> Console:
    from rich.console import Console

    # rich honours NO_COLOR and stops colouring when the stream is not a terminal.
    return Console(stderr=to_stderr, highlight=False, soft_wrap=True)


def _console_of(stream: TextIO) -> Console:
    if stream in (sys.stdout, sys.stderr):
        return _console(stream is sys.stderr)
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=True)


def __getattr__(name: str) -> Console:
    if name in ("stdout", "stderr"):
        return _console(name == "stderr")
    raise AttributeError(name)


def _dumb() -> bool:
    # rich's own test (Console.is_dumb_terminal): such a terminal cannot move the cursor.
    return os.environ.get("TERM", "").lower() in ("dumb", "unknown")


def interactive() -> bool:
    """Progress bars (which redraw a line) only on a terminal that can redraw: stderr."""
    return sys.stderr.isatty() and not _dumb()


def plain(stream: TextIO) -> bool:
    """The plain form for this stream: not a terminal (unless FORCE_COLOR asks for colour
    anyway, as rich reads it), a dumb terminal, or NO_COLOR set."""
    if os.environ.get("NO_COLOR") or _dumb():
        return True
    return not stream.isatty() and not os.environ.get("FORCE_COLOR")


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(count: int | float) -> str:
    """Bytes as a user writes them: '3 GiB', '1536 MiB' when a whole number of a unit
    (settings.parse_size reads them back), else three significant digits: '118 MiB',
    '1.81 KiB'."""
    exact = int(count) if count == int(count) else None
    if exact == 0:
        return "0 B"
    for unit in reversed(range(1, len(_UNITS))):
        if exact is not None and exact % 1024**unit == 0 and abs(exact) // 1024**unit < 10000:
            return f"{exact // 1024**unit} {_UNITS[unit]}"
    if exact is not None and abs(exact) < 1024:
        return f"{exact} B"
    unit = 0
    number = float(count)
    while abs(number) >= 1024 and unit < len(_UNITS) - 1:
        number /= 1024
        unit += 1
    return f"{number:.3g} {_UNITS[unit]}" if abs(number) >= 1 else f"{number:.2f} B"


def seconds(value: float) -> str:
    """A duration: '0.4 s', '12.3 s', '3 min 05 s', '1 h 02 min'."""
    if value < 60:
        return f"{value:.1f} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _width(text: str) -> int:
    """Columns a text takes on a terminal: CJK and other wide characters take two, combining
    marks none (rich's cell_len, without importing rich)."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF"
               else 1 for c in text)


def say(line: str, *, style: str = "", stream: TextIO | None = None) -> None:
    """One line of a report (a summary, a verdict): coloured `style` and wrapped to the width
    on a terminal, as it is off one; always ending with a newline."""
    out = stream or sys.stdout
    console = None if plain(out) else _console_of(out)
    if console is None or console.width < _NARROWEST:
        out.write(line + "\n")
        out.flush()
        return
    from rich.text import Text

    console.print(Text(line, style=style), soft_wrap=False)


_NARROWEST = 10  # a column's text and its padding, in the narrowest table worth drawing


class Table:
    """A table or a report of findings, printed in the form its stream calls for (`plain`).

    Columns are named once; each `add_row` is one finding, all of its cells plain text. On a
    terminal it is a rich table fitting the terminal's width (a long cell wraps inside its
    column, nothing is cut; a terminal too narrow for the table gets the plain form); off a
    terminal each row is exactly one line: cells padded to their column's widest value, the
    last column unpadded, empty trailing cells left out, nothing wrapped or cut (a log has no
    width), and a header line when any column is named.
    `print` ends with the summary line, if any, on the same stream.
    """

    def __init__(self, *columns: str, title: str | None = None) -> None:
        self.columns = columns
        self.title = title
        self.rows: list[tuple[tuple[str, ...], str]] = []

    def add_row(self, *cells: object, style: str = "") -> None:
        """One row; `style` (a rich style such as "red") colours its first cell, the status,
        on a terminal."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        # A row is one line: a newline or control character in a cell is shown escaped.
        self.rows.append((tuple(escaped(str(c)) for c in cells), style))

    def print(self, summary: str | None = None, *, style: str = "",
              stream: TextIO | None = None) -> None:
        """Print the table, then `summary` (coloured `style` on a terminal), to `stream`
        (default stdout)."""
        out = stream or sys.stdout
        if plain(out) or not self._rich(out):
            out.write(self.plain())
            out.flush()  # in order with what goes to stderr, in a log that takes both
        if summary is not None:
            say(summary, style=style, stream=out)

    def _rich(self, out: TextIO) -> bool:
        """Print the terminal form, unless the terminal is too narrow for it (then False)."""
        from rich.measure import Measurement
        from rich.table import Table as RichTable
        from rich.text import Text

        table = RichTable(title=self.title, title_justify="left", show_header=any(self.columns))
        for column in self.columns:
            table.add_column(column, overflow="fold")  # a long path wraps, never loses its end
        for cells, row_style in self.rows:
            table.add_row(Text(cells[0], style=row_style), *(Text(c) for c in cells[1:]))
        console = _console_of(out)
        # Room for each column's longest word, or at least 8 characters a column: below
        # that rich would squeeze cells to nothing, so the plain form, which loses nothing.
        unbounded = console.options.update_width(1 << 16)  # rich clamps to the width given
        needed = min(Measurement.get(console, unbounded, table).minimum,
                     len(self.columns) * _NARROWEST + len(self.columns) + 1)
        if console.width < needed:
            return False
        console.print(table, soft_wrap=False)
        return True

    def plain(self) -> str:
        """The plain form: the title, a header, one line per row."""
        lines = [self.title] if self.title else []
        rows = [cells for cells, _ in self.rows]
        if any(self.columns):
            rows.insert(0, self.columns)
        widths = [max((_width(row[i]) for row in rows), default=0)
                  for i in range(len(self.columns))]
        for row in rows:
            cells = list(row)
            while cells and not cells[-1]:
                cells.pop()
            padded = [cell + " " * (widths[i] - _width(cell))
                      for i, cell in enumerate(cells[:-1])] + cells[-1:]
            lines.append("  ".join(padded).rstrip())
        return "".join(line + "\n" for line in lines)


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def escaped(name: str | os.PathLike[str]) -> str:
    """A file name from a tree, for a terminal: always one line, every byte visible (a newline
    as \\n, a control character or a byte that is not UTF-8 as \\xNN, a backslash doubled)."""
    text = os.fspath(name)
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif "\udc80" <= c <= "\udcff":  # a byte that is not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        elif ord(c) < 0x20 or ord(c) == 0x7F or 0x80 <= ord(c) < 0xA0:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return "".join(out)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


@dataclass
class StepTimes:
    """The steps run so far and how long each took, for the closing report."""

    steps: list[tuple[str, float]] = field(default_factory=list)

    def report(self) -> str:
        """For a log message: one step a line."""
        width = max((len(name) for name, _ in self.steps), default=0)
        return "\n".join(f"  {name:<{width}}  {seconds:7.1f} s" for name, seconds in self.steps)

    def table(self, title: str = "Steps:") -> Table:
        """For a report: each step and its time."""
        table = Table("step", "time", title=title)
        for name, elapsed in self.steps:
            table.add_row(name, seconds(elapsed))
        return table


@contextlib.contextmanager
def step(name: str, times: StepTimes | None = None) -> Iterator[None]:
    """Announce a step, time it, and say how it ended."""
    log.info("==> %s", name)
    start = time.monotonic()
    try:
        yield
    except BaseException:
        log.info("    %s failed after %s", name, seconds(time.monotonic() - start))
        raise
    elapsed = time.monotonic() - start
    if times is not None:
        times.steps.append((name, elapsed))
    log.info("    %s done in %s", name, seconds(elapsed))


class _Quiet:
    """Stands in for a progress bar when stderr is not a terminal."""

    def add_task(self, *_: Any, **__: Any) -> int:
        return 0

    def update(self, *_: Any, **__: Any) -> None:
        pass

    def advance(self, *_: Any, **__: Any) -> None:
        pass


@contextlib.contextmanager
def byte_progress(quiet: bool = False) -> Iterator[Any]:
    """Bytes and files with rate and ETA on a terminal; nothing when not a terminal or
    `quiet` (another one shows the same bytes: rich allows one live display at a time).

    Yields rich's Progress, or a stand-in with the same add_task/update/advance. Tasks
    take `total` in bytes; put the file count in the description field `files`.
    """
    if quiet or not interactive():
        yield _Quiet()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[files]} files"),
        TimeRemainingColumn(),
        console=_console(True),
        transient=True,
    )
    with progress:
        yield progress


@contextlib.contextmanager
def count_progress() -> Iterator[Any]:
    """Steps of a build (n of m) with elapsed time on a terminal."""
    if not interactive():
        yield _Quiet()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=_console(True), transient=True)
    with progress:
        yield progress


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if record.levelno >= logging.ERROR:
            return f"xenlfs: error: {message}"
        if record.levelno >= logging.WARNING:
            return f"xenlfs: warning: {message}"
        return message


def setup_logging(*, debug: bool, log_dir: Path | None) -> Path | None:
    """Messages to stderr (commands too with --debug); everything to a log file if possible."""
    root = logging.getLogger("xenlfs")
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if debug else logging.INFO)
    console.setFormatter(_Formatter())
    root.addHandler(console)
    if log_dir is None:
        return None
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / "xenlfs.log"
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.addHandler(handler)
    return path
