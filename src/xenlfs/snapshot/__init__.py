"""Step 0 of the hint: a snapshot of the root filesystem (appendix A), done properly.

    excludes  what is left out: the hint's list, other mounts, lost+found
    create    GNU tar → tarscan (hashes, manifest) → zstd/gzip/xz → atomic temp → rename
    atomic    locked temporary files; stale ones from killed runs cleaned up
    manifest  ARCHIVE.manifest.jsonl: metadata and one Entry per member
    verify    whole archive vs manifest; manifest vs a live tree
    catalog   list and show
    extract   restore with GNU tar, jailed to the destination (also any tar, compressed or not)

The stable entry points for other steps: extract(archive, dest) and
create.create(create.Request(root, output, compression)).
"""

from __future__ import annotations

from xenlfs.snapshot.extract import extract

__all__ = ["extract"]
