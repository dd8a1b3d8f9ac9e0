"""Which of apt's source versions comes first when the newest cannot be downloaded."""

from __future__ import annotations

import functools
import shutil

import pytest

from xenlfs.recipes import sources

pytestmark = pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")


def test_source_versions_are_ordered_as_dpkg_orders_them() -> None:
    versions = ["4.17.5+72-g01140da4e8-1", "4.17.10-1", "4.17.7+13-g2445b30a44-0+deb12u1",
                "4.17.7+13-g2445b30a44-0+deb12u1~1"]
    ordered = sorted(versions, key=functools.cmp_to_key(sources._debian_version_compare))
    assert ordered == ["4.17.5+72-g01140da4e8-1", "4.17.7+13-g2445b30a44-0+deb12u1~1",
                       "4.17.7+13-g2445b30a44-0+deb12u1", "4.17.10-1"]
