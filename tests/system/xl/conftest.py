from __future__ import annotations

import pytest

from tests.oracle.xl import Oracle, build_shim, find_xl


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    xl = find_xl()
    if xl is None:
        pytest.fail("xl is not installed: apt-get install xen-utils-4.17 "
                    "(see deps/debian-packages.txt)")
    return Oracle(xl, build_shim(tmp_path_factory.mktemp("xlshim")))
