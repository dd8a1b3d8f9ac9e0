"""Step 0 of the hint: a snapshot of the root filesystem (appendix A), done properly.

create() writes a POSIX tar (GNU tar) compressed by zstd/gzip/xz with a manifest beside it;
extract() restores one; verify() checks one against its manifest or a live tree.
"""

from __future__ import annotations

from xenlfs.snapshot.extract import extract

__all__ = ["extract"]
