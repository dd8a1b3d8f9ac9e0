"""What the user sees: messages, steps with their timings, progress, JSON and tables."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Console:
    if name in ("stdout", "stderr"):
        return _console(name == "stderr")
    raise AttributeError(name)


def interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


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
        width = max((len(name) for name, _ in self.steps), default=0)
        return "\n".join(f"  {name:<{width}}  {seconds:7.1f} s" for name, seconds in self.steps)


@contextlib.contextmanager
def step(name: str, times: StepTimes | None = None) -> Iterator[None]:
    """Announce a step, time it, and say how it ended."""
    log.info("==> %s", name)
    start = time.monotonic()
    try:
        yield
    except BaseException:
        log.info("    %s failed after %.1f s", name, time.monotonic() - start)
        raise
    elapsed = time.monotonic() - start
    if times is not None:
        times.steps.append((name, elapsed))
    log.info("    %s done in %.1f s", name, elapsed)


class _Quiet:
    """Stands in for a progress bar when stderr is not a terminal."""

    def add_task(self, *_: Any, **__: Any) -> int:
        return 0

    def update(self, *_: Any, **__: Any) -> None:
        pass

    def advance(self, *_: Any, **__: Any) -> None:
        pass


@contextlib.contextmanager
def byte_progress() -> Iterator[Any]:
    """Bytes and files with rate and ETA on a terminal; nothing when not a terminal.

    Yields rich's Progress, or a stand-in with the same add_task/update/advance. Tasks
    take `total` in bytes; put the file count in the description field `files`.
    """
    if not interactive():
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
