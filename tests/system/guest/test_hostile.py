"""Hostile snapshots: symlinks that, followed from the host, would reach host files.

The "host" is a sentinel tree: each prepare runs in a private mount namespace where the
sentinel's etc and dev are bind-mounted over /etc and /dev, so a link to /etc/fstab names
the sentinel's file if it is ever followed from the host side. Other links name the
sentinel by its real absolute path or climb to it with '..'. After every prepare the
sentinel must be unchanged byte for byte (content, modes, owners, mtimes, links)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.system.guest.conftest import ROOT_HASH, SSH_KEY, lfs_tree, snapshot, tree_digest


def make_sentinel(path: Path) -> Path:
    lfs_tree(path)
    (path / "dev").mkdir()
    os.mknod(path / "dev/null", 0o20666, os.makedev(1, 3))  # the tools need a /dev/null
    os.chmod(path / "dev/null", 0o666)
    (path / "etc/ssh").mkdir()
    return path


def link(rel: str, target: str) -> Callable[[Path, Path], None]:
    def change(tree: Path, sentinel: Path) -> None:
        path = tree / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target.replace("SENTINEL", str(sentinel)).replace(
            "UP", "../" * (len(tree.parts) + 4)), path)
    return change


def both(*changes: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    def change(tree: Path, sentinel: Path) -> None:
        for c in changes:
            c(tree, sentinel)
    return change


CORPUS: dict[str, Callable[[Path, Path], None]] = {
    "fstab-to-/etc/fstab": link("etc/fstab", "/etc/fstab"),
    "inittab-up-to-/etc/inittab": link("etc/inittab", "../../../../../../../../etc/inittab"),
    "etc-to-/etc": link("etc", "/etc"),
    "dev-to-/dev": link("dev", "/dev"),
    "sysconfig-to-/etc/sysconfig": link("etc/sysconfig", "/etc/sysconfig"),
    "hostname-up": link("etc/hostname", "../../../../../../etc/hostname"),
    "hosts-and-shadow-to-/etc": both(link("etc/hosts", "/etc/hosts"),
                                     link("etc/shadow", "/etc/shadow")),
    "var-and-tmp-to-/etc": both(link("var", "/etc"), link("tmp", "/etc")),
    "root-ssh-to-/etc/ssh": link("root/.ssh", "/etc/ssh"),
    "self-loop": link("etc/fstab", "fstab"),
    "two-link-loop": both(link("etc/a", "b"), link("etc/b", "a"), link("etc/inittab", "a")),
    "fstab-to-sentinel-path": link("etc/fstab", "SENTINEL/etc/fstab"),
    "etc-to-sentinel-path": link("etc", "SENTINEL/etc"),
    "ifconfig-up-to-sentinel": link("etc/sysconfig/ifconfig.eth0",
                                    "UPSENTINEL/etc/sysconfig/ifconfig.eth0"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    base = Path(str(tmp_path_factory.mktemp("hostile", numbered=True)))
    work = Path("/var/tmp") / f"xenlfs-hostile-{os.getpid()}"
    work.mkdir()
    sentinel = make_sentinel(work / "sentinel")
    archives = {}
    for name, change in CORPUS.items():
        safe = name.replace("/", "_")
        tree = lfs_tree(work / "trees" / safe)
        change(tree, sentinel)
        archives[name] = snapshot(tree, base / f"{safe}.tar.zst")
    yield sentinel, archives
    shutil.rmtree(work, ignore_errors=True)


def digest(sentinel: Path) -> dict[str, object]:
    st = sentinel.lstat()
    return {".": (st.st_mode, st.st_mtime_ns), **tree_digest(sentinel)}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_snapshot_leaves_the_host_untouched(corpus, tmp_path: Path, name: str):
    sentinel, archives = corpus
    before = digest(sentinel)
    target = Path("/var/tmp") / f"xenlfs-hostile-target-{os.getpid()}-{name.replace('/', '_')}"
    target.mkdir()
    key = tmp_path / "key.pub"
    key.write_text(SSH_KEY + "\n")
    try:
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0/etc" /etc && mount --bind "$0/dev" /dev && exec "$@"',
                str(sentinel), sys.executable, "-m", "xenlfs", "guest", "prepare", "h1",
                "--snapshot", str(archives[name]), "--target", str(target), "--dhcp",
                "--root-password-hash", ROOT_HASH, "--ssh-key", str(key),
                "--config-dir", str(tmp_path / "xen")]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME="/nonexistent")
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                                check=False)
        assert result.returncode in (0, 1), result.stderr
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr
        assert digest(sentinel) == before
        # what the guest can resolve was edited inside the guest
        fstab = target / "etc/fstab"
        if os.path.realpath(fstab) == str(fstab) and fstab.is_file():
            assert "/dev/xvda1" in fstab.read_text()
        if result.returncode == 1:
            assert "PROBLEM:" in result.stdout
    finally:
        shutil.rmtree(target, ignore_errors=True)


def test_a_link_already_in_a_directory_target_is_not_written_through(tmp_path: Path):
    """The target holds `etc -> /etc` (say, from an earlier snapshot); the snapshot is a
    root tar of files only, with no directory members that would replace the link."""
    work = Path("/var/tmp") / f"xenlfs-hostile-link-{os.getpid()}"
    try:
        sentinel = make_sentinel(work / "sentinel")
        tree = lfs_tree(work / "tree")
        archive = work / "files-only.tar"
        files = sorted("./" + str(p.relative_to(tree)) for p in tree.rglob("*")
                       if not p.is_dir())
        subprocess.run(["tar", "-cf", str(archive), "-C", str(tree), *files], check=True)
        target = work / "target"
        target.mkdir()
        os.symlink("/etc", target / "etc")
        before = digest(sentinel)
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0/etc" /etc && mount --bind "$0/dev" /dev && exec "$@"',
                str(sentinel), sys.executable, "-m", "xenlfs", "guest", "prepare", "h2",
                "--snapshot", str(archive), "--target", str(target), "--dhcp",
                "--config-dir", str(tmp_path / "xen")]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_CONFIG_HOME="/nonexistent")
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                                check=False)
        assert digest(sentinel) == before, result.stderr
        assert result.returncode == 1, result.stderr
        assert "never written through" in result.stderr and "Traceback" not in result.stderr
        assert os.readlink(target / "etc") == "/etc"
    finally:
        shutil.rmtree(work, ignore_errors=True)
