from __future__ import annotations

from pathlib import Path

from xenlfs.lab import apt

MADISON = """\
linux-image-amd64 |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-amd64 |  6.1.176-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
xen-utils-4.17 | 4.17.7+13-g2445b30a44-0+deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
xen-utils-4.17 | 4.17.5+72-g01140da4e8-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
"""  # noqa: E501


def test_madison_picks_the_suites_own_version_not_security() -> None:
    assert apt.madison_versions(MADISON, "bookworm") == {
        "linux-image-amd64": "6.1.176-1", "xen-utils-4.17": "4.17.5+72-g01140da4e8-1"}
    assert apt.madison_versions(MADISON, "trixie") == {}


def test_kernel_package_from_the_meta_package() -> None:
    shown = "Package: linux-image-amd64\nDepends: linux-image-6.1.0-50-amd64 (= 6.1.176-1)\n"
    assert apt.depends_kernel(shown) == "linux-image-6.1.0-50-amd64"
    assert apt.depends_kernel("Package: x\n") is None


def test_apt_lists_stamp_follows_apt_get_update(tmp_path: Path) -> None:
    (tmp_path / "x_Packages").write_text("one")
    first = apt.apt_lists_stamp(tmp_path)
    assert apt.apt_lists_stamp(tmp_path) == first
    (tmp_path / "x_Packages").write_text("two, longer")
    assert apt.apt_lists_stamp(tmp_path) != first
