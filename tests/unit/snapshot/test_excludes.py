from __future__ import annotations

import pytest

from xenlfs.errors import UsageError
from xenlfs.snapshot import excludes as ex

# A real LFS host's mountinfo: separate /boot and /home, a USB stick whose label has a space,
# a bind-mounted file, and the LFS partition mounted at /mnt/lfs with its virtual filesystems.
MOUNTINFO = r"""22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
25 22 0:5 / /dev rw,nosuid shared:8 - devtmpfs devtmpfs rw,size=4096k
26 25 0:23 / /dev/pts rw,nosuid,noexec,relatime shared:9 - devpts devpts rw,gid=5
27 22 0:24 / /run rw,nosuid,nodev shared:10 - tmpfs tmpfs rw,mode=755
28 22 8:1 / /boot rw,relatime shared:29 - ext4 /dev/sda1 rw
29 22 8:3 / /home rw,relatime shared:30 - ext4 /dev/sda3 rw
30 22 8:17 / /media/USB\040STICK rw,relatime shared:31 - vfat /dev/sdb1 rw
31 22 8:2 /etc/hostname.real /etc/hostname rw,relatime shared:1 - ext4 /dev/sda2 rw
32 22 8:4 / /mnt/lfs rw,relatime shared:32 - ext4 /dev/sda4 rw
33 32 0:5 / /mnt/lfs/dev rw,nosuid shared:8 - devtmpfs devtmpfs rw,size=4096k
34 32 0:21 / /mnt/lfs/proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
35 22 0:40 / /srv/data\134x rw,relatime shared:33 - xfs /dev/sdc1 rw
"""

FILES = {"/etc/hostname"}


def is_dir(path: str) -> bool:
    return path not in FILES


def plan(root: str = "/", **kwargs: object) -> dict[str, ex.Exclude]:
    mounts = ex.parse_mountinfo(MOUNTINFO)
    return {e.path: e for e in ex.plan(root, mounts, is_dir=is_dir, **kwargs)}  # type: ignore[arg-type]


def test_mountinfo_fields_and_escapes():
    mounts = ex.parse_mountinfo(MOUNTINFO)
    assert mounts[0] == ex.Mount("/", "ext4", "/dev/sda2")
    assert ex.Mount("/media/USB STICK", "vfat", "/dev/sdb1") in mounts
    assert ex.Mount("/srv/data\\x", "xfs", "/dev/sdc1") in mounts
    assert len(mounts) == 14


def test_optional_fields_of_any_number_are_skipped():
    line = "40 22 8:5 / /opt rw shared:3 master:1 propagate_from:2 - btrfs /dev/sda5 rw"
    assert ex.parse_mountinfo(line) == [ex.Mount("/opt", "btrfs", "/dev/sda5")]


def test_hint_directories_are_kept_empty_and_lost_found_dropped():
    excludes = plan()
    for path in ("/proc", "/sys", "/dev", "/run", "/tmp", "/boot", "/var/backups", "/mnt"):
        assert excludes[path].keep_dir, path
        assert excludes[path].pattern == f".{path}/*"
    assert excludes["/lost+found"].pattern == "./lost+found"
    assert not excludes["/var/lost+found"].keep_dir


def test_every_other_mounted_filesystem_is_left_out():
    excludes = plan()
    assert excludes["/home"].reason == "mount: ext4 /dev/sda3"
    assert excludes["/home"].keep_dir
    assert "/home/lost+found" not in excludes  # inside /home/*, which is left out
    assert excludes["/srv/data\\x"].pattern == "./srv/data\\x/*"
    # a bind-mounted file is left out whole: there is no directory to keep
    assert excludes["/etc/hostname"].pattern == "./etc/hostname"
    # nothing inside an excluded tree is listed again
    assert "/dev/pts" not in excludes
    assert "/mnt/lfs" not in excludes
    assert "/media/USB STICK" not in excludes


def test_wildcard_characters_in_paths_are_taken_literally():
    mounts = ex.parse_mountinfo("50 22 8:6 / /data[1]* rw - ext4 /dev/sda6 rw")
    (data,) = [e for e in ex.plan("/", mounts, is_dir=is_dir) if e.path.startswith("/data")]
    assert data.pattern == "./data[[]1][*]/*"
    excluded = ex.matcher([data.pattern])
    assert excluded("data[1]*/file")
    assert not excluded("data11/file")


def test_a_tree_below_root_sees_only_its_own_mounts():
    excludes = plan("/mnt/lfs")
    assert excludes["/dev"].reason == "hint"
    assert "/home" not in excludes
    assert excludes["/proc"].keep_dir


def test_include_lets_a_mounted_filesystem_in_but_not_its_lost_found():
    excludes = plan(includes=["/home/"])
    assert "/home" not in excludes
    assert excludes["/home/lost+found"].pattern == "./home/lost+found"
    assert "/boot" in plan()
    assert "/boot" not in plan(includes=["/boot"])


def test_include_of_something_not_excluded_is_a_usage_error():
    with pytest.raises(UsageError, match="nothing is excluded there"):
        plan(includes=["/usr"])


def test_user_excludes_literal_and_wildcard():
    excludes = plan(user_excludes=["/var/cache/apt/archives", "var/log/*.gz"])
    assert excludes["/var/cache/apt/archives"].pattern == "./var/cache/apt/archives"
    assert excludes["/var/log/*.gz"].pattern == "./var/log/*.gz"
    excluded = ex.matcher([e.pattern for e in excludes.values()])
    assert excluded("var/log/syslog.1.gz")
    assert not excluded("var/log/syslog")
    assert excluded("proc/1")
    assert not excluded("proc")


def test_the_output_and_its_temporary_files_are_excluded_when_inside_the_root():
    excludes = plan(output_paths=["/srv/snap.tar.zst", "/srv/.xenlfs-snapshot-tmp-*"])
    excluded = ex.matcher([e.pattern for e in excludes.values()])
    assert excluded("srv/snap.tar.zst")
    assert excluded("srv/.xenlfs-snapshot-tmp-snap.tar.zst.x1y2")
    assert not excluded("srv/other")


def test_mount_of_picks_the_deepest_mount():
    mounts = ex.parse_mountinfo(MOUNTINFO)
    assert ex.mount_of("/proc/self", mounts) == ex.Mount("/proc", "proc", "proc")
    assert ex.mount_of("/var/backups", mounts) == mounts[0]
    assert ex.mount_of("/mnt/lfs/dev/null", mounts).fstype == "devtmpfs"  # type: ignore[union-attr]
