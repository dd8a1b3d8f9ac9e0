from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_xenlfs
from tests.system.guest.conftest import lfs_tree, snapshot

GANETI = Path("/usr/share/ganeti/3.0")
SIDE = Path(__file__).with_name("ganeti_side.py")
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600"]


@pytest.fixture(scope="session")
def ganeti_code() -> Path:
    """Debian's ganeti-3.0: Ganeti's own Python (no daemons: those are in 'ganeti')."""
    if not (GANETI / "ganeti/backend.py").is_file():
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        subprocess.run([*APT, "install", "--no-install-recommends", "ganeti-3.0"], check=True,
                       capture_output=True, env=env)
    return GANETI


@dataclass(frozen=True)
class Node:
    """One node's view: the OS search path with the provider, file storage, OS logs."""

    root: Path
    variant: str

    @property
    def search(self) -> Path:
        return self.root / "os"

    @property
    def provider(self) -> Path:
        return self.search / "xenlfs"

    @property
    def os_name(self) -> str:
        return f"xenlfs+{self.variant}"

    def ganeti(self, action: str, **spec: Any) -> dict[str, Any]:
        """Ganeti's backend, run by Debian's Python (ganeti_side.py)."""
        full = {"action": action, "search": str(self.search), "logs": str(self.root / "logs"),
                "storage_paths": str(self.root / "file-storage-paths"), "os": self.os_name,
                **spec}
        done = subprocess.run(["/usr/bin/python3", str(SIDE), json.dumps(full)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


@pytest.fixture
def node(ganeti_code: Path) -> Iterator[Node]:
    """A snapshot of an LFS-like tree and the provider xenlfs wrote for it. Under /srv, as
    Ganeti's file storage is: Ganeti refuses file disks under /var, /usr, /tmp…"""
    root = Path(tempfile.mkdtemp(prefix="xenlfs-ganeti-", dir="/srv"))
    (root / "logs").mkdir()
    (root / "disks").mkdir()
    (root / "file-storage-paths").write_text(f"{root / 'disks'}\n")
    (root / "snaps").mkdir()
    snapshot(lfs_tree(root / "tree"), root / "snaps" / "LFS 12.2+xen.tar.zst")
    result = run_xenlfs("ganeti", "install-os", "--dir", str(root / "os/xenlfs"),
                        "--snapshots", str(root / "snaps"))
    assert result.returncode == 0, result.stderr
    variant = (root / "os/xenlfs/variants.list").read_text().split()[0]
    yield Node(root, variant)
    shutil.rmtree(root, ignore_errors=True)
