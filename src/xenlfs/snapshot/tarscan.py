"""Reading a POSIX tar stream as it goes by: one Entry per member, file contents hashed.

create() feeds it the bytes GNU tar writes on their way to the compressor, so the tree is
read once; verify() feeds it a decompressed archive. Push-based, so no byte is buffered
twice; Python's tarfile is several times slower per member.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

from xenlfs.errors import XenlfsError
from xenlfs.snapshot.entry import Entry

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
ZEROS = memoryview(bytes(1 << 20))
EMPTY_SHA256 = hashlib.sha256().hexdigest()

TYPEFLAGS = {b"0": "file", b"\0": "file", b"7": "file", b"1": "hardlink", b"2": "symlink",
             b"3": "char", b"4": "block", b"5": "dir", b"6": "fifo"}


class ArchiveDamaged(XenlfsError):
    """The bytes are not a whole, well-formed tar archive."""


def _padded(size: int) -> int:
    return -size % BLOCK


def _number(field: bytes) -> int:
    if field[0] & 0x80:  # GNU base-256 for values that do not fit in octal
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] & 0x40 else value
    return int(field.split(b"\0", 1)[0] or b"0", 8)  # int() skips the spaces


def _ns(text: bytes) -> int:
    sign = -1 if text.startswith(b"-") else 1
    seconds, _, fraction = text.lstrip(b"-").partition(b".")
    return sign * (int(seconds) * 1_000_000_000 + int((fraction[:9] or b"0").ljust(9, b"0")))


def _relative(name: bytes) -> str:
    """'./usr/bin/' → 'usr/bin'; the root itself is '.'."""
    while name.startswith(b"./"):
        name = name[2:]
    name = name.rstrip(b"/")
    return os.fsdecode(name) if name not in (b"", b".") else "."


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1:pos + length - 1].partition(b"=")
        records[key] = value
        pos += length
    return records


class Scanner:
    """feed() the stream in pieces of any size; entries fill up; ended when the end marker came."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.ended = False
        self.content_bytes = 0
        self.offset = 0  # bytes fed so far, for error messages
        self._pending = bytearray()
        self._need = BLOCK
        self._on_block: Callable[[bytes], None] = self._header
        self._skip = 0
        self._remaining = 0
        self._pax: dict[bytes, bytes] = {}
        self._long: dict[bytes, bytes] = {}
        self._member: dict[str, Any] = {}
        self._hash: Any = None
        self._segments: list[tuple[int, int]] | None = None
        self._logical = 0
        self._segment_left = 0
        self._stored = 0
        self._extension_size = 0

    def feed(self, data: bytes | memoryview) -> None:
        try:
            self._feed(memoryview(data))
        except (ValueError, IndexError, KeyError) as e:
            raise ArchiveDamaged(f"damaged tar data before byte {self.offset} of the "
                                 f"uncompressed stream ({type(e).__name__})") from e

    def _feed(self, view: memoryview) -> None:
        pos, end = 0, len(view)
        self.offset += end
        while pos < end:
            if self.ended:
                return
            if self._remaining:
                n = min(self._remaining, end - pos)
                self._data(view[pos:pos + n])
                self._remaining -= n
                pos += n
                if not self._remaining:
                    self._finish_file()
            elif self._skip:
                n = min(self._skip, end - pos)
                self._skip -= n
                pos += n
            elif not self._pending and end - pos >= self._need:
                block = view[pos:pos + self._need].tobytes()
                pos += self._need
                self._on_block(block)
            else:
                n = min(self._need - len(self._pending), end - pos)
                self._pending += view[pos:pos + n]
                pos += n
                if len(self._pending) == self._need:
                    block = bytes(self._pending)
                    self._pending.clear()
                    self._on_block(block)

    def finish(self) -> None:
        """The stream ended: it must have ended where a tar archive ends."""
        if not self.ended:
            raise ArchiveDamaged(f"the archive is truncated: it ends after {self.offset} bytes "
                                 "without tar's end-of-archive marker")

    # --- blocks -------------------------------------------------------------------------

    def _header(self, block: bytes) -> None:
        if block == ZERO_BLOCK:
            self.ended = True
            return
        if _number(block[148:156]) != sum(block) - sum(block[148:156]) + 8 * 32:
            raise ArchiveDamaged(f"bad tar header checksum at byte {self.offset} of the "
                                 "uncompressed stream")
        flag = block[156:157]
        size = _number(block[124:136])
        if flag == b"x" and size:  # the common case, once per member: no closure
            self._need, self._on_block, self._extension_size = size + _padded(size), \
                self._pax_block, size
            return
        if flag in (b"x", b"g", b"L", b"K"):
            self._want(size, lambda data: self._extension(flag, data[:size]))
            return
        pax, self._pax = self._pax, {}
        long, self._long = self._long, {}
        kind = TYPEFLAGS.get(flag)
        if kind is None:
            raise ArchiveDamaged(f"unsupported tar member type {flag!r} at byte {self.offset}")
        name = pax.get(b"GNU.sparse.name") or pax.get(b"path") or long.get(b"L")
        if name is None:
            prefix = block[345:500].split(b"\0", 1)[0]
            name = block[0:100].split(b"\0", 1)[0]
            name = prefix + b"/" + name if prefix else name
        link = pax.get(b"linkpath") or long.get(b"K") or block[157:257].split(b"\0", 1)[0]
        size = int(pax[b"size"]) if b"size" in pax else size
        member: dict[str, Any] = {
            "path": _relative(name), "type": kind, "mode": _number(block[100:108]) & 0o7777,
            "uid": int(pax[b"uid"]) if b"uid" in pax else _number(block[108:116]),
            "gid": int(pax[b"gid"]) if b"gid" in pax else _number(block[116:124]),
            "mtime_ns": _ns(pax[b"mtime"]) if b"mtime" in pax
            else _number(block[136:148]) * 1_000_000_000,
            "xattrs": tuple(sorted((os.fsdecode(k[13:]), v.hex()) for k, v in pax.items()
                                   if k.startswith(b"SCHILY.xattr."))),
        }
        if kind == "symlink":
            member["target"] = os.fsdecode(link)
        elif kind == "hardlink":
            member["target"] = _relative(link)
        elif kind in ("char", "block"):
            member["rdev"] = (_number(block[329:337]), _number(block[337:345]))
        if kind != "file":
            self.entries.append(Entry(**member))
            self._skip = size + _padded(size)
            return
        self._member = member
        self._hash = hashlib.sha256()
        self._logical = 0
        if pax.get(b"GNU.sparse.major") == b"1":
            member["size"] = int(pax[b"GNU.sparse.realsize"])
            self._stored = size  # the map is block-aligned: padding follows the last segment
            self._sparse_map(b"", size)
            return
        member["size"] = size
        self._segments = None
        self._stored = size
        if size:
            self._remaining = size
        else:
            self._finish_file()

    def _want(self, size: int, then: Any) -> None:
        """Collect the next `size` bytes (padded to blocks), then call then(bytes)."""
        if not size:
            then(b"")
            return
        self._need = size + _padded(size)

        def done(data: bytes) -> None:
            self._need, self._on_block = BLOCK, self._header
            then(data)
        self._on_block = done

    def _pax_block(self, data: bytes) -> None:
        self._need, self._on_block = BLOCK, self._header
        self._pax = _pax_records(data[:self._extension_size])

    def _extension(self, flag: bytes, data: bytes) -> None:
        if flag == b"x":
            self._pax = _pax_records(data)
        elif flag in (b"L", b"K"):
            self._long[flag] = data.rstrip(b"\0")
        # 'g' (global) records carry nothing a snapshot needs

    def _sparse_map(self, read: bytes, stored: int) -> None:
        """GNU sparse 1.0: the data starts with a decimal map of (offset, size) segments."""
        numbers = read.split(b"\n")
        if read and len(numbers) > 1:
            count = int(numbers[0])
            if len(numbers) > 2 * count + 1:
                values = [int(n) for n in numbers[1:2 * count + 1]]
                self._segments = list(zip(values[0::2], values[1::2], strict=True))
                self._segments.reverse()
                self._segment_left = 0
                self._remaining = stored - len(read)
                if not self._remaining:
                    self._finish_file()
                return
        self._want(BLOCK, lambda block: self._sparse_map(read + block, stored))

    # --- file data ----------------------------------------------------------------------

    def _data(self, chunk: memoryview) -> None:
        if self._segments is None:
            self._hash.update(chunk)
            return
        while chunk:
            if not self._segment_left:
                if not self._segments:
                    raise ArchiveDamaged(f"sparse file {self._member['path']} has more data "
                                         "than its map")
                offset, self._segment_left = self._segments.pop()
                self._zeros(offset - self._logical)
                continue
            n = min(len(chunk), self._segment_left)
            self._hash.update(chunk[:n])
            chunk = chunk[n:]
            self._logical += n
            self._segment_left -= n

    def _zeros(self, count: int) -> None:
        self._logical += count
        while count > 0:
            n = min(count, len(ZEROS))
            self._hash.update(ZEROS[:n])
            count -= n

    def _finish_file(self) -> None:
        member = self._member
        if self._segments is not None:
            self._zeros(member["size"] - self._logical)
        self._skip = _padded(self._stored)
        member["sha256"] = self._hash.hexdigest()
        self.content_bytes += member["size"]
        self.entries.append(Entry(**member))
        self._hash = None
