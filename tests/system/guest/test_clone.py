"""guest clone for real: reflink clones on a loop-mounted XFS, the full-copy fallback on
ext4, LVM thin snapshots where the kernel has dm-thin, refusals of a source in use. Each
clone is checked from inside its own filesystem: hostname, machine-id, host keys, address,
and from its xl config: MAC and disk."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.system.guest.conftest import lfs_tree, our_mounts, sh, snapshot
from tests.system.guest.test_in_use import held, holder  # noqa: F401 (a fixture)
from xenlfs.xl import cfg

KEYS = ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub")


def digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@contextlib.contextmanager
def filesystem(workdir: Path, mkfs: list[str], size: str = "1G") -> Iterator[Path]:
    """A new filesystem of its own kind, loop-mounted under workdir."""
    image, where = workdir / f"{mkfs[0]}.fs", workdir / mkfs[0].removeprefix("mkfs.")
    sh("truncate", "-s", size, image)
    sh(*mkfs, image)
    where.mkdir()
    sh("mount", "-o", "loop", image, where)
    try:
        yield where
    finally:
        subprocess.run(["umount", where], check=False)


def source_tree(root: Path) -> Path:
    lfs_tree(root, extra_bytes=48 << 20)  # enough data that sharing it shows
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "etc/ssh").mkdir()
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@src", "-f",
       root / "etc/ssh/ssh_host_ed25519_key")
    return root


def prepare_source(xenlfs, workdir: Path, target: str) -> Path:
    """`guest prepare src` onto `target`, its config in workdir/xen; returns that dir."""
    archive = snapshot(source_tree(workdir / "tree"), workdir / "lfs.tar.zst")
    kernel = workdir / "vmlinuz"
    kernel.write_text("a domU kernel would be here\n")
    xen = workdir / "xen"
    result = xenlfs("guest", "prepare", "src", "--snapshot", str(archive), "--target", target,
                    "--size", "256M", "--kernel", str(kernel), "--config-dir", str(xen),
                    "--vif", "bridge=xenbr0", "--ip", "192.168.1.2/24",
                    "--gateway", "192.168.1.1")
    assert result.returncode == 0, result.stderr
    return xen


@contextlib.contextmanager
def inside(image: Path | str, workdir: Path) -> Iterator[Path]:
    where = workdir / f"look-{Path(image).name}"
    where.mkdir()
    sh("mount", "-o", "ro,loop" if Path(image).is_file() else "ro", image, where)
    try:
        yield where
    finally:
        sh("umount", where)
        where.rmdir()


def identity_of(disk: Path | str, workdir: Path) -> dict[str, str]:
    with inside(disk, workdir) as root:
        return {"hostname": (root / "etc/hostname").read_text(),
                "machine-id": (root / "etc/machine-id").read_text(),
                "ifconfig": (root / "etc/sysconfig/ifconfig.eth0").read_text(),
                **{key: (root / "etc/ssh" / key).read_text() for key in KEYS}}


def config_of(path: Path) -> dict[str, object]:
    return cfg.parse(path.read_text(), str(path)).plain()


def used(where: Path) -> int:
    st = os.statvfs(where)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def check_distinct(xen: Path, names: list[str], workdir: Path) -> list[dict[str, str]]:
    """Each clone and the source: their own hostname, machine-id, host keys, MAC, disk."""
    configs = [config_of(xen / f"{n}.cfg") for n in ["src", *names]]
    disks = [re.search(r"target=(\S+)$|phy:([^,]+)", str(c["disk"][0])) for c in configs]
    paths = [m[1] or m[2] for m in disks if m]
    macs = [re.search(r"mac=([0-9a-f:]+)", str(c["vif"][0])) for c in configs[1:]]
    assert len(set(paths)) == len(names) + 1 and all(macs)
    assert len({m[1] for m in macs if m}) == len(names)
    assert [c["name"] for c in configs] == ["src", *names]
    found = [identity_of(p, workdir) for p in paths]
    for field in ("hostname", "machine-id", *KEYS):
        assert len({f[field] for f in found}) == len(found), field
    assert [f["hostname"] for f in found] == [f"{n}\n" for n in ["src", *names]]
    assert all(re.fullmatch(r"[0-9a-f]{32}\n", f["machine-id"]) for f in found)
    for name, f in zip(names, found[1:], strict=True):
        assert f[KEYS[1]].rstrip().endswith(f"root@{name}")
    return found


def test_reflink_clones_on_xfs_share_blocks_and_are_distinct(xenlfs, workdir: Path):
    with filesystem(workdir, ["mkfs.xfs", "-q", "-m", "reflink=1"]) as xfs:
        xen = prepare_source(xenlfs, workdir, str(xfs / "src.img"))
        before, source = used(xfs), digest(xfs / "src.img")
        names = ["web1", "web2", "web3"]
        result = xenlfs("guest", "clone", "src", *names, "--config-dir", str(xen),
                        "--ip", "192.168.1.11/24", "--ip", "192.168.1.12/24",
                        "--ip", "192.168.1.13/24")
        assert result.returncode == 0, result.stderr
        assert "backend: reflink copy" in result.stdout
        grown = used(xfs) - before
        allocated = (xfs / "src.img").stat().st_blocks * 512
        # three clones cost less than a fifth of one full copy (only the edited blocks)
        assert grown < allocated // 5, (grown, allocated)
        assert digest(xfs / "src.img") == source
        found = check_distinct(xen, names, workdir)
        assert [re.search(r"IP=(\S+)", f["ifconfig"])[1]  # type: ignore[index]
                for f in found] == ["192.168.1.2", "192.168.1.11", "192.168.1.12",
                                    "192.168.1.13"]
        assert our_mounts() == []
        checked = xenlfs("guest", "check", *[str(p) for p in sorted(xen.glob("*.cfg"))])
        assert "is also" not in checked.stdout


def test_ext4_refuses_a_full_copy_unless_asked_then_copies(xenlfs, workdir: Path):
    with filesystem(workdir, ["mkfs.ext4", "-q"]) as ext4:
        xen = prepare_source(xenlfs, workdir, str(ext4 / "src.img"))
        result = xenlfs("guest", "clone", "src", "db1", "--config-dir", str(xen))
        assert result.returncode == 3, result.stderr
        assert "ext4, which cannot share extents" in result.stderr
        assert re.search(r"full copy of up to \d+ MiB", result.stderr)
        assert "--full-copy" in result.stderr and "Traceback" not in result.stderr
        assert not (ext4 / "db1.img").exists() and not (xen / "db1.cfg").exists()
        before = used(ext4)
        result = xenlfs("guest", "clone", "src", "db1", "--config-dir", str(xen), "--full-copy")
        assert result.returncode == 0, result.stderr
        assert "backend: full copy" in result.stdout
        # cp leaves out the blocks of zeros: the copy takes most, not all, of what the source does
        assert used(ext4) - before >= (ext4 / "src.img").stat().st_blocks * 512 // 2
        found = check_distinct(xen, ["db1"], workdir)
        assert "SERVICE=dhcpcd" in found[1]["ifconfig"]  # no --ip: DHCP, never the source's


def test_dry_run_shows_the_backend_and_changes_nothing(xenlfs, workdir: Path):
    with filesystem(workdir, ["mkfs.xfs", "-q", "-m", "reflink=1"]) as xfs:
        xen = prepare_source(xenlfs, workdir, str(xfs / "src.img"))
        listing = sorted(os.listdir(xfs)), sorted(os.listdir(xen))
        result = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen), "--dry-run")
        assert result.returncode == 0, result.stderr
        assert "backend: reflink copy" in result.stdout and "+name = \"web1\"" in result.stdout
        assert "would run: cp --reflink=always" in result.stderr
        assert (sorted(os.listdir(xfs)), sorted(os.listdir(xen))) == listing


def test_a_source_in_use_is_refused(xenlfs, workdir: Path, held):  # noqa: F811
    with filesystem(workdir, ["mkfs.xfs", "-q", "-m", "reflink=1"]) as xfs:
        xen = prepare_source(xenlfs, workdir, str(xfs / "src.img"))
        held.append(holder(xfs / "src.img"))
        result = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen))
        assert result.returncode == 3, result.stderr
        assert "in use: held open by" in result.stderr
        held.pop().kill()
        with inside(xfs / "src.img", workdir):  # mounted (read-only, even)
            result = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen))
        assert result.returncode == 3, result.stderr
        assert "in use" in result.stderr and "Traceback" not in result.stderr
        assert not (xfs / "web1.img").exists() and not (xen / "web1.cfg").exists()


def test_an_existing_guest_is_never_replaced(xenlfs, workdir: Path):
    with filesystem(workdir, ["mkfs.xfs", "-q", "-m", "reflink=1"]) as xfs:
        xen = prepare_source(xenlfs, workdir, str(xfs / "src.img"))
        (xfs / "web1.img").write_text("someone's data\n")
        result = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen))
        assert result.returncode == 3 and "never replaces a guest" in result.stderr
        assert (xfs / "web1.img").read_text() == "someone's data\n"
        assert not (xen / "web1.cfg").exists()


def thin_unavailable() -> str | None:
    """Why LVM thin cannot be tried here, or None."""
    targets = subprocess.run(["dmsetup", "targets"], capture_output=True, text=True,
                             check=False)
    if targets.returncode != 0:
        return ("device-mapper is not in this kernel (dmsetup targets: "
                f"{targets.stderr.strip().splitlines()[0] if targets.stderr else '?'})")
    if not re.search(r"^thin-pool\b", targets.stdout, re.M) and \
            subprocess.run(["modprobe", "dm-thin-pool"], check=False).returncode != 0:
        return "this kernel has device-mapper but no thin-pool target (dm-thin-pool)"
    return None


def test_thin_snapshot_clones_on_a_loop_pv(xenlfs, workdir: Path):
    why = thin_unavailable()
    if why:
        pytest.skip(why)
    sh("apt-get", "install", "-y", "-q", "thin-provisioning-tools", "lvm2")
    vg = f"xenlfsclone{os.getpid()}"
    pv = workdir / "pv.img"
    sh("truncate", "-s", "1G", pv)
    loop = sh("losetup", "--find", "--show", pv).stdout.strip()
    lvm = ["--config", "activation{udev_sync=0 udev_rules=0} "
           "devices{obtain_device_list_from_udev=0}"]
    try:
        sh("vgcreate", *lvm, vg, loop)
        sh("lvcreate", *lvm, "--yes", "--type", "thin-pool", "--size", "600m", "--name",
           "pool", vg)
        sh("lvcreate", *lvm, "--yes", "--thin", "--virtualsize", "256m", "--name", "src",
           f"{vg}/pool")
        xen = prepare_source(xenlfs, workdir, f"/dev/{vg}/src")
        result = xenlfs("guest", "clone", "src", "t1", "t2", "--config-dir", str(xen))
        assert result.returncode == 0, result.stderr
        assert "backend: LVM thin snapshot" in result.stdout
        lvs = sh("lvs", *lvm, "--noheadings", "-o", "lv_name,segtype,origin", vg).stdout
        assert re.search(r"t1\s+thin\s+src", lvs) and re.search(r"t2\s+thin\s+src", lvs)
        check_distinct(xen, ["t1", "t2"], workdir)
    finally:
        subprocess.run(["vgremove", *lvm, "--yes", "--force", vg], check=False)
        subprocess.run(["losetup", "--detach", loop], check=False)


def test_xfs_without_reflink_is_no_copy_on_write(xenlfs, workdir: Path):
    with filesystem(workdir, ["mkfs.xfs", "-q", "-m", "reflink=0"]) as xfs:
        xen = prepare_source(xenlfs, workdir, str(xfs / "src.img"))
        result = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen), "--dry-run")
        assert result.returncode == 3, result.stderr
        assert "XFS made without reflink" in result.stderr


def test_a_full_copy_that_does_not_fit_is_refused_before_copying(xenlfs, workdir: Path):
    with filesystem(workdir, ["mkfs.ext4", "-q"], size="512M") as ext4:
        xen = prepare_source(xenlfs, workdir, str(ext4 / "src.img"))
        st = os.statvfs(ext4)
        room = st.f_bavail * st.f_frsize - (ext4 / "src.img").stat().st_blocks * 512 // 2
        sh("fallocate", "-l", str(room), ext4 / "filler")
        result = xenlfs("guest", "clone", "src", "db1", "--config-dir", str(xen), "--full-copy")
        assert result.returncode == 3, result.stderr
        assert "a full copy needs" in result.stderr and "Traceback" not in result.stderr
        assert not (ext4 / "db1.img").exists() and not (xen / "db1.cfg").exists()


def test_a_clone_that_fails_halfway_is_removed(xenlfs, workdir: Path):
    with filesystem(workdir, ["mkfs.xfs", "-q", "-m", "reflink=1"]) as xfs:
        sh("truncate", "-s", "64M", xfs / "blank.img")  # no filesystem to edit in it
        xen = workdir / "xen"
        xen.mkdir()
        (xen / "blank.cfg").write_text(
            f'name = "blank"\nkernel = "/k"\nmemory = 64\n'
            f'disk = ["format=raw, vdev=xvda1, access=rw, target={xfs}/blank.img"]\n')
        result = xenlfs("guest", "clone", "blank", "b1", "--config-dir", str(xen))
        assert result.returncode == 3, result.stderr
        assert "holds no filesystem" in result.stderr
        assert "removing" in result.stderr and "Traceback" not in result.stderr
        assert sorted(os.listdir(xfs)) == ["blank.img"] and not (xen / "b1.cfg").exists()
        assert our_mounts() == []


def start_clone(workdir: Path, *args: str) -> subprocess.Popen[str]:
    """`xenlfs guest clone` in its own process group, as a user's shell would start it."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[3] / "src"),
               XDG_CONFIG_HOME="/nonexistent")
    return subprocess.Popen([sys.executable, "-m", "xenlfs", "guest", "clone", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                            env=env, cwd=workdir, start_new_session=True)


def kill_when(proc: subprocess.Popen[str], reached: Callable[[], bool]) -> None:
    """SIGKILL the clone's whole process group (cp, ssh-keygen with it) the moment `reached`
    is true; fail if the clone finished before that."""
    deadline = time.monotonic() + 120
    while not reached():
        assert proc.poll() is None, "the clone finished before the phase to kill it in"
        assert time.monotonic() < deadline, "the phase never came"
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def loops_over(directory: Path) -> list[str]:
    out = sh("losetup", "--list", "--noheadings", "--output", "BACK-FILE").stdout
    return [line for line in out.split() if line.startswith(str(directory))]


def mounted_at(where: str) -> Callable[[], bool]:
    return lambda: bool(our_mounts(where))


@pytest.mark.parametrize(("mkfs", "flags", "phase"), [
    (["mkfs.ext4", "-q"], ["--full-copy"], "copying"),  # cp still filling the temp image
    (["mkfs.xfs", "-q", "-m", "reflink=1"], [], "mounted"),  # the identity being edited
    (["mkfs.xfs", "-q", "-m", "reflink=1"], [], "keys"),  # new host keys half made
])
def test_a_clone_killed_halfway_leaves_nothing_and_a_rerun_converges(
        xenlfs, workdir: Path, mkfs: list[str], flags: list[str], phase: str):
    with filesystem(workdir, mkfs) as fs:
        xen = prepare_source(xenlfs, workdir, str(fs / "src.img"))
        temp = fs / ".xenlfs-clone-tmp-web1.img"
        mnt = Path("/run/xenlfs/guest-web1")
        reached = {
            "copying": lambda: temp.exists() and temp.stat().st_blocks > 0,
            "mounted": mounted_at("web1"),
            "keys": lambda: any((mnt / "etc/ssh").glob("ssh_host_*_key")),
        }[phase]
        proc = start_clone(workdir, "src", "web1", "--config-dir", str(xen), *flags)
        kill_when(proc, reached)
        # killed: nothing bears the clone's name; its temporary image is left
        assert not (fs / "web1.img").exists() and not (xen / "web1.cfg").exists()
        assert temp.exists()
        if phase != "copying":  # the killed run's mount and loop are there to clean up
            assert our_mounts("web1") and loops_over(fs)
        looked = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen), *flags,
                        "--dry-run")
        assert looked.returncode == 0, looked.stderr
        assert f"would remove {temp}, left by a clone that was killed" in looked.stderr
        assert temp.exists()
        result = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen), *flags)
        assert result.returncode == 0, result.stderr
        assert "left by a clone that was killed" in result.stderr
        assert sorted(set(os.listdir(fs)) - {"lost+found"}) == ["src.img", "web1.img"]
        assert loops_over(fs) == [] and our_mounts() == []
        check_distinct(xen, ["web1"], workdir)


def test_a_clone_killed_between_its_volume_and_its_config_is_finished_by_the_rerun(
        xenlfs, workdir: Path):
    """strace kills the clone instead of its second link(2): the volume has the clone's name,
    its config is still pending. The rerun puts that config in place instead of refusing the
    volume as another guest's, and a second rerun refuses (the clone exists)."""
    with filesystem(workdir, ["mkfs.xfs", "-q", "-m", "reflink=1"]) as xfs:
        xen = prepare_source(xenlfs, workdir, str(xfs / "src.img"))
        killed = subprocess.run(
            ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=link,linkat",
             "-e", "inject=link,linkat:error=EIO:signal=KILL:when=2", sys.executable, "-m",
             "xenlfs", "guest", "clone", "src", "web1", "--config-dir", str(xen)],
            capture_output=True, text=True, check=False,
            env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[3] / "src"),
                     XDG_CONFIG_HOME="/nonexistent"))
        assert killed.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), killed.stderr
        pending = xen / ".xenlfs-clone-tmp-web1.cfg.pending"
        assert (xfs / "web1.img").is_file() and not (xen / "web1.cfg").exists()
        assert pending.is_file() and not (xfs / ".xenlfs-clone-tmp-web1.img").exists()

        looked = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen), "--dry-run")
        assert looked.returncode == 0, looked.stderr
        assert "would put" in looked.stdout and pending.is_file()
        assert not (xen / "web1.cfg").exists()

        result = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen), "--json")
        assert result.returncode == 0, result.stderr
        assert "killed before its config was in place" in result.stderr
        [done] = json.loads(result.stdout)["clones"]
        assert done["name"] == "web1" and done["volume"] == str(xfs / "web1.img")
        assert not pending.exists() and (xen / "web1.cfg").is_file()
        assert sorted(p.name for p in xen.iterdir()) == ["src.cfg", "web1.cfg"]
        check_distinct(xen, ["web1"], workdir)
        assert done["macs"] == [re.search(r"mac=([0-9a-f:]+)", str(
            config_of(xen / "web1.cfg")["vif"][0]))[1]]

        again = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen))
        assert again.returncode == 3 and "a clone never replaces a guest" in again.stderr


def test_json_reports_each_clone(xenlfs, workdir: Path):
    with filesystem(workdir, ["mkfs.xfs", "-q", "-m", "reflink=1"]) as xfs:
        xen = prepare_source(xenlfs, workdir, str(xfs / "src.img"))
        result = xenlfs("guest", "clone", "src", "web1", "web2", "--config-dir", str(xen),
                        "--ip", "192.168.1.11/24", "--ip", "192.168.1.12/24",
                        "--gateway", "192.168.1.1", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["source"]["name"] == "src" and report["dry_run"] is False
        assert report["backend"]["kind"] == "reflink copy"
        clones = report["clones"]
        assert [c["name"] for c in clones] == ["web1", "web2"]
        assert [c["ip"] for c in clones] == ["192.168.1.11/24", "192.168.1.12/24"]
        for c in clones:
            assert c["volume"] == str(xfs / f"{c['name']}.img") and c["backend"] == "reflink copy"
            assert len(c["macs"]) == 1 and re.fullmatch(r"00:16:3e(:[0-9a-f]{2}){3}", c["macs"][0])
            assert c["macs"][0] in (xen / f"{c['name']}.cfg").read_text()
            assert isinstance(c["seconds"], float) and c["seconds"] > 0
            with inside(c["volume"], workdir) as root:
                assert (root / "etc/machine-id").read_text() == c["machine_id"] + "\n"
        dhcp = xenlfs("guest", "clone", "src", "web3", "--config-dir", str(xen), "--json",
                      "--dry-run")
        assert dhcp.returncode == 0, dhcp.stderr
        planned = json.loads(dhcp.stdout)
        assert planned["dry_run"] is True and planned["clones"][0]["ip"] == "dhcp"
        assert planned["clones"][0]["machine_id"] is None
        assert not (xfs / "web3.img").exists()


def test_a_symlink_at_the_temporary_name_is_never_followed(xenlfs, workdir: Path):
    with filesystem(workdir, ["mkfs.xfs", "-q", "-m", "reflink=1"]) as xfs:
        xen = prepare_source(xenlfs, workdir, str(xfs / "src.img"))
        victim = workdir / "victim"
        victim.write_text("the host's file\n")
        (xfs / ".xenlfs-clone-tmp-web1.img").symlink_to(victim)
        result = xenlfs("guest", "clone", "src", "web1", "--config-dir", str(xen))
        assert result.returncode == 0, result.stderr
        assert victim.read_text() == "the host's file\n"
        assert sorted(os.listdir(xfs)) == ["src.img", "web1.img"]
        check_distinct(xen, ["web1"], workdir)
