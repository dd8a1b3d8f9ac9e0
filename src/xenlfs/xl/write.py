"""Writing xl config files: a new guest's file from a GuestConfig, and `key=value` edits of an
existing file that keep its comments and order. Whatever is written is parsed back with
cfg.parse and must give exactly the values meant; otherwise nothing is written. One rule set
decides whether a config may be written at all (config_change), for `guest config` and
`guest prepare` alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xenlfs import files
from xenlfs.errors import SourceError, UsageError
from xenlfs.xl import cfg, check, finding

PlainValue = str | int | Sequence["PlainValue"]


@dataclass(frozen=True)
class GuestConfig:
    """What the hint's step 6 puts in xenguest1.cfg. memory and maxmem are in MiB."""

    name: str
    kernel: str | None  # None: an HVM guest that boots from its own disk
    memory: int
    disks: tuple[str, ...] = ()
    root: str | None = None
    vifs: tuple[str, ...] = ()
    ramdisk: str | None = None
    extra: str | None = None
    vcpus: int | None = None
    maxmem: int | None = None
    type: str | None = None  # xl's default is "pv", which is what the hint builds
    others: tuple[tuple[str, PlainValue], ...] = field(default=())


# What xenlfs gives every HVM guest: its console on the emulated serial port (the guest's
# GRUB and kernel use ttyS0) and no emulated graphics card. Nobody looks at a screen there,
# and a VGA card costs under emulation: SeaBIOS runs its option ROM, and a kernel with a VGA
# text console (VT's default; distribution kernels have it) draws every line through qemu
# in dom0. A screen for VNC: `guest config NAME --set vga=stdvga`.
HVM_CONSOLE: tuple[tuple[str, PlainValue], ...] = (("serial", "pty"), ("vga", "none"))

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a",
            "\b": "\\b", "\f": "\\f", "\v": "\\v"}


def quote(text: str) -> str:
    """A libxlu string literal that reads back as `text`."""
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20 or c == "\x7f" or 0xDC80 <= ord(c) <= 0xDCFF:
            # libxlu has no working numeric escape (\x is refused): it cannot be written.
            raise UsageError(f"cannot write {text!r} in an xl config: it contains the "
                             f"control character {c!r}", hint="remove it from the value")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def value_text(value: PlainValue) -> str:
    if isinstance(value, bool):
        raise UsageError("xl has no true/false: write 1 or 0")
    if isinstance(value, int):
        if value < 0:
            return quote(str(value))  # '-' cannot start a bare number in xl's grammar
        return str(value)
    if isinstance(value, str):
        return quote(value)
    return "[" + ", ".join(value_text(v) for v in value) + "]"


def _plain(value: PlainValue) -> object:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    return [_plain(v) for v in value]


def settings_of(guest: GuestConfig) -> list[tuple[str, PlainValue]]:
    """The keys to write, in the order the hint writes them."""
    if not guest.name:
        raise UsageError("the guest needs a name")
    if guest.memory <= 0:
        raise UsageError(f"memory must be a positive number of MiB, not {guest.memory}")
    rows: list[tuple[str, PlainValue]] = [("name", guest.name)]
    if guest.type:
        rows.append(("type", guest.type))
    if guest.kernel:
        rows.append(("kernel", guest.kernel))
    if guest.ramdisk:
        rows.append(("ramdisk", guest.ramdisk))
    rows.append(("memory", guest.memory))
    if guest.maxmem is not None:
        rows.append(("maxmem", guest.maxmem))
    if guest.vcpus is not None:
        rows.append(("vcpus", guest.vcpus))
    if guest.root:
        rows.append(("root", guest.root))
    if guest.extra:
        rows.append(("extra", guest.extra))
    if guest.disks:  # a guest may live in its initramfs alone
        rows.append(("disk", list(guest.disks)))
    if guest.vifs:
        rows.append(("vif", list(guest.vifs)))
    rows.extend(guest.others)
    return rows


def render(guest: GuestConfig) -> str:
    """The text of a new xl config file for `guest`; it always parses back to these values."""
    rows = settings_of(guest)
    text = ("# xl config for a Xen guest, written by xenlfs (hint step 6).\n"
            "# See xl.cfg(5); check it with: xenlfs guest check FILE\n"
            + "".join(f"{key} = {value_text(value)}\n" for key, value in rows))
    _verify(text, {key: _plain(value) for key, value in rows}, "<new config>")
    return text


def _verify(text: str, expected: dict[str, object], path: str) -> None:
    try:
        got = cfg.parse(text, path).plain()
    except SourceError as e:  # a bug in this module: never write such a file
        raise UsageError(f"internal error: the written config does not parse: {e}") from e
    for key, value in expected.items():
        if got.get(key) != value:
            raise UsageError(f"internal error: {key} would read back as {got.get(key)!r}, "
                             f"not {value!r}")


def config_change(path: Path, new: str, *, replace: bool) -> files.FileChange:
    """The change that writes a guest's xl config, if the one rule set of `guest config` and
    `guest prepare` allows it. It only reads; a refusal (UsageError) comes before anything
    is written (`guest prepare` asks before it builds the guest):

    - the same text already at `path` is no change: a rerun converges;
    - another file there is replaced only with `replace` (--force, or --set on the file it
      edits), a timestamped backup kept;
    - a config xl 4.17 would refuse is not written (its findings go to stderr).

    --dry-run goes through the same rules. Write it with write_config."""
    change = files.FileChange.to(path, new, what="an xl config file")
    if change.needed and change.old is not None and not replace:
        raise UsageError(f"{path} exists and says something else",
                         hint="replace it with --force (a backup is kept; add --dry-run to "
                         "see the change first), or edit it: xenlfs guest config FILE --set "
                         "KEY=VALUE")
    report = check.check_config(cfg.parse(new, str(path)))
    if not report.ok:
        finding.show(report.findings)
        raise UsageError(f"not writing {path}: xl would refuse it")
    return change


def write_config(change: files.FileChange) -> None:
    """Show what xl will find in the config as the machine is now (a disk target the run
    made exists by then), then write it; under --dry-run show the diff instead."""
    finding.show(check.check_config(cfg.parse(change.new, str(change.path))).findings)
    change.apply()


def parse_assignment(text: str) -> tuple[str, str]:
    """`key=value` from the command line → (key, the value as xl config text).

    The value is taken as xl syntax when it is a number, a quoted string or a [list];
    anything else is a plain string and is quoted: --set kernel=/boot/vmlinuz-domU."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--set {text!r}: expected KEY=VALUE", hint="e.g. --set memory=2048")
    try:
        tokens = list(cfg.tokens(key, "--set"))
    except SourceError:
        tokens = []
    if len(tokens) != 2 or tokens[0].kind != "IDENT":
        raise UsageError(f"--set {text!r}: {key!r} is not an xl key name",
                         hint="key names are lower case letters, digits, '_' and '.'")
    raw = raw.strip()
    try:
        # Taken as xl text only if it is exactly one value: no comment, ';' or newline.
        if not any(t.kind in ("NEWLINE", ";") for t in cfg.tokens(raw, "--set")):
            cfg.parse(f"x = {raw}", "--set")
            return key, raw
    except SourceError:
        pass
    return key, quote(raw)


def _comments_inside(statement: str, path: str) -> list[str]:
    """The comments inside a (multi-line) assignment about to be replaced, each as a line to
    keep above the new one: they described the items, and are the user's words."""
    return [t.text for t in cfg.tokens(statement, path)
            if t.kind == "NEWLINE" and t.text.lstrip().startswith("#")]


def set_values(text: str, path: str, edits: Sequence[tuple[str, str]]) -> str:
    """Apply `key = value` edits (value as xl text) to a config file's text.

    An existing key's last assignment (the one xl uses) is replaced in place, so comments,
    blank lines and order stay (comments inside a replaced multi-line list move above it); a
    new key is appended at the end."""
    for key, raw in edits:
        config = cfg.parse(text, path)
        new_value = cfg.parse(f"{key} = {raw}\n", "--set").values[key]
        if key in config.values:
            last = config.where(key)
            kept = _comments_inside(text[last.start:last.end], path)
            text = text[:last.start] + "".join(kept) + f"{key} = {raw}" + text[last.end:]
        else:
            if text and not text.endswith("\n"):
                text += "\n"
            text += f"{key} = {raw}\n"
        after = cfg.parse(text, path)
        expected = {k: cfg.flat(v) for k, v in config.values.items()}
        expected[key] = cfg.flat(new_value)
        if {k: cfg.flat(v) for k, v in after.values.items()} != expected:
            raise UsageError(f"internal error: editing {key} would change other settings")
    return text
