"""Test tiers follow the directory: tests/unit (no root), tests/system (root, real tools),
tests/lab (boots Xen under QEMU). `-m "not slow"` is what CI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIERS = {"unit", "system", "lab"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(item.fspath).relative_to(ROOT / "tests").parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
        if tier in ("system", "lab") and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason=f"the {tier} tier needs root"))


def run_xenlfs(*args: str, env: dict[str, str] | None = None, input: str | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process, as a user would."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.setdefault("XDG_CONFIG_HOME", "/nonexistent")
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "xenlfs", *args], capture_output=True, text=True,
                          env=full_env, input=input, cwd=cwd, check=False)


@pytest.fixture
def xenlfs():
    return run_xenlfs
