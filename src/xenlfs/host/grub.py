"""Step 4: the grub.cfg entry that boots Xen, then dom0 — edited by hand, never grub-mkconfig.

xenlfs's own text in grub.cfg sits between `### xenlfs begin NAME` and `### xenlfs end NAME`
lines, so it is found, replaced or removed without touching anything else. Planning is pure
(text in, text out); `check_syntax` asks GRUB's grub-script-check when it is installed.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from xenlfs import files, run
from xenlfs.errors import PreconditionError, SourceError, UsageError
from xenlfs.host import bootfiles

BEGIN, END = "### xenlfs begin ", "### xenlfs end "
DEFAULT_BLOCK, ONCE_BLOCK = "default", "once"
_ID = re.compile(r"^xenlfs-[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Entry:
    """A Xen menu entry; paths are as GRUB sees them (relative to their filesystem).

    Every value is written as literal words for GRUB's script lexer, so no value (from a
    flag or a config file) can end the entry, add a command or expand a GRUB variable."""

    id: str
    title: str
    xen: str
    kernel: str
    xen_args: str = ""
    kernel_args: str = ""
    multiboot2: bool = False
    initrd: str | None = None

    def __post_init__(self) -> None:
        check_id(self.id)
        for what, value in (("the title (--title, [grub] title)", self.title),
                            ("the Xen image's path", self.xen),
                            ("the dom0 kernel's path", self.kernel),
                            ("the initrd's path", self.initrd or "")):
            printable(value, what)
        command_words(self.xen_args, "--xen-args ([grub] xen_args)")
        command_words(self.kernel_args, "--kernel-args ([grub] kernel_args)")

    def render(self) -> str:
        load, module = ("multiboot2", "module2") if self.multiboot2 else ("multiboot", "module")
        # The hint's "placeholder" (grub-mkconfig's Xen script writes it too): loaders that
        # put the image name first get it stripped by Xen; after GRUB 2 it is ignored.
        xen_line = " ".join([load, grub_word(self.xen), "placeholder",
                             *map(grub_word, command_words(self.xen_args, "xen_args"))])
        dom0_line = " ".join([module, grub_word(self.kernel), "placeholder",
                              *map(grub_word, command_words(self.kernel_args, "kernel_args"))])
        initrd_line = f"\t{module} {grub_word(self.initrd)}\n" if self.initrd else ""
        return (f"{BEGIN}{self.id} (written by 'xenlfs grub add'; 'xenlfs grub remove' takes"
                f" it out)\nmenuentry {quote(self.title)} --id {self.id} {{\n"
                f"\t{xen_line}\n\t{dom0_line}\n{initrd_line}}}\n{END}{self.id}\n")


def quote(text: str) -> str:
    """`text` as one literal word for GRUB's lexer (as for sh: nothing is special inside
    single quotes, and a single quote is closed, escaped and reopened)."""
    return "'" + text.replace("'", "'\\''") + "'"


_PLAIN = re.compile(r"[A-Za-z0-9_.,:=+/@%-]+")


def grub_word(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else quote(text)


def printable(value: str, what: str) -> str:
    """Refuse what no quoting makes safe: a newline would also end xenlfs's own block."""
    bad = next((c for c in value if (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F), None)
    if bad is not None:
        raise UsageError(f"{what} holds the control character {bad!r}: {value!r}",
                         hint="give it on one line, without control characters")
    return value


def command_words(value: str, what: str) -> list[str]:
    """A Xen or Linux command line split as they split theirs: at blanks, with "…" grouping
    (the quotes removed). GRUB's loader quotes a word holding a blank again for the kernel."""
    printable(value, what)
    words: list[str] = []
    word: list[str] = []
    quoted = started = False
    for c in value:
        if c == '"':
            quoted, started = not quoted, True
        elif c in " \t" and not quoted:
            if started:
                words.append("".join(word))
            word, started = [], False
        else:
            word.append(c)
            started = True
    if quoted:
        raise UsageError(f"{what}: a \" is never closed in {value!r}",
                         hint='close it: option="a b"')
    if started:
        words.append("".join(word))
    return words


def check_id(entry_id: str) -> str:
    if not _ID.match(entry_id):
        raise UsageError(f"bad entry id {entry_id!r}",
                         hint="use xenlfs-NAME with letters, digits, '.', '_' or '-'")
    return entry_id


def balance(text: str, path: str) -> None:
    """Unbalanced braces or quotes as a file:line:col error (when grub-script-check is absent)."""
    stack: list[tuple[int, int]] = []
    quote_at: tuple[int, int, str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        i, word_start = 0, True
        while i < len(line):
            c = line[i]
            if quote_at:
                if c == "\\" and quote_at[2] == '"':
                    i += 1
                elif c == quote_at[2]:
                    quote_at = None
            elif c == "\\":
                i += 1
            elif c in "'\"":
                quote_at = (number, i + 1, c)
            elif c == "#" and word_start:
                break
            elif c == "$" and line[i + 1:i + 2] == "{":
                i = line.find("}", i) if "}" in line[i:] else len(line)
            elif c == "{":
                stack.append((number, i + 1))
            elif c == "}":
                if not stack:
                    raise SourceError(path, number, i + 1, "'}' without a matching '{'",
                                      "remove it or add the missing '{'")
                stack.pop()
            word_start = c in " \t;"
            i += 1
    if quote_at:
        raise SourceError(path, quote_at[0], quote_at[1], f"unterminated {quote_at[2]} quote",
                          "close the quote")
    if stack:
        raise SourceError(path, stack[-1][0], stack[-1][1], "'{' is never closed",
                          "add the missing '}'")


def check_syntax(text: str, path: str) -> None:
    """Validate grub.cfg text with GRUB's own parser when installed, else check balance."""
    if not shutil.which("grub-script-check"):
        balance(text, path)
        return
    # On its standard input: no temporary file for a kill to leave behind.
    result = run.run(["grub-script-check"], input=text, check=False)
    if result.returncode != 0:
        match = re.search(r"line (\d+)", result.stderr + result.stdout)
        raise SourceError(path, int(match[1]) if match else 1, 1,
                          "GRUB cannot parse this file (grub-script-check)",
                          "fix the syntax there or just before (an unclosed '{', 'if' without"
                          " 'fi', a stray quote)")


def _block(lines: list[str], name: str) -> tuple[int, int] | None:
    """Line indexes [start, end] of the xenlfs block NAME, if present."""
    start = next((i for i, line in enumerate(lines)
                  if line.startswith(BEGIN) and line[len(BEGIN):].split(" ", 1)[0] == name),
                 None)
    if start is None:
        return None
    end = next((i for i in range(start, len(lines)) if lines[i].strip() == END + name), None)
    if end is None:
        raise SourceError("grub.cfg", start + 1, 1, f"xenlfs block {name!r} has no end line",
                          f"restore the line '{END}{name}' or remove the block by hand")
    return start, end


def _replace(text: str, name: str, block: str, at: int | None = None) -> str:
    """Put `block` where block NAME was, else at line index `at`, else at the end."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    found = _block(lines, name)
    new = block.splitlines(keepends=True)
    if found:
        lines[found[0]:found[1] + 1] = new
    elif at is not None:
        lines[at:at] = new
    else:
        if lines and lines[-1].strip():
            new.insert(0, "\n")
        lines.extend(new)
    return "".join(lines)


def with_entry(text: str, entry: Entry) -> str:
    return _replace(text, entry.id, entry.render())


_SET_DEFAULT = re.compile(r"""^set\s+default\s*=\s*(?P<v>"[^"]*"|'[^']*'|\S+)""")


def _own(lines: list[str]) -> set[int]:
    """Indexes of the lines inside xenlfs's blocks."""
    inside, owned = False, set()
    for i, line in enumerate(lines):
        if line.startswith(BEGIN):
            inside = True
        if inside:
            owned.add(i)
        if line.startswith(END):
            inside = False
    return owned


def _user_default(lines: list[str]) -> tuple[str, int]:
    """The user's own last `set default=` and the line index after it (0 when none)."""
    previous, at, owned = "0", 0, _own(lines)
    for i, line in enumerate(lines):
        match = _SET_DEFAULT.match(line)
        if match and i not in owned:
            previous, at = match["v"].strip("\"'"), i + 1
    return previous, at


def with_default(text: str, entry_id: str) -> str:
    """Make `entry_id` the default; the previous default becomes GRUB's `fallback`, booted
    automatically when Xen's entry fails to load (a wrong path, a file that is not Xen)."""
    previous, at = _user_default(text.splitlines())
    if previous == entry_id:
        previous = "0"
    block = (f"{BEGIN}{DEFAULT_BLOCK} (Xen first; the previous default if it fails to load)\n"
             f'set default="{entry_id}"\nset fallback="{previous}"\n{END}{DEFAULT_BLOCK}\n')
    return _replace(text, DEFAULT_BLOCK, block, at)


def with_once(text: str) -> str:
    """GRUB's one-shot boot, as grub-reboot uses it: `next_entry` in the environment block
    beside grub.cfg becomes the default and is cleared before that entry boots, so if Xen
    hangs or panics, the next boot is the usual default again."""
    lines = text.splitlines()
    at = _user_default(lines)[1]
    own_default = _block(lines, DEFAULT_BLOCK)
    if own_default and own_default[1] + 1 > at:
        at = own_default[1] + 1
    block = (f"{BEGIN}{ONCE_BLOCK} (boots grubenv's next_entry once, as grub-reboot does)\n"
             'if [ -s "$prefix/grubenv" ]; then load_env; fi\n'
             'if [ "${next_entry}" ]; then\n'
             '\tset default="${next_entry}"\n\tset next_entry=\n\tsave_env next_entry\nfi\n'
             f"{END}{ONCE_BLOCK}\n")
    return _replace(text, ONCE_BLOCK, block, at)


def without(text: str, entry_id: str) -> str:
    """Remove entry `entry_id`, xenlfs's default block if it names that entry, and the
    one-shot block when no xenlfs entry is left."""
    lines = text.splitlines(keepends=True)
    for name in (entry_id, DEFAULT_BLOCK):
        found = _block(lines, name)
        if found is None:
            continue
        if name == DEFAULT_BLOCK and f'"{entry_id}"' not in "".join(
                lines[found[0]:found[1] + 1]):
            continue
        start, end = found
        # Also drop the blank line with_entry put before the block.
        if start > 0 and not lines[start - 1].strip() and name != DEFAULT_BLOCK:
            start -= 1
        del lines[start:end + 1]
    entries_left = [line for line in lines if line.startswith(BEGIN) and
                    line[len(BEGIN):].split(" ", 1)[0] not in (DEFAULT_BLOCK, ONCE_BLOCK)]
    once = _block(lines, ONCE_BLOCK)
    if once and not entries_left:
        del lines[once[0]:once[1] + 1]
    return "".join(lines)


_MENU = re.compile(r"^\s*(menuentry|submenu)\s+(.*?)\s*\{\s*$")


@dataclass(frozen=True)
class Listed:
    kind: str
    title: str
    id: str | None
    line: int
    xenlfs: bool
    default: bool


def entries(text: str) -> list[Listed]:
    """Menu entries of a grub.cfg (top level and in submenus), in file order."""
    lines = text.splitlines()
    owned = {i for i, line in enumerate(lines) if line.startswith(BEGIN)}
    owned = _own(lines)
    default_match = [m["v"].strip("\"'") for i, m in enumerate(map(_SET_DEFAULT.match, lines))
                     if m and (i not in owned or lines[i].strip() != 'set default="${next_entry}"')]
    default = default_match[-1] if default_match else "0"
    found: list[Listed] = []
    for i, line in enumerate(lines):
        match = _MENU.match(line)
        if not match:
            continue
        try:
            words = shlex.split(match[2])
        except ValueError:
            words = [match[2]]
        title = next((w for w in words if not w.startswith("--")), "")
        entry_id = next((words[j + 1] for j, w in enumerate(words[:-1]) if w == "--id"), None)
        if entry_id is None:
            entry_id = next((w.split("=", 1)[1] for w in words if w.startswith("--id=")), None)
        number = str(len([f for f in found if f.kind == "menuentry"]))
        found.append(Listed(match[1], title, entry_id, i + 1, (i - 1) in owned,
                            default in (entry_id, title, number)))
    return found


# Steps: read, plan, check, write: the plan is the new text, written as a files.FileChange.

def read_cfg(path: Path) -> str:
    if not path.is_file():
        raise UsageError(f"{path} is not a regular file" if path.exists() else
                         f"{path} does not exist",
                         hint="give the grub.cfg GRUB reads with --grub-cfg (LFS: "
                         "/boot/grub/grub.cfg, written by hand as in the LFS book)")
    text = files.read_text(path, "a grub.cfg")
    check_syntax(text, str(path))
    return text


def write_cfg(change: files.FileChange) -> Path | None:
    """Check the new text with GRUB's parser before it replaces the old file (with a backup);
    under --dry-run the check runs too, then the diff is shown."""
    if not change.needed:
        return None
    check_syntax(change.new, f"{change.path} (as xenlfs would write it)")
    return change.apply()


def plan_add(text: str, entry: Entry, make_default: bool, once: bool = False) -> str:
    new = with_entry(text, entry)
    new = with_default(new, entry.id) if make_default else new
    return with_once(new) if once else new


def grubenv(grub_cfg: Path) -> Path:
    """GRUB's environment block: the file `grubenv` in $prefix, beside grub.cfg."""
    return grub_cfg.parent / "grubenv"


def boot_once(grub_cfg: Path, entry_id: str) -> None:
    """Ask GRUB to boot `entry_id` on the next boot only (grub.cfg needs with_once's block)."""
    env = grubenv(grub_cfg)
    if not env.exists():
        run.run(["grub-editenv", str(env), "create"], writes=True)
    run.run(["grub-editenv", str(env), "set", f"next_entry={entry_id}"], writes=True)


def next_entry(grub_cfg: Path) -> str | None:
    env = grubenv(grub_cfg)
    if not env.exists():
        return None
    listed = run.run(["grub-editenv", str(env), "list"]).stdout
    return next((line.split("=", 1)[1] for line in listed.splitlines()
                 if line.startswith("next_entry=")), None)


def boot_entry(*, entry_id: str, title: str, xen: Path, kernel: Path, root: str | None,
               xen_args: str, kernel_args: str, multiboot2: bool, grub_cfg: Path,
               boot_mount: Path | None, initrd: Path | None = None) -> Entry:
    """Check the files GRUB will load and name them as GRUB sees them."""
    xen_path, xen_mount = bootfiles.locate(xen, boot_mount)
    kernel_path, kernel_mount = bootfiles.locate(kernel, boot_mount)
    initrd_path, initrd_mount = bootfiles.locate(initrd, boot_mount) if initrd else (None, None)
    cfg_mount = bootfiles.locate(grub_cfg, boot_mount)[1] if grub_cfg.is_file() else xen_mount
    version = 2 if multiboot2 else 1
    if not bootfiles.is_multiboot(xen, version):
        raise PreconditionError(
            f"{xen} is not a Multiboot{' 2' if multiboot2 else ''} image, so GRUB cannot boot it",
            hint="give the xen.gz that 'make install-xen' put in /boot (not a Linux kernel)"
            + ("" if multiboot2 else "; or try --multiboot2"))
    for name, mount in (("kernel", kernel_mount), ("grub.cfg", cfg_mount),
                        ("initrd", initrd_mount)):
        if mount is not None and mount.point != xen_mount.point:
            raise PreconditionError(
                f"{xen} and the {name} are on different filesystems ({xen_mount.point}, "
                f"{mount.point}); GRUB reads the entry's files from the filesystem of grub.cfg",
                hint="copy Xen and the dom0 kernel to /boot beside grub/grub.cfg")
    if root is not None and (not printable(root, "--root") or any(c in root for c in " \t'\"")):
        raise UsageError(f"--root {root!r} is not a device name",
                         hint="give one word without blanks or quotes, e.g. /dev/sda2 or "
                         "PARTUUID=0a1b2c3d-02")
    args = " ".join(a for a in (f"root={root} ro" if root else "", kernel_args) if a)
    return Entry(check_id(entry_id), title, xen_path, kernel_path, xen_args, args, multiboot2,
                 initrd_path)
