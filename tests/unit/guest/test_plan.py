"""Planning the step-5 edits on fixture trees: what is detected, done, and left out."""

from __future__ import annotations

import os
from pathlib import Path

from xenlfs.guest import detect
from xenlfs.guest.plan import GuestOptions, Plan, WriteFile, plan_edits
from xenlfs.guest.rootfs import GuestRoot

OPTS = GuestOptions(name="g1", hostname="g1", iface="enX0")


def lfs_tree(root: Path) -> Path:
    (root / "etc/rc.d/init.d").mkdir(parents=True)
    (root / "etc/sysconfig").mkdir()
    (root / "etc/rc.d/init.d/rc").write_text("#!/bin/sh\n")
    (root / "etc/inittab").write_text("1:2345:respawn:/sbin/agetty tty1 9600\n")
    (root / "etc/sysconfig/ifconfig.enp3s0").write_text("ONBOOT=yes\nIFACE=enp3s0\n"
                                                         "SERVICE=ipv4-static\nIP=10.0.0.2\n")
    (root / "var").mkdir()
    return root


def described(plan: Plan) -> list[str]:
    return [a.describe() for a in plan.actions]


def test_lfs_tree_gets_every_edit(tmp_path: Path):
    plan = plan_edits(GuestRoot(lfs_tree(tmp_path)), OPTS)
    assert plan.system.init == detect.LFS
    got = described(plan)
    for expected in ("mkdir -m 1777 /tmp", "mkdir -m 755 /boot", "ln -s /run /var/run",
                     "ln -s /run/lock /var/lock", "mknod -m 600 /dev/console c 5 1",
                     "mknod -m 666 /dev/null c 1 3"):
        assert expected in got
    files = {a.path: a for a in plan.actions if isinstance(a, WriteFile)}
    assert set(files) == {"/etc/fstab", "/etc/inittab", "/etc/sysconfig/ifconfig.enX0",
                          "/etc/hostname", "/etc/hosts"}
    # the host's ifconfig.enp3s0 is the base of the guest's, with the guest's interface
    assert "IFACE=enX0" in files["/etc/sysconfig/ifconfig.enX0"].new
    assert "IP=10.0.0.2" in files["/etc/sysconfig/ifconfig.enX0"].new
    assert not plan.skipped and not plan.problems


def test_systemd_tree_skips_inittab_and_network_and_says_so(tmp_path: Path):
    (tmp_path / "lib/systemd").mkdir(parents=True)
    (tmp_path / "lib/systemd/systemd").write_text("")
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin/init").symlink_to("/lib/systemd/systemd")
    (tmp_path / "etc").mkdir()
    plan = plan_edits(GuestRoot(tmp_path), OPTS)
    assert plan.system.init == detect.SYSTEMD
    paths = [a.path for a in plan.actions if isinstance(a, WriteFile)]
    assert "/etc/inittab" not in paths
    assert any(s.startswith("/etc/inittab") for s in plan.skipped)
    assert any(s.startswith("network") for s in plan.skipped)


def test_existing_links_and_non_empty_var_run(tmp_path: Path):
    lfs_tree(tmp_path)
    (tmp_path / "var/lock").symlink_to("../run/lock")
    (tmp_path / "var/run").mkdir()
    (tmp_path / "var/run/pid").write_text("1\n")
    plan = plan_edits(GuestRoot(tmp_path), OPTS)
    assert any(d.startswith("/var/lock -> ../run/lock") for d in plan.done)
    assert any(s.startswith("/var/run -> /run") for s in plan.skipped)


def test_hostile_links_are_problems_not_edits(tmp_path: Path):
    (tmp_path / "etc").symlink_to("/etc")
    (tmp_path / "dev").symlink_to("/dev")
    plan = plan_edits(GuestRoot(tmp_path), OPTS)
    assert any(p.startswith("/etc/fstab") for p in plan.problems)
    assert any(p.startswith("/dev") for p in plan.problems)
    assert not [a for a in plan.actions if a.path.startswith(("/etc", "/dev"))]


def test_linked_file_is_replaced_and_said(tmp_path: Path):
    lfs_tree(tmp_path)
    os.symlink("../../../../../../etc/inittab", tmp_path / "etc/fstab")
    plan = plan_edits(GuestRoot(tmp_path), OPTS)
    fstab = next(a for a in plan.actions if isinstance(a, WriteFile)
                 and a.path == "/etc/fstab")
    assert "symlink to ../../../../../../etc/inittab" in fstab.describe()
    assert fstab.old == "1:2345:respawn:/sbin/agetty tty1 9600\n"  # what the guest reads


def test_the_filesystem_found_is_given_apart_from_what_the_user_asked(tmp_path: Path):
    assert not hasattr(OPTS, "fstype")  # a fact of the target, not an option
    plan = plan_edits(GuestRoot(lfs_tree(tmp_path)), OPTS, fstype="ext3")
    fstab = next(a for a in plan.actions if isinstance(a, WriteFile) and a.path == "/etc/fstab")
    assert fstab.new.splitlines()[1].split()[:3] == ["/dev/xvda1", "/", "ext3"]
