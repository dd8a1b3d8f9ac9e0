"""The confined resolver: guest paths resolve as the guest sees them, never outside its root.

Runs without root: fixture trees in tmp_path, with a sentinel directory beside the guest
that every hostile link would reach if it were followed from the host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenlfs.guest.rootfs import GuestPathError, GuestRoot


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    guest, sentinel = tmp_path / "guest", tmp_path / "sentinel"
    (guest / "etc").mkdir(parents=True)
    (guest / "usr/lib").mkdir(parents=True)
    (guest / "etc/inittab").write_text("guest inittab\n")
    (sentinel / "etc").mkdir(parents=True)
    (sentinel / "etc/fstab").write_text("SENTINEL\n")
    return guest, sentinel


def test_absolute_link_is_rooted_at_the_guest(trees: tuple[Path, Path]):
    guest, sentinel = trees
    os.symlink(str(sentinel / "etc/fstab"), guest / "etc/fstab")
    root = GuestRoot(guest)
    # in the guest, /<tmp>/sentinel/etc/fstab does not exist
    assert root.read_text("/etc/fstab") is None
    root.write_text("/etc/fstab", "guest fstab\n")
    assert (sentinel / "etc/fstab").read_text() == "SENTINEL\n"
    assert not (guest / "etc/fstab").is_symlink()
    assert (guest / "etc/fstab").read_text() == "guest fstab\n"


def test_dotdot_never_climbs_above_the_guest_root(trees: tuple[Path, Path]):
    guest, sentinel = trees
    # From the host this link reaches the sentinel; in the guest '..' stops at its root.
    escape = "../" * (len(guest.parts) + 3) + str(sentinel).lstrip("/") + "/etc/fstab"
    os.symlink(escape, guest / "etc/fstab")
    (guest / "etc/inittab.link").symlink_to("../../../../../../../etc/inittab")
    root = GuestRoot(guest)
    assert root.resolve("/etc/fstab") == f"{sentinel}/etc/fstab"
    assert root.read_text("/etc/fstab") is None
    assert root.read_text("/etc/inittab.link") == "guest inittab\n"
    assert root.resolve("/../../..") == "/"
    root.write_text("/etc/fstab", "guest\n")
    assert (sentinel / "etc/fstab").read_text() == "SENTINEL\n"


def test_relative_and_absolute_links_inside_the_guest(trees: tuple[Path, Path]):
    guest, _ = trees
    (guest / "lib").symlink_to("usr/lib")
    (guest / "usr/lib/x").write_text("x\n")
    (guest / "etc/abs").symlink_to("/usr/lib/x")
    root = GuestRoot(guest)
    assert root.resolve("/lib/x") == "/usr/lib/x"
    assert root.read_text("etc/abs") == "x\n"
    assert root.resolve("/etc/abs", follow=False) == "/etc/abs"


def test_directory_link_to_host_path_is_followed_in_the_guest(trees: tuple[Path, Path]):
    guest, sentinel = trees
    (guest / "etc").rename(guest / "etc.real")
    os.symlink(str(sentinel / "etc"), guest / "etc")
    root = GuestRoot(guest)
    assert root.read_text("/etc/fstab") is None
    with pytest.raises(FileNotFoundError):
        root.write_text("/etc/fstab", "x\n")  # the guest has no such directory
    assert sorted(p.name for p in (sentinel / "etc").iterdir()) == ["fstab"]


@pytest.mark.parametrize("links", [
    {"etc": "/etc"},  # a link to itself, as the guest sees it
    {"etc": "etc2", "etc2": "/etc"},
    {"dev": "/dev"},
])
def test_loops_are_reported_not_followed(tmp_path: Path, links: dict[str, str]):
    for name, target in links.items():
        (tmp_path / name).symlink_to(target)
    root = GuestRoot(tmp_path)
    name = next(iter(links))
    with pytest.raises(GuestPathError, match="loop"):
        root.resolve(f"/{name}/x")
    with pytest.raises(GuestPathError):
        root.write_text(f"/{name}/x", "no\n")


def test_file_used_as_directory(trees: tuple[Path, Path]):
    guest, _ = trees
    with pytest.raises(GuestPathError, match="not a directory"):
        GuestRoot(guest).resolve("/etc/inittab/x")


def test_missing_paths_and_mkdir_inside_links(trees: tuple[Path, Path]):
    guest, _ = trees
    (guest / "media").symlink_to("/usr/lib")
    root = GuestRoot(guest)
    assert root.node("/no/such/file").st is None
    root.mkdir("/media/floppy", 0o750)
    assert (guest / "usr/lib/floppy").is_dir()
    assert (guest / "usr/lib/floppy").stat().st_mode & 0o7777 == 0o750


def test_write_keeps_mode_of_an_existing_file(trees: tuple[Path, Path]):
    guest, _ = trees
    os.chmod(guest / "etc/inittab", 0o600)
    GuestRoot(guest).write_text("/etc/inittab", "new\n")
    assert (guest / "etc/inittab").stat().st_mode & 0o777 == 0o600
    assert not [p for p in (guest / "etc").iterdir() if p.name.startswith(".xenlfs")]
