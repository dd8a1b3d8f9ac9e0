from __future__ import annotations

import subprocess
from pathlib import Path

from tests.unit.lab.test_xen_image import VERSIONS
from xenlfs.lab import apt, boot, dom0, dom0_initrd, ganeti, images, instance


def test_the_flavour_adds_ganeti_and_keeps_the_default_lab_as_it_was(tmp_path: Path) -> None:
    base = images.BuildOptions(cache_dir=tmp_path)
    flavour = ganeti.options(base)
    assert flavour.packages[:len(dom0.PACKAGES)] == dom0.PACKAGES
    assert {"ganeti", "python3-cffi-backend", "zstd"} <= set(flavour.packages)
    assert (flavour.modules, flavour.exclude) == (base.modules, base.exclude)
    # Its own root, under its own key: the default dom0's cache entry is untouched.
    assert (dom0_initrd.rootfs_dir(tmp_path, VERSIONS, apt.DEFAULT_MIRROR, flavour.packages)
            != dom0_initrd.rootfs_dir(tmp_path, VERSIONS, apt.DEFAULT_MIRROR, base.packages))
    up = ganeti.up_options(instance.UpOptions(name="g"))
    assert (up.name, up.dom0_memory, up.memory) == ("g", 2048 * boot.MiB, 3584 * boot.MiB)


def ganeti_like_tree(root: Path) -> None:
    """The lines TIMEOUTS changes, as Ganeti 3.0.2 has them, amid others, with bytecode."""
    (root / "masterd/__pycache__").mkdir(parents=True)
    (root / "__pycache__").mkdir()
    (root / "_constants.py").write_text("RPC_CONNECT_TIMEOUT = 5\nRPC_TMO_URGENT = 60\n"
                                        "DISK_TRANSFER_CONNECT_TIMEOUT = 60\n")
    (root / "masterd/instance.py").write_text(
        "class ImportExportTimeouts(object):\n  DEFAULT_READY_TIMEOUT = 10\n\n"
        "  DEFAULT_ERROR_TIMEOUT = 10\n\n  DEFAULT_LISTEN_TIMEOUT = 10\n\n"
        "  DEFAULT_PROGRESS_INTERVAL = 60\n")
    (root / "masterd/__pycache__/other.cpython-311.pyc").write_bytes(b"")


def sh(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)


def test_the_labs_ganeti_timeouts_are_scaled_once_and_nothing_else(tmp_path: Path) -> None:
    ganeti_like_tree(tmp_path)
    script = ganeti.scale_timeouts_script(str(tmp_path))
    assert sh(script).returncode == 0
    constants = (tmp_path / "_constants.py").read_text()
    assert constants == ("RPC_CONNECT_TIMEOUT = 60\nRPC_TMO_URGENT = 60\n"
                         "DISK_TRANSFER_CONNECT_TIMEOUT = 600\n")
    timeouts = (tmp_path / "masterd/instance.py").read_text()
    for key in ("READY", "ERROR", "LISTEN"):
        assert f"  DEFAULT_{key}_TIMEOUT = 120\n" in timeouts
    assert "  DEFAULT_PROGRESS_INTERVAL = 60\n" in timeouts
    # The changed modules' bytecode is made again (by this python3), the others' untouched.
    for pyc in ("__pycache__/_constants.", "masterd/__pycache__/instance."):
        assert list(tmp_path.glob(pyc + "*.pyc")), pyc
    assert (tmp_path / "masterd/__pycache__/other.cpython-311.pyc").read_bytes() == b""
    # Again (a reused lab): the same files.
    assert sh(script).returncode == 0
    assert (tmp_path / "_constants.py").read_text() == constants
    assert (tmp_path / "masterd/instance.py").read_text() == timeouts


def test_another_ganetis_timeouts_are_refused_by_name(tmp_path: Path) -> None:
    ganeti_like_tree(tmp_path)
    (tmp_path / "masterd/instance.py").write_text("  DEFAULT_READY_TIMEOUT = 30\n")
    done = sh(ganeti.scale_timeouts_script(str(tmp_path)))
    assert done.returncode == 1
    assert (f"{tmp_path}/masterd/instance.py: no line 'DEFAULT_READY_TIMEOUT = 10' "
            "(another Ganeti than 3.0?)") in done.stderr
    assert (tmp_path / "masterd/instance.py").read_text() == "  DEFAULT_READY_TIMEOUT = 30\n"
