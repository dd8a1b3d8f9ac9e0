"""Disk specs (xl-disk-configuration(5)), read as libxlu's disk scanner reads them (Xen 4.17).

A spec is comma-separated. Keyword parameters (format=, vdev=, access=, devtype=, backend=,
backendtype=, script=, ...) may come anywhere; the rest are positional: target, format, vdev,
access. `target=` swallows everything after it, commas included, so it must come last. A
deprecated prefix (phy:, file:, tap:aio:, raw:, qcow2:, ...) before the target removes the
positional format: 'phy:/dev/sdc12,xvda1,w' is target, vdev, access. Without a prefix the
second positional is the format, which is why '/dev/sdc12,xvda1,w' fails ("unknown value for
format"). Like flex, the scanner takes the longest match at each point, the first rule on a tie.
4.17's libxlu_disk_l.l lists `trusted`/`untrusted`, but the scanner 4.17 ships (the generated
libxlu_disk_l.c, which its build uses) predates them: to the real xl they are positional
parameters ('phy:/dev/x,xvda1,w,untrusted' has one too many). The real xl decides here.
"""

from __future__ import annotations

import bisect
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from xenlfs.xl.cnum import cint

FORMATS = {"": "raw", "raw": "raw", "qcow": "qcow", "qcow2": "qcow2", "vhd": "vhd",
           "empty": "empty", "qed": "qed"}
BACKENDTYPES = ("phy", "tap", "qdisk", "standalone")


class DiskSpecError(Exception):
    """xl refuses this spec. `near` is the piece of the spec xl names, `offset` where it is."""

    def __init__(self, what: str, near: str | None, offset: int, fix: str) -> None:
        super().__init__(what)
        self.what, self.near, self.offset, self.fix = what, near, offset, fix


@dataclass
class Disk:
    """What libxl gets from one spec (only what xenlfs looks at)."""

    spec: str
    target: str | None = None  # libxl's pdev_path
    format: str | None = None
    vdev: str | None = None
    readwrite: bool = True
    is_cdrom: bool = False
    removable: bool = False
    backend: str | None = None  # backend domain name
    backendtype: str | None = None
    script: str | None = None
    specification: str | None = None
    deprecated_prefix: bool = False
    options: dict[str, str] = field(default_factory=dict)  # flags: discard, colo, ...


@dataclass
class _State:
    disk: Disk
    access_set: bool = False
    offset: int = 0
    text: str = ""


def _fail(st: _State, what: str, fix: str, near: str | None = None) -> DiskSpecError:
    return DiskSpecError(what, near if near is not None else st.text, st.offset, fix)


def _save(st: _State, attr: str, value: str) -> None:
    old = getattr(st.disk, attr)
    if old:  # an empty earlier value may be overwritten silently, as libxlu does
        raise _fail(st, f"{'target' if attr == 'target' else attr} given twice",
                    "give each parameter once", value)
    setattr(st.disk, attr, value)


def _set_enum(st: _State, attr: str, value: str) -> None:
    old = getattr(st.disk, attr)
    if old is not None and old != value:
        raise _fail(st, f"{attr} given twice, differently", "give each parameter once")
    setattr(st.disk, attr, value)


def _format(st: _State, value: str) -> None:
    if value not in FORMATS:
        raise _fail(st, f"unknown format '{value}'",
                    "formats are raw, qcow, qcow2, vhd, qed, empty; without a phy:/file: "
                    "prefix the 2nd positional parameter is the format: write "
                    "TARGET,FORMAT,VDEV,ACCESS or phy:TARGET,VDEV,ACCESS", value)
    _set_enum(st, "format", FORMATS[value])


def _access(st: _State, value: str) -> None:
    if value in ("r", "ro"):
        st.disk.readwrite = False
    elif value in ("rw", "w", ""):
        st.disk.readwrite = True
    else:
        raise _fail(st, f"unknown access '{value}'", "access is r, ro, w or rw", value)


def _vdev_and_devtype(st: _State, value: str) -> bool:
    if ":" not in value:
        return False
    vdev, _, devtype = value.rpartition(":")
    _save(st, "vdev", vdev)
    if devtype not in ("cdrom", "disk"):
        raise _fail(st, f"unknown device type '{devtype}'", "write VDEV:cdrom or VDEV:disk",
                    devtype)
    st.disk.is_cdrom = devtype == "cdrom"
    return True


def _positional(st: _State, value: str) -> None:
    d = st.disk
    if d.target is None:
        _save(st, "target", value)
    elif not d.deprecated_prefix and d.format is None:
        if not d.target and _vdev_and_devtype(st, value):
            d.format = "empty"
        else:
            _format(st, value)
    elif d.vdev is None:
        if not _vdev_and_devtype(st, value):
            _save(st, "vdev", value)
    elif not st.access_set:
        st.access_set = True
        _access(st, value)
    else:
        raise _fail(st, f"too many positional parameters: '{value}'",
                    "the positional parameters are TARGET,FORMAT,VDEV,ACCESS (TARGET,VDEV,"
                    "ACCESS after a phy:/file: prefix); name the others, e.g. devtype=cdrom")


def _flag(name: str, value: str) -> Callable[[_State, str], None]:
    def action(st: _State, _text: str) -> None:
        st.disk.options[name] = value
        if name == "devtype":
            st.disk.is_cdrom = value == "cdrom"
    return action


def _keyword(attr: str) -> Callable[[_State, str], None]:
    def action(st: _State, text: str) -> None:
        _save(st, attr, text.partition("=")[2].removesuffix(","))
    return action


def _with_value(fn: Callable[[_State, str], None]) -> Callable[[_State, str], None]:
    return lambda st, text: fn(st, text.partition("=")[2].removesuffix(","))


def _bad_devtype(st: _State, text: str) -> None:
    raise _fail(st, f"unknown devtype in '{text}'", "devtype is disk or cdrom")


def _backendtype(st: _State, value: str) -> None:
    if value not in BACKENDTYPES:
        raise _fail(st, f"unknown backendtype '{value}'", "backendtype is phy, tap or qdisk",
                    value)
    _set_enum(st, "backendtype", value)


def _specification(st: _State, value: str) -> None:
    if value not in ("xen", "virtio"):
        raise _fail(st, f"unknown specification '{value}'", "specification is xen or virtio",
                    value)
    _set_enum(st, "specification", value)


def _colo_port(st: _State, value: str) -> None:
    m = re.match(r"\s*[+-]?\d+", value)
    if not m or cint(m[0]) == 0:
        raise _fail(st, f"bad colo-port '{value}'", "give a port number", value)


def _prefix(st: _State, text: str) -> None:
    st.disk.deprecated_prefix = True
    name = text.removesuffix(":")
    if name in ("raw", "qcow", "qcow2", "vhd"):
        _format(st, name)
    elif name in ("iscsi", "nbd", "enbd", "drbd"):
        _save(st, "script", f"block-{name}")


def _unknown_prefix(st: _State, text: str) -> None:
    raise _fail(st, f"unknown disk prefix '{text}'",
                "known prefixes are phy:, file:, tap:aio:, raw:, qcow2:, vhd:; or use "
                "keywords: format=raw, vdev=xvda1, access=rw, target=/dev/sdc12 (target last)")


def _unknown_parameter(st: _State, text: str) -> None:
    name = text.partition("=")[0]
    raise _fail(st, f"unknown parameter '{name}='",
                "known: format= vdev= access= devtype= backend= backendtype= script= "
                "specification= target= (target= last)", name)


def _target(st: _State, text: str) -> None:
    _save(st, "target", text.partition("=")[2].removesuffix(","))
    st.disk.options["target="] = str(st.offset)


def _positional_action(st: _State, text: str) -> None:
    _positional(st, text.removesuffix(","))


# (pattern, trailing context or None, action), in libxlu's order. With a trailing context the
# match counts as long as pattern+context, but only the pattern is consumed. The two contexts
# are "the rest of the line" (.*) and "the rest of the line unless a letter or digit comes
# next"; their lengths are computed, not matched, so a spec of many prefixes stays linear.
_V = r"[^,]*,?"
_RULES: list[tuple[str, str | None, Callable[[_State, str], None]]] = [
    (r"format=" + _V, None, _with_value(_format)),
    (r"cdrom,?", None, _flag("devtype", "cdrom")),
    (r"devtype=cdrom,?", None, _flag("devtype", "cdrom")),
    (r"devtype=disk,?", None, _flag("devtype", "disk")),
    (r"devtype=" + _V, None, _bad_devtype),
    (r"access=" + _V, None, _with_value(_access)),
    (r"backend=" + _V, None, _keyword("backend")),
    (r"backendtype=" + _V, None, _with_value(_backendtype)),
    (r"specification=" + _V, None, _with_value(_specification)),
    (r"vdev=" + _V, None, _keyword("vdev")),
    (r"script=" + _V, None, _keyword("script")),
    (r"direct-io-safe,?", None, _flag("direct-io-safe", "1")),
    (r"discard,?", None, _flag("discard", "1")),
    (r"no-discard,?", None, _flag("discard", "0")),
    (r"colo,?", None, _flag("colo", "1")),
    (r"no-colo,?", None, _flag("colo", "0")),
    (r"colo-host=" + _V, None, _flag("colo-host", "1")),
    (r"colo-port=" + _V, None, _with_value(_colo_port)),
    (r"colo-export=" + _V, None, _flag("colo-export", "1")),
    (r"active-disk=" + _V, None, _flag("active-disk", "1")),
    (r"hidden-disk=" + _V, None, _flag("hidden-disk", "1")),
    (r"target=.*", None, _target),
    (r"[a-z][-a-z0-9]*=[^,],?", None, _unknown_parameter),
    (r"(?:raw|qcow2?|vhd):", r".*", _prefix),
    (r"(?:iscsi|e?nbd|drbd):", r".*", _prefix),
    (r"tapdisk:", r".*", _prefix),
    (r"tap2?:", r".*", _prefix),
    (r"aio:", r".*", _prefix),
    (r"ioemu:", r".*", _prefix),
    (r"file:", r".*", _prefix),
    (r"phy:", r".*", _prefix),
    (r"[a-z][a-z0-9]*:", r"(?:[^a-z0-9].*)?", _unknown_prefix),
    (r"[^=,]*,", None, _positional_action),
    (r"[^=,]+,?", None, _positional_action),
]
_Rule = tuple[re.Pattern[str], str | None, Callable[[_State, str], None]]
_COMPILED: list[_Rule] = [(re.compile(p), c, a) for p, c, a in _RULES]
_ALNUM = frozenset(string.ascii_lowercase + string.digits)


def _context_length(context: str, spec: str, j: int, line_end: int) -> int:
    """How much of spec[j:] a rule's trailing context matches; line_end: where the line
    holding j ends."""
    if context == r".*":
        return line_end - j
    if j < len(spec) and spec[j] not in _ALNUM:  # (?:[^a-z0-9].*)?
        return 1 + (line_end - j - 1 if spec[j] != "\n" else 0)
    return 0


def _could_start(pattern: str, c: str) -> bool:
    """Whether a rule may match at a `c`: rules that start with a class are tried on any
    character; the others only on their literal first letters."""
    if pattern.startswith("(?:"):
        return any(alt[:1] == c or (alt.startswith("e?") and c in "en")
                   for alt in pattern[3:pattern.index(")")].split("|"))
    return pattern[0] == "[" or pattern[0] == c


# The last two rules would scan to the next '=' or ',' from every position, which is
# quadratic in a spec of many short words; their extent comes from _next_stop instead.
_POSITIONAL = (_COMPILED[-2][0], _COMPILED[-1][0])


_STOP_CHARS = re.compile(r"[=,]")


def _next_stop(stops: list[int], spec: str, i: int) -> int:
    """Where the next '=' or ',' at or after i is (len(spec) if none); `stops` lists them."""
    after = bisect.bisect_left(stops, i)
    return stops[after] if after < len(stops) else len(spec)


_BY_FIRST: dict[str, list[_Rule]] = {}


def _rules_for(c: str) -> list[_Rule]:
    rules = _BY_FIRST.get(c)
    if rules is None:
        rules = [rule for rule, (p, _, _) in zip(_COMPILED, _RULES, strict=True)
                 if _could_start(p, c)]
        _BY_FIRST[c] = rules
    return rules


_SPACE = re.compile(r"[ \t\n]+")


# flex keeps one state per byte it reads for a word in a fixed buffer (YY_BUF_SIZE + 2
# states): reading 16,385 bytes or more for one word (the end of the spec counts as one)
# writes past it, and xl dies of heap corruption. Measured on xl 4.17 for eight shapes of
# spec (tests/system/xl): seven die exactly from here, one a byte later — past the buffer
# what happens depends on the heap, so we refuse from the first byte that is too many.
SCAN_LIMIT = 16_385


def _check_scan(st: _State, spec: str, i: int, extent: int) -> None:
    """Refuse a word whose reading (its match with any trailing context, `extent`
    characters from i) would overflow xl's scanner."""
    if extent * 4 < SCAN_LIMIT:  # a character is at most 4 bytes: far below the limit
        return
    read = len(spec[i:i + extent].encode("utf-8", "surrogateescape")) + (i + extent ==
                                                                        len(spec))
    if read >= SCAN_LIMIT:
        st.offset, st.text = i, spec[i:i + 40]
        raise _fail(st, f"xl's disk scanner reads {read} bytes from here at once, past its "
                    f"buffer of {SCAN_LIMIT - 1}: xl corrupts its memory and crashes",
                    "shorten the spec (a path of 16 KiB is more than any device needs)")


def parse(spec: str) -> Disk:
    """One disk spec → Disk, or DiskSpecError where xl would refuse it."""
    st = _State(Disk(spec))
    size = len(spec)
    newlines = [n for n, c in enumerate(spec) if c == "\n"] if "\n" in spec else []
    stops = [m.start() for m in _STOP_CHARS.finditer(spec)]
    positional_comma, positional = _POSITIONAL
    i = 0
    while i < size:
        space = _SPACE.match(spec, i)
        if space:  # its trailing context reaches the end of the line: no rule is longer
            after = bisect.bisect_left(newlines, space.end())
            _check_scan(st, spec, i, (newlines[after] if after < len(newlines) else size) - i)
            i = space.end()
            continue
        best_length, best_taken, best_action = 0, 0, None
        for pattern, context, action in _BY_FIRST.get(spec[i]) or _rules_for(spec[i]):
            if pattern is positional_comma or pattern is positional:
                # [^=,]*, and [^=,]+,? : measured, not scanned
                stop = _next_stop(stops, spec, i)
                comma = stop < size and spec[stop] == ","
                if not comma and (pattern is positional_comma or stop == i):
                    continue
                length = taken = stop - i + comma
            else:
                m = pattern.match(spec, i)
                if not m:
                    continue
                length = taken = m.end() - i
                if context is not None:
                    after = bisect.bisect_left(newlines, m.end())
                    line_end = newlines[after] if after < len(newlines) else size
                    length += _context_length(context, spec, m.end(), line_end)
            if best_action is None or length > best_length:
                best_length, best_taken, best_action = length, taken, action
        st.offset = i
        if best_action is None:
            if i == size - 1 and len(spec[i].encode("utf-8", "surrogateescape")) == 1:
                break  # the scanner drops one bad byte at the very end without a word
            st.text = spec[i:]
            raise _fail(st, f"bad disk syntax near '{spec[i:]}'",
                        "a parameter cannot start with '='; see xl-disk-configuration(5)")
        _check_scan(st, spec, i, best_length)
        st.text = spec[i:i + best_taken]
        best_action(st, st.text)
        i += best_taken
    d = st.disk
    st.offset, st.text = len(spec), ""
    if d.format is None:
        d.format = "raw"
    if d.is_cdrom:
        d.removable, d.readwrite = True, False
        if not d.target:
            d.format = "empty"
    if d.vdev is None:
        if "target=" in d.options and d.target and "," in d.target:
            st.offset = int(d.options["target="])
            raise _fail(st, f"no vdev: target= must be the last parameter, so "
                        f"'{d.target}' was all taken as the target path",
                        f"put target= last: '{_reordered(d.target)}'", d.target)
        raise _fail(st, "no vdev (the guest's device name, e.g. xvda1)",
                    "write phy:TARGET,VDEV,ACCESS like 'phy:/dev/sdc12,xvda1,w', "
                    "or add vdev=xvda1")
    if d.target is None and not d.removable:
        raise _fail(st, "no target (the disk, partition or image to give the guest)",
                    "start the spec with the target, e.g. 'phy:/dev/sdc12,xvda1,w'")
    return d


def _reordered(swallowed: str) -> str:
    """'/dev/sdc12,xvda1,w' swallowed by a leading target= → a spec that means it."""
    path, _, rest = swallowed.partition(",")
    parts = rest.split(",")
    names = ["vdev", "access"] if len(parts) <= 2 else ["format", "vdev", "access"]
    named = [f"{n}={v}" for n, v in zip(names, parts, strict=False)]
    return ", ".join([*named, f"target={path}"])


_VDEV_NUMBERED = re.compile(r"d(\d+)(?:p(\d+))?")
_VDEV_NAMED = re.compile(r"(xvd|hd|sd)([a-z]*)([1-9]\d*)?")


def vdev_number(vdev: str) -> int | None:
    """Whether libxl can read a vdev name (xen-vbd-interface(7)): its number, or None."""
    m = _VDEV_NUMBERED.fullmatch(vdev)
    if m and cint(m[1]) < 1 << 20 and cint(m[2] or "0") < 256:
        return cint(m[1]) << 8 | cint(m[2] or "0")
    if vdev.isdigit():
        return cint(vdev)
    m = _VDEV_NAMED.fullmatch(vdev)
    if not m:
        return None
    disk = -1
    for ch in m[2]:
        disk = (disk + 1) * 26 + ord(ch) - ord("a")
    partition = cint(m[3] or "0")
    limits = {"hd": (3, 63), "sd": (15, 15), "xvd": ((1 << 20) - 1, 255)}[m[1]]
    if disk > limits[0] or partition > limits[1] or disk < 0:
        return None
    return disk << 8 | partition
