"""Device lists other than disk and vif, item by item as xl 4.17 reads them (xl_parse.c,
libxlu_pci.c): pci, iomem, ioports, irqs, p9, vtpm, channel, pvcalls, usbctrl, usbdev, vkb,
vdispl, vsnd and mca_caps. Each reader returns why xl refuses an item, or None.

xl splits most specs with C's strtok (empty pieces vanish) and reads numbers with strtoul or
sscanf, whose quirks matter: a '-' negates modulo 2^64, "0x" alone reads as 0, a number too
big for its field keeps its low bits. cnum.py follows them, so the verdict is xl's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from xenlfs.xl import cfg
from xenlfs.xl.cnum import HEX, SPACE, scan_hex, scan_uint, strtok, strtoul

# --- pci (libxlu_pci.c) ------------------------------------------------------------------

def _bdf(text: str) -> tuple[str | None, int]:
    """parse_bdf: [DOMAIN:]BUS:DEV.FUNC (FUNC may be *): (why not, where it ends)."""
    ptr = 0
    while ptr < len(text) and (text[ptr] in HEX or text[ptr] == ":"):
        ptr += 1
    colons = text[:ptr].count(":")
    if colons not in (1, 2):
        return "a PCI address is [DOMAIN:]BUS:DEV.FUNC", 0
    values, i = [], 0
    for n in range(colons + 1):
        value, i = scan_hex(text, i, 32)
        if value is None:
            return "a PCI address is [DOMAIN:]BUS:DEV.FUNC", 0
        values.append(value)
        sep = ":" if n < colons else "."
        if text[i:i + 1] != sep:
            return "a PCI address is [DOMAIN:]BUS:DEV.FUNC", 0
        i += 1
    if colons == 1:
        values.insert(0, 0)
    domain, bus, dev = values
    if domain > 0xFFFF or bus > 0xFF or dev > 0x1F:
        return "PCI domain, bus or device out of range (ffff:ff:1f at most)", 0
    if text[i:i + 1] == "*":
        return None, i + 1
    func, i = scan_hex(text, i, 32)
    if func is None or func > 7:
        return "the PCI function is 0-7 or *", 0
    return None, i


def _vslot(text: str, i: int) -> tuple[str | None, int]:
    value, end = scan_hex(text, i, 32)
    if value is None or value > 0x1F:
        return "vslot is a virtual slot 0-1f", i
    return None, end


RDM_POLICIES = ("invalid", "strict", "relaxed")


def pci(spec: str) -> str | None:
    bdf_present = name_present = False
    why, ptr = _bdf(spec)
    if why is None:
        bdf_present = True
        if spec[ptr:ptr + 1] == "@":
            why, ptr = _vslot(spec, ptr + 1)
            if why:
                return why
        if spec[ptr:ptr + 1] == ",":
            ptr += 1
        elif ptr < len(spec):
            return f"unexpected '{spec[ptr:]}' after the PCI address"
    elif "=" not in spec:
        return why  # not KEY=VALUE either: the address is what is wrong
    else:
        ptr = 0
    while ptr < len(spec):
        eq = spec.find("=", ptr)
        if eq < 0:
            return f"'{spec[ptr:]}' is neither a PCI address nor KEY=VALUE"
        key = spec[ptr:eq]
        comma = spec.find(",", eq + 1)
        comma = len(spec) if comma < 0 else comma
        value = spec[eq + 1:comma]
        ptr = min(comma + 1, len(spec))
        if key == "bdf":
            why, _ = _bdf(value)
            if why:
                return f"bdf={value}: {why}"
            bdf_present = True
        elif key == "vslot":
            why, _ = _vslot(value, 0)
            if why:
                return why
        elif key == "rdm_policy":
            if value.lower() not in RDM_POLICIES:
                return f"unknown rdm_policy '{value}' (strict or relaxed)"
        elif key == "name":
            name_present = True
        elif key not in ("permissive", "msitranslate", "seize", "power_mgmt"):
            return f"unknown PCI option '{key}'"
    if bdf_present == name_present:
        return "give the device by its address (BDF) or by name=, exactly one of them"
    return None


# --- simple lists --------------------------------------------------------------------------

def ioports(spec: str) -> str | None:
    start, end = strtoul(spec, 0, 16)
    if start is None:
        return "an I/O port range is FIRST[-LAST] in hex"
    if start >= 0xFFFFFFFF:
        return f"I/O port {start:x} is too big"
    if spec[end:end + 1] == "-":
        last, stop = strtoul(spec, end + 1, 16)
        if last is None or stop != len(spec):
            return "an I/O port range is FIRST[-LAST] in hex"
        if last >= 0xFFFFFFFF:
            return f"I/O port {last:x} is too big"
    return None  # other trailing text is only reported by xl


def irqs(spec: str) -> str | None:
    n, end = strtoul(spec, 0, 10)
    if n is None or end != len(spec):
        return "an IRQ is a decimal number"
    if n >= 0xFFFFFFFF:
        return f"IRQ {n:x} is too big"
    return None


def iomem(spec: str) -> str | None:
    """sscanf "%llx,%llx%n@%llx%n": START,PAGES[@GFN], all hex, nothing after."""
    start, i = scan_hex(spec, 0, 64)
    ok = start is not None and spec[i:i + 1] == ","
    pages, i = scan_hex(spec, i + 1, 64) if ok else (None, i)
    if pages is None:
        return "iomem is START,PAGES[@GFN] in hex"
    used = i
    if spec[i:i + 1] == "@":
        gfn, j = scan_hex(spec, i + 1, 64)
        if gfn is not None:
            used = j
    if used != len(spec):
        return "iomem is START,PAGES[@GFN] in hex, with nothing after it"
    return None


def _pairs(spec: str) -> list[tuple[str, str]]:
    """xl's KEY=VALUE specs (p9, vtpm, pvcalls): strtok on ',', leading spaces dropped, and a
    piece without '=' ends the reading."""
    out = []
    for piece in strtok(spec, ","):
        piece = piece.lstrip(" ")
        key, eq, value = piece.partition("=")
        if not eq:
            break
        out.append((key, value))
    return out


UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
                  r"-[0-9a-fA-F]{12}")


def p9_reader() -> Callable[[str], str | None]:
    kept: set[str] = set()  # xl's variables outlive each item

    def p9(spec: str) -> str | None:
        for key, _ in _pairs(spec):
            if key not in ("security_model", "path", "tag", "backend"):
                return f"unknown 9pfs option '{key}'"
            kept.add(key)
        missing = {"path", "security_model", "tag"} - kept
        return f"missing {', '.join(sorted(missing))}" if missing else None
    return p9


def vtpm(spec: str) -> str | None:
    backend = False
    for key, value in _pairs(spec):
        if key == "backend":
            backend = True
        elif key == "uuid":
            if not UUID.fullmatch(value):
                return f"'{value}' is not a UUID"
        else:
            return f"unknown vtpm option '{key}'"
    return None if backend else "missing backend="


def pvcalls(spec: str) -> str | None:
    for key, _ in _pairs(spec):
        if key != "backend":
            return f"unknown pvcalls option '{key}'"
    return None


def channel(spec: str) -> str | None:
    pieces = strtok(spec, ",")
    if not pieces:
        return "an empty channel spec (xl crashes on it)"
    connection = path = None
    for piece in pieces:
        parts = strtok(piece, "=")
        if len(parts) < 2:
            return f"'{piece}' is not KEY=VALUE"
        key, value = parts[0].strip(SPACE), parts[1].strip(SPACE)
        if key == "connection":
            if value not in ("pty", "socket"):
                return f"unknown connection '{value}' (pty or socket)"
            connection = value
        elif key == "path":
            path = value
    if connection is None:
        return "missing connection=pty or connection=socket"
    if connection == "socket" and path is None:
        return "connection=socket needs path="
    return None


def _options(allowed: dict[str, Callable[[str], str | None]], what: str
             ) -> Callable[[str], str | None]:
    """KEY=VALUE pieces of which each key must be known (MATCH_OPTION: exact 'KEY=')."""
    def read(spec: str) -> str | None:
        for piece in strtok(spec, ","):
            piece = piece.lstrip(" ")
            key, eq, value = piece.partition("=")
            check = allowed.get(key) if eq else None
            if check is None:
                return f"unknown {what} option '{piece}'"
            why = check(value)
            if why:
                return why
        return None
    return read


def _any(_: str) -> str | None:
    return None


def _enum(key: str, names: tuple[str, ...]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value.lower() in names else f"unknown {key} '{value}' " \
            f"({', '.join(names)})"
    return check


usbctrl = _options({"type": _enum("type", ("auto", "pv", "devicemodel", "qusb")),
                    "version": _any, "ports": _any}, "usbctrl")
usbdev = _options({"type": _enum("type", ("hostdev",)), "hostbus": _any, "hostaddr": _any,
                   "controller": _any, "port": _any}, "usbdev")
_VKB_NUMBERS = ("feature-disable-keyboard", "feature-disable-pointer", "feature-abs-pointer",
                "feature-raw-pointer", "feature-multi-touch", "multi-touch-width",
                "multi-touch-height", "multi-touch-num-contacts", "width", "height")


def vkb(spec: str) -> str | None:
    read = _options({"backend": _any, "unique-id": _any,
                     "backend-type": _enum("backend-type", ("unknown", "qemu", "linux")),
                     **{k: _any for k in _VKB_NUMBERS}}, "vkb")
    why = read(spec)
    if why:
        return why
    values = {}
    for piece in strtok(spec, ","):
        key, _, value = piece.lstrip(" ").partition("=")
        values[key] = value
    backend_type = values.get("backend-type", "unknown").lower()
    if backend_type == "unknown":
        return "backend-type= is needed (qemu or linux)"
    # the sizes are 32-bit fields; feature-multi-touch is a bool (any non-zero number)
    touch = [(strtoul(values[k], 0, 0)[0] or 0) & 0xFFFFFFFF for k in (
             "multi-touch-height", "multi-touch-width", "multi-touch-num-contacts")
             if k in values]
    multi = strtoul(values.get("feature-multi-touch", "0"), 0, 0)[0] or 0
    if multi and not any(touch):
        return "feature-multi-touch needs multi-touch-width, -height and -num-contacts"
    return None


def _connectors(value: str) -> str | None:
    """ID:WIDTHxHEIGHT;... xl reads the resolution with sscanf("%ux%u") and, by a slip, refuses
    only when that converts exactly one number or meets the end at once; a resolution with
    no number at all passes."""
    for connector in strtok(value, ";"):
        parts = strtok(connector, ":")
        if len(parts) < 2:
            return f"connector '{connector}' is ID:WIDTHxHEIGHT (xl crashes without a ':')"
        resolution = parts[1]
        if not resolution.strip(SPACE):
            return f"connector '{connector}' has no resolution"
        width, i = scan_uint(resolution, 0)
        if width is None:
            continue  # sscanf returns 0: xl goes on as if all were well
        height = scan_uint(resolution, i + 1)[0] if resolution[i:i + 1] == "x" else None
        if height is None:
            return f"connector '{connector}': the resolution is WIDTHxHEIGHT"
    return None


def vdispl(spec: str) -> str | None:
    read = _options({"backend": _any, "be-alloc": _any, "connectors": _connectors}, "vdispl")
    why = read(spec)
    if why:
        return why
    pieces = [p.lstrip(" ") for p in strtok(spec, ",")]
    if not any(p.startswith("connectors=") and strtok(p[len("connectors="):], ";")
               for p in pieces):
        return "at least one connector is needed: connectors=ID:WIDTHxHEIGHT"
    return None


PCM_FORMATS = ("s8", "u8", "s16_le", "s16_be", "u16_le", "u16_be", "s24_le", "s24_be",
               "u24_le", "u24_be", "s32_le", "s32_be", "u32_le", "u32_be", "f32_le", "f32_be",
               "f64_le", "f64_be", "iec958_subframe_le", "iec958_subframe_be", "mu_law",
               "a_law", "ima_adpcm", "mpeg", "gsm")
_SND_PARAMS = ("sample-rates", "channels-min", "channels-max", "buffer-size")


def _snd_param(piece: str, extra: dict[str, Callable[[str], str | None]]) -> str | None:
    key, eq, value = piece.partition("=")
    if eq and key in _SND_PARAMS:
        return None
    if eq and key == "sample-formats":
        bad = [f for f in strtok(value, ";") if f.lower() not in PCM_FORMATS]
        return f"unknown sample format '{bad[0]}'" if bad else None
    check = extra.get(key) if eq else None
    return f"invalid vsnd parameter '{piece}'" if check is None else check(value)


_SND_EXTRA: dict[str, dict[str, Callable[[str], str | None]]] = {
    "card": {"backend": _any, "short-name": _any, "long-name": _any},
    "pcm": {"name": _any},
    "stream": {"unique-id": _any, "type": _enum("stream type", ("p", "c"))},
}


def vsnd_card(items: list[str]) -> str | None:
    """One card: a list of strings, each 'card|pcm|stream, PARAM=VALUE, ...'."""
    pcms: list[int] = []  # streams per pcm
    for item in items:
        pieces = [p.lstrip(" ") for p in strtok(item, ",")]
        if not pieces:
            continue
        kind = pieces[0].lower()
        if kind == "pcm":
            pcms.append(0)
        elif kind == "stream":
            if not pcms:
                pcms.append(0)
            pcms[-1] += 1
        elif kind != "card":
            return f"unknown vsnd item '{pieces[0]}' (card, pcm or stream)"
        extra = _SND_EXTRA[kind]
        for piece in pieces[1:]:
            why = _snd_param(piece, extra)
            if why:
                return why
    return None


def mca_caps(spec: str) -> str | None:
    return None if spec == "lmce" else f"unknown MCA capability '{spec}' (lmce)"


# How each list's items are written (xl.cfg(5)): the fix offered with a refusal.
FORMS = {
    "pci": 'write [DOMAIN:]BUS:DEV.FUNC[@VSLOT][,OPTION=VALUE...], e.g. "0000:00:1f.0,'
           'permissive=1", or name=NAME instead of the address',
    "iomem": 'write "START,PAGES[@GFN]" in hex, e.g. "fe000,1"',
    "ioports": 'write "FIRST[-LAST]" in hex, e.g. "3f8-3ff"',
    "irqs": 'write each IRQ as a decimal string, e.g. "7"',
    "p9": 'write "tag=TAG,path=/DIR,security_model=none[,backend=DOMAIN]"',
    "vtpm": 'write "backend=DOMAIN[,uuid=UUID]"',
    "pvcalls": 'write "backend=DOMAIN" or ""',
    "channel": 'write "name=NAME,connection=pty" or "name=NAME,connection=socket,path=/PATH"',
    "usbctrl": 'write "type=auto|pv|devicemodel|qusb,version=N,ports=N"',
    "usbdev": 'write "hostbus=N,hostaddr=N[,controller=N,port=N]"',
    "vkb": 'write "backend-type=qemu|linux[,OPTION=VALUE...]"',
    "vdispl": 'write "connectors=ID:WIDTHxHEIGHT[;ID:WIDTHxHEIGHT...][,backend=DOMAIN]"',
    "vsnd": 'write [ [ "card, short-name=NAME", "pcm, name=NAME", "stream, type=p" ] ]',
    "mca_caps": 'write mca_caps = [ "lmce" ]',
}


@dataclass(frozen=True)
class DeviceList:
    read: Callable[[], Callable[[str], str | None]]  # a fresh reader per file
    stops_at_list: bool = True  # an inner list ends xl's reading (else xl refuses it)
    hvm_only: bool = False


LISTS: dict[str, DeviceList] = {
    "pci": DeviceList(lambda: pci),
    "iomem": DeviceList(lambda: iomem, stops_at_list=False),
    "ioports": DeviceList(lambda: ioports, stops_at_list=False),
    "irqs": DeviceList(lambda: irqs, stops_at_list=False),
    "p9": DeviceList(p9_reader),
    "vtpm": DeviceList(lambda: vtpm),
    "pvcalls": DeviceList(lambda: pvcalls),
    "channel": DeviceList(lambda: channel),
    "usbctrl": DeviceList(lambda: usbctrl),
    "usbdev": DeviceList(lambda: usbdev),
    "vkb": DeviceList(lambda: vkb),
    "vdispl": DeviceList(lambda: vdispl),
    "mca_caps": DeviceList(lambda: mca_caps, stops_at_list=False, hvm_only=True),
}


def problems(key: str, value: cfg.Value, guest_type: str) -> list[tuple[cfg.Pos, str]]:
    """Why xl refuses items of device list `key`, each with its place."""
    spec = LISTS.get(key)
    if key == "vsnd":
        return _vsnd(value)
    if spec is None or (spec.hvm_only and guest_type != "hvm"):
        return []
    if not isinstance(value, cfg.List):
        if key == "mca_caps":
            return [(value.pos, "mca_caps must be a list")]
        return []
    read = spec.read()
    for n, item in enumerate(value.items):
        if not isinstance(item, cfg.Atom):
            if spec.stops_at_list:
                break
            return [(item.pos, f"item {n + 1} of {key} is a list; xl wants a string")]
        why = read(item.text)
        if why:
            return [(item.pos, f"{key} '{item.text}': {why}")]  # xl stops at the first
    return []


def _vsnd(value: cfg.Value) -> list[tuple[cfg.Pos, str]]:
    if not isinstance(value, cfg.List):
        return []
    for card in value.items:
        if not isinstance(card, cfg.List):
            return [(card.pos, "each vsnd card is a list of strings: [ \"card, ...\", "
                     "\"pcm, ...\", \"stream, ...\" ]")]
        items = []
        for item in card.items:
            if not isinstance(item, cfg.Atom):
                break
            items.append(item.text)
        why = vsnd_card(items)
        if why:
            return [(card.pos, f"vsnd: {why}")]
    return []
