"""create: what is left out, bad input refused with nothing left behind, and interruptions
(SIGINT, SIGTERM, SIGKILL at several points) never leave a file under the final name."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.system.snapshot.conftest import make_tree, sh


def members(archive: Path) -> set[str]:
    out = subprocess.run(["tar", "-tf", str(archive)], capture_output=True, check=True)
    return {os.fsdecode(line).removeprefix("./").rstrip("/")
            for line in out.stdout.splitlines()}


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".xenlfs"))


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size: str = "4m") -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", f"size={size}", "xenlfs-test", where)
    try:
        yield where
    finally:
        sh("umount", "-l", where)


def test_mounts_below_the_root_are_left_out_but_their_directory_kept(xenlfs, tree: Path,
                                                                     workdir: Path):
    (tree / "lost+found").mkdir()
    (tree / "lost+found/#1234").write_text("fsck debris\n")
    (tree / "proc/1").mkdir(parents=True)
    with mounted_tmpfs(tree / "srv/data") as data:
        (data / "on-another-fs").write_text("x\n")
        archive = workdir / "snap.tar"
        result = xenlfs("snapshot", "create", "--root", str(tree), str(archive))
        assert result.returncode == 0, result.stderr
        names = members(archive)
        assert "srv/data" in names and "srv/data/on-another-fs" not in names
        assert "proc" in names and "proc/1" not in names
        assert "lost+found" not in names and "lost+found/#1234" not in names
        assert "usr/bin/ping" in names
        both = workdir / "both.tar"
        result = xenlfs("snapshot", "create", "--root", str(tree), "--include", "/srv/data",
                        "--exclude", "/usr/bin/ping*", str(both))
        assert result.returncode == 0, result.stderr
        names = members(both)
        assert "srv/data/on-another-fs" in names
        assert "usr/bin/ping" not in names and "usr/bin/ping-relative" not in names
        assert "usr/bin" in names


def test_an_output_inside_the_root_is_not_archived_into_itself(xenlfs, tree: Path):
    archive = tree / "srv/self.tar"
    result = xenlfs("snapshot", "create", "--root", str(tree), str(archive))
    assert result.returncode == 0, result.stderr
    assert not any("self.tar" in name or "xenlfs" in name for name in members(archive))


def test_refuses_to_overwrite_without_force(xenlfs, tree: Path, workdir: Path):
    archive = workdir / "snap.tar.zst"
    assert xenlfs("snapshot", "create", "--root", str(tree), str(archive)).returncode == 0
    before = archive.read_bytes()
    result = xenlfs("snapshot", "create", "--root", str(tree), str(archive))
    assert result.returncode == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert archive.read_bytes() == before
    (tree / "another").write_text("y\n")
    result = xenlfs("snapshot", "create", "--root", str(tree), "--force", str(archive))
    assert result.returncode == 0, result.stderr
    assert "another" in members(archive)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--root", "/nonexistent-xenlfs"], 2, "does not exist"),
    (["--root", "/etc/hostname"], 2, "not a directory"),
    (["--compression", "lz4"], 2, "expected one of zstd, gzip, xz, none"),
    (["--compression", "gzip", "OUT/named.tar.zst"], 2, "names a zstd archive"),
    (["/proc/snapshot.tar.zst"], 2, "proc filesystem"),
    (["OUT/missing-dir/snap.tar.zst"], 2, "does not exist"),
    (["--include", "/usr"], 2, "nothing is excluded there"),
])
def test_bad_input_is_a_clear_error_and_leaves_nothing(xenlfs, tree: Path, workdir: Path,
                                                       args: list[str], code: int,
                                                       message: str):
    out = workdir / "out"
    out.mkdir()
    args = [a.replace("OUT", str(out)) for a in args]
    if "--root" not in args:
        args = ["--root", str(tree), *args]
    if not any(a.endswith(".tar.zst") for a in args):
        args.append(str(out / "snap.tar.zst"))
    result = xenlfs("snapshot", "create", *args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(out.iterdir()) == []


def test_not_root_is_refused(xenlfs, tree: Path, workdir: Path):
    out = workdir / "out"
    out.mkdir(mode=0o777)
    os.chmod(out, 0o777)
    result = subprocess.run(
        # may still read xenlfs and its Python libraries wherever they are installed
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", sys.executable, "-m",
         "xenlfs", "snapshot", "create", "--root", str(tree), str(out / "snap.tar.zst")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        check=False)
    assert result.returncode == 3, result.stderr
    assert "needs root" in result.stderr
    assert list(out.iterdir()) == []


def _without_read_capabilities(*args: str) -> subprocess.CompletedProcess[str]:
    """As uid 0 but without CAP_DAC_OVERRIDE/READ_SEARCH: mode 000 files become unreadable."""
    drop = "-dac_override,-dac_read_search"
    return subprocess.run(
        ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", sys.executable, "-m",
         "xenlfs", "snapshot", "create", *args], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=False)


def test_unreadable_files_are_listed_and_fail_unless_allowed(tree: Path, workdir: Path):
    secret = tree / "srv/secret"
    secret.write_text("no one may read this\n")
    os.chown(secret, 1234, 1234)
    os.chmod(secret, 0)
    out = workdir / "out"
    out.mkdir()
    archive = out / "snap.tar.zst"
    result = _without_read_capabilities("--root", str(tree), str(archive))
    assert result.returncode == 1, result.stderr
    assert "1 file could not be read" in result.stderr
    assert "./srv/secret: Permission denied" in result.stderr
    assert "--allow-unreadable" in result.stderr
    assert list(out.iterdir()) == []
    result = _without_read_capabilities("--root", str(tree), "--allow-unreadable", str(archive))
    assert result.returncode == 0, result.stderr
    assert "srv/secret" not in members(archive)
    meta = json.loads(Path(f"{archive}.manifest.jsonl").read_text().splitlines()[0])
    assert meta["unreadable"] == ["./srv/secret: Permission denied"]


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(xenlfs, tree: Path, workdir: Path):
    with open(tree / "random.bin", "wb") as f:
        f.write(os.urandom(8 << 20))
    with mounted_tmpfs(workdir / "small", "2m") as small:
        result = xenlfs("snapshot", "create", "--root", str(tree), str(small / "snap.tar.zst"))
        assert result.returncode == 1
        assert "no space left" in result.stderr and "nothing was written" in result.stderr
        assert list(small.iterdir()) == []


# --- interruptions ----------------------------------------------------------------------

def _start(tree: Path, archive: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xenlfs", "snapshot", "create", "--root", str(tree),
         "--compression", "gzip", str(archive)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        # A run started in the background (`cmd &`) inherits SIGINT ignored, and Python then
        # leaves it ignored: give the child the default, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(condition: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def big_tree() -> Iterator[Path]:
    # random data makes gzip slow enough (seconds) to be caught mid-way
    path = Path(tempfile.mkdtemp(prefix="xenlfs-test-", dir="/var/tmp"))
    tree = make_tree(path / "root")
    for n in range(3):
        with open(tree / f"random-{n}.bin", "wb") as f:
            f.write(os.urandom(32 << 20))
    yield tree
    shutil.rmtree(path, ignore_errors=True)


def _temp_size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.glob(".xenlfs-snapshot-tmp-*"))


@pytest.mark.parametrize("point", ["step-started", "temp-created", "mid-write"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_leave_nothing(big_tree: Path, workdir: Path, signum: int,
                                          point: str):
    out = workdir / "out"
    out.mkdir()
    archive = out / "snap.tar.gz"
    proc = _start(big_tree, archive)
    if point == "step-started":
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("==> snapshot")
    elif point == "temp-created":
        _wait_for(lambda: leftovers(out))
    else:
        _wait_for(lambda: _temp_size(out) > 1 << 20)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert not archive.exists()
    assert leftovers(out) == []
    assert "Traceback" not in stderr
    if point != "step-started":
        assert "nothing was written to" in stderr


@pytest.mark.parametrize("point", ["temp-created", "mid-write"])
def test_sigkill_leaves_no_final_name_and_the_next_run_cleans_up(xenlfs, big_tree: Path,
                                                                 workdir: Path, point: str):
    out = workdir / "out"
    out.mkdir()
    archive = out / "snap.tar.gz"
    proc = _start(big_tree, archive)
    if point == "temp-created":
        _wait_for(lambda: leftovers(out))
    else:
        _wait_for(lambda: _temp_size(out) > 1 << 20)
    proc.kill()
    proc.communicate(timeout=60)
    assert not archive.exists()
    assert leftovers(out)

    def reported_unfinished() -> bool:
        rows = json.loads(xenlfs("snapshot", "list", "--json", str(out)).stdout)
        return bool(rows) and all("killed run" in r["status"] for r in rows)
    _wait_for(reported_unfinished)  # once xz, the orphaned child, has finished too
    result = xenlfs("snapshot", "create", "--root", str(big_tree), str(archive))
    assert result.returncode == 0, result.stderr
    assert "left by a snapshot that was killed" in result.stderr
    assert leftovers(out) == []
    assert archive.exists()


def test_dry_run_prints_the_plan_and_writes_nothing(xenlfs, tree: Path, workdir: Path):
    out = workdir / "out"
    out.mkdir()
    result = xenlfs("snapshot", "create", "--dry-run", "--root", str(tree),
                    str(out / "snap.tar.zst"))
    assert result.returncode == 0, result.stderr
    assert "would run: tar --create" in result.stderr
    assert "--exclude=./proc/*" in result.stderr
    assert "| zstd -1 --long=27 -T0 -B8M" in result.stderr
    assert "exclude /proc (kept empty) (hint)" in result.stderr
    assert list(out.iterdir()) == []


# --- a child that dies --------------------------------------------------------------------

@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_a_compressor_dying_of_a_full_disk_ends_the_run(big_tree: Path, workdir: Path,
                                                        compression: str):
    """The disk fills long before tar is done: the compressor dies of ENOSPC while tar still
    has far more than a pipe's worth to write. The run must end (it used to wait for tar
    forever), say which disk is full, and leave nothing."""
    with mounted_tmpfs(workdir / "small", "2m") as small:
        archive = small / "snap"
        result = subprocess.run(
            [sys.executable, "-m", "xenlfs", "snapshot", "create", "--root", str(big_tree),
             "--compression", compression, str(archive)], capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=120, check=False)
        assert result.returncode == 1, result.stderr
        assert f"no space left on the filesystem of {small}" in result.stderr
        assert f"{compression} could not write" in result.stderr
        assert "(tmpfs on xenlfs-test" in result.stderr
        assert "nothing was written" in result.stderr and "Traceback" not in result.stderr
        assert list(small.iterdir()) == []


def _child(parent: int, name: str) -> int:
    for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        if Path(f"/proc/{pid}/comm").read_text().strip() == name:
            return int(pid)
    raise LookupError(name)


@pytest.mark.parametrize("victim", ["gzip", "tar"])
def test_any_child_killed_mid_way_ends_the_run_with_what_died(big_tree: Path, workdir: Path,
                                                             victim: str):
    out = workdir / "out"
    out.mkdir()
    archive = out / "snap.tar.gz"
    proc = _start(big_tree, archive)
    _wait_for(lambda: _temp_size(out) > 1 << 20)
    os.kill(_child(proc.pid, victim), signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert f"{victim} was killed by SIGKILL before the archive was complete" in stderr
    assert "Traceback" not in stderr and not archive.exists() and leftovers(out) == []


# --- a kill between the two renames ---------------------------------------------------------

def _killed_at_second_rename(tree: Path, archive: Path, *extra: str) -> None:
    """Run create under strace, which kills it (SIGKILL) instead of its second rename(2):
    the manifest has its final name, the archive not yet."""
    result = subprocess.run(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename",
         "-e", "inject=rename:error=EIO:signal=KILL:when=2",
         sys.executable, "-m", "xenlfs", "snapshot", "create", "--root", str(tree), *extra,
         str(archive)], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=False)
    assert result.returncode == -signal.SIGKILL or result.returncode == 128 + signal.SIGKILL, \
        result.stderr


def test_a_kill_between_the_renames_never_pairs_a_manifest_with_another_archive(
        xenlfs, tree: Path, workdir: Path):
    out = workdir / "out"
    out.mkdir()
    archive = out / "snap.tar"
    _killed_at_second_rename(tree, archive)
    assert not archive.exists() and Path(f"{archive}.manifest.jsonl").exists()
    rows = json.loads(xenlfs("snapshot", "list", "--json", str(out)).stdout)
    assert {r["archive"]: r["status"] for r in rows}[str(archive)] == \
        "missing: only its manifest is left"

    # An older snapshot replaced with --force, killed in between: same size (a plain tar of a
    # file changed in place), so only the recorded last MiB tells the pair apart.
    assert xenlfs("snapshot", "create", "--root", str(tree), str(archive)).returncode == 0
    assert leftovers(out) == []
    passwd = tree / "etc/passwd"
    passwd.write_text(passwd.read_text().replace("root", "ROOT"))
    size = archive.stat().st_size
    _killed_at_second_rename(tree, archive, "--force")
    assert archive.stat().st_size == size
    rows = json.loads(xenlfs("snapshot", "list", "--json", str(out)).stdout)
    status = {r["archive"]: r["status"] for r in rows}[str(archive)]
    assert "not the archive this manifest describes" in status
    verified = xenlfs("snapshot", "verify", str(archive))
    assert verified.returncode == 1
    assert "ends with other bytes than its manifest records" in verified.stdout

    assert xenlfs("snapshot", "create", "--force", "--root", str(tree), str(archive)
                  ).returncode == 0
    assert xenlfs("snapshot", "verify", str(archive)).returncode == 0
    assert leftovers(out) == []
