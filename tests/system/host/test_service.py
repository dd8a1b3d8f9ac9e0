"""service install on a fixture LFS root; service status against the real /proc."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest


def lfs_root(tmp_path: Path) -> Path:
    root = tmp_path / "lfs"
    for d in ["init.d", *(f"rc{n}.d" for n in (0, 1, 2, 3, 4, 5, 6, "S"))]:
        (root / "etc/rc.d" / d).mkdir(parents=True)
    (root / "etc/rc.d/rc3.d/S20network").symlink_to("../init.d/network")
    return root


def test_install_writes_a_valid_script_and_links_then_nothing_more(xenlfs, tmp_path):
    root = lfs_root(tmp_path)
    dry = xenlfs("service", "install", "--root", str(root), "--dry-run")
    assert dry.returncode == 0 and "+### BEGIN INIT INFO" in dry.stdout
    assert f"ln -sfn ../init.d/xencommons {root}/etc/rc.d/rc3.d/S25xencommons" in dry.stdout
    assert not (root / "etc/rc.d/init.d/xencommons").exists()

    result = xenlfs("service", "install", "--root", str(root), "--xen-prefix", "/opt/xen")
    assert result.returncode == 0, result.stderr
    script = root / "etc/rc.d/init.d/xencommons"
    assert script.stat().st_mode & 0o777 == 0o755
    assert "XENSTORED=/opt/xen/sbin/xenstored" in script.read_text()
    for shell in ("sh", "bash"):
        subprocess.run([shell, "-n", str(script)], check=True)
    links = sorted(f"{p.parent.name}/{p.name}" for p in (root / "etc/rc.d").glob("rc?.d/*xen*"))
    assert links == ["rc0.d/K15xencommons", "rc1.d/K15xencommons", "rc2.d/K15xencommons",
                     "rc3.d/S25xencommons", "rc4.d/S25xencommons", "rc5.d/S25xencommons",
                     "rc6.d/K15xencommons"]
    assert (root / "etc/rc.d/rc5.d/S25xencommons").resolve() == script.resolve()

    again = xenlfs("service", "install", "--root", str(root), "--xen-prefix", "/opt/xen")
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert not list(script.parent.glob("*.xenlfs-bak"))


def test_install_refuses_a_root_without_bootscripts(xenlfs, tmp_path):
    result = xenlfs("service", "install", "--root", str(tmp_path))
    assert result.returncode == 3 and "not an LFS bootscript tree" in result.stderr


def test_status_reads_the_real_proc(xenlfs, tmp_path):
    on_xen = Path("/proc/xen/capabilities").exists() and \
        "control_d" in Path("/proc/xen/capabilities").read_text()
    if on_xen:
        pytest.skip("this machine is a Xen dom0; the test wants one that is not")
    fake = tmp_path / "xenconsoled"
    shutil.copy("/bin/sleep", fake)  # a process whose name is xenconsoled
    proc = subprocess.Popen([str(fake), "60"])
    try:
        result = xenlfs("service", "status", "--json")
        report = json.loads(result.stdout)
        assert result.returncode == 1 and report["healthy"] is False
        checks = {c["name"]: c for c in report["checks"]}
        assert not checks["control_d"]["ok"] and "grub add" in checks["control_d"]["fix"]
        assert checks["xenconsoled"]["ok"] and str(proc.pid) in checks["xenconsoled"]["detail"]
        text = xenlfs("service", "status")
        assert text.returncode == 1 and "FAIL control_d" in text.stdout
        assert "ok   xenconsoled" in text.stdout
    finally:
        proc.kill()
        proc.wait()
