"""One line of a snapshot's manifest: what an archive member (or a live file) is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TYPES = ("file", "hardlink", "symlink", "char", "block", "dir", "fifo")

# Which fields are content and which are metadata, for `verify --against`.
CONTENT = ("type", "size", "sha256", "target", "rdev")
METADATA = ("mode", "uid", "gid", "mtime_ns", "xattrs")


@dataclass(frozen=True, slots=True)
class Entry:
    path: str  # relative to the snapshot's root, '.' for the root; non-UTF-8 bytes escaped
    type: str
    mode: int  # permission bits incl. setuid/setgid/sticky
    uid: int
    gid: int
    mtime_ns: int
    size: int = 0  # logical size of a file (a sparse file's holes count)
    sha256: str | None = None  # of a file's content
    target: str | None = None  # a symlink's text; a hardlink's first path
    rdev: tuple[int, int] | None = None  # a device node's major, minor
    xattrs: tuple[tuple[str, str], ...] = ()  # sorted (name, hex value); ACLs are xattrs

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "type": self.type, "mode": f"{self.mode:04o}",
                                "uid": self.uid, "gid": self.gid, "mtime_ns": self.mtime_ns}
        if self.type == "file":
            data["size"] = self.size
            data["sha256"] = self.sha256
        if self.target is not None:
            data["target"] = self.target
        if self.rdev is not None:
            data["rdev"] = list(self.rdev)
        if self.xattrs:
            data["xattrs"] = dict(self.xattrs)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        rdev = data.get("rdev")
        return cls(path=data["path"], type=data["type"], mode=int(data["mode"], 8),
                   uid=data["uid"], gid=data["gid"], mtime_ns=data["mtime_ns"],
                   size=data.get("size", 0), sha256=data.get("sha256"),
                   target=data.get("target"),
                   rdev=(int(rdev[0]), int(rdev[1])) if rdev is not None else None,
                   xattrs=tuple(sorted(data.get("xattrs", {}).items())))
