from __future__ import annotations

import hashlib
from pathlib import Path

from xenlfs.digest import file_digest


def test_file_digest_is_the_sha256_of_the_whole_file(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # more than one read block
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()
