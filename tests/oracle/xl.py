"""The real xl as a test oracle, on any machine: `xl -N create FILE` parses a config with Xen's
own libxlu and xl_parse.c and prints libxl's JSON without starting a guest. Outside dom0 xl
cannot open the hypervisor or xenstore, so xlshim.c (LD_PRELOAD) answers those few calls."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHIM_SOURCE = Path(__file__).with_name("xlshim.c")


def find_xl() -> str | None:
    """Debian's xl binary (/usr/sbin/xl is a wrapper that wants a running hypervisor)."""
    found = sorted(glob.glob("/usr/lib/xen-*/bin/xl"))
    return found[-1] if found else shutil.which("xl")


def build_shim(directory: Path) -> Path:
    out = directory / "xlshim.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(out),
                    str(SHIM_SOURCE)], check=True, capture_output=True, text=True)
    return out


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    config: dict[str, Any] | None  # libxl's domain config when accepted
    stderr: str


@dataclass(frozen=True)
class Oracle:
    xl: str
    shim: Path

    def create_dry_run(self, path: Path) -> Verdict:
        env = dict(os.environ, LD_PRELOAD=str(self.shim), LC_ALL="C")
        result = subprocess.run([self.xl, "-N", "create", str(path)], capture_output=True,
                                env=env, timeout=30, check=False)
        stderr = result.stderr.decode("utf-8", "replace")
        if result.returncode < 0:  # libxlu asserts on a NUL in a string: xl refuses by crashing
            stderr += f"\n(xl was killed by signal {-result.returncode})"
        if result.returncode != 0:
            return Verdict(False, None, stderr)
        return Verdict(True, json.loads(result.stdout.decode("utf-8", "surrogateescape")),
                       stderr)
