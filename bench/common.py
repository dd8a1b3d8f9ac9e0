"""What the benchmarks share: where this checkout is (its src/ made importable), an argument
parser described by the script's docstring, this checkout's xenlfs as a command, and the
results printed as JSON or as `key: value` lines.

Each script starts with `sys.path.insert(0, ROOT)` and `from bench import common`, so that
`python3 bench/X.py` runs from anywhere."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose description is the first line of the script's docstring."""
    return argparse.ArgumentParser(description=doc.strip().splitlines()[0] if doc else None)


def xenlfs(*args: str) -> list[str]:
    """This checkout's xenlfs (with environment()) as a command line."""
    return [sys.executable, "-m", "xenlfs", *args]


def environment(src: Path = SRC, **extra: str) -> dict[str, str]:
    """This environment, with SRC's xenlfs the one `python -m xenlfs` finds."""
    return {**os.environ, "PYTHONPATH": str(src), **extra}


def print_results(results: Mapping[str, object], as_json: bool) -> None:
    """The results as indented JSON, or one `key: value` line each."""
    if as_json:
        print(json.dumps(results, indent=2))
        return
    for key, value in results.items():
        print(f"{key}: {value}")
