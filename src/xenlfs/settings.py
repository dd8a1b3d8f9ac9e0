"""One table of settings feeds the TOML config file, the command line and the typed Config.

The table is the section classes below: each is a TOML table, each of its fields a key whose
CLI flag is derived from the name. A verb reads the resolved values as `config.guest.kernel`.
Precedence, lowest first: the table's default, /etc/xenlfs.toml, the user's file
(~/.config/xenlfs/config.toml), a file named by --config or $XENLFS_CONFIG, the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast, get_type_hints

from xenlfs import files
from xenlfs.errors import SourceError, UsageError


def parse_path(value: Any) -> Path:
    return Path(os.path.expanduser(str(value)))


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not true/false")
    return int(value)


def parse_count(value: Any) -> int:
    number = parse_int(value)
    if number < 0:
        raise ValueError(f"expected 0 or more, got {number}")
    return number


_IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")


def parse_ifname(value: Any) -> str:
    """A network interface name as Linux takes it (at most 15 bytes, no '/', blank or ':'),
    kept to letters, digits, '_', '.' and '-': it also names /etc/sysconfig/ifconfig.NAME."""
    text = str(value)
    if not _IFNAME.fullmatch(text):
        raise ValueError(f"{text!r} is not an interface name: use 1 to 15 letters, digits, "
                         "'_', '.' or '-', not starting with '.' or '-' (e.g. eth0, xenbr0)")
    return text


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "yes", "true", "on"):
        return True
    if text in ("0", "no", "false", "off"):
        return False
    raise ValueError(f"expected yes or no, got {value!r}")


_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)


def parse_size(value: Any) -> int:
    """A size in bytes from '512M', '2G', '4096' (bytes), '1GiB'. Units are powers of 1024."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"expected a size like 512M or 2G, got {value!r}")
    number, unit = int(match[1]), (match[2] or "B").upper()
    multiplier: int = 1024 ** "BKMGT".index(unit[0])
    return number * multiplier


def parse_compression(value: Any) -> str:
    names = ("zstd", "gzip", "xz", "none")
    if str(value) not in names:
        raise ValueError(f"expected one of {', '.join(names)}, got {value!r}")
    return str(value)


def default_cache_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/cache/xenlfs")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xenlfs"


def default_log_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/log/xenlfs")
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local/state")) / "xenlfs"


T = TypeVar("T")


@dataclass(frozen=True)
class Setting:
    """One row of the table: a setting's TOML table (section), key, parser, default and help;
    the flag is derived from the key."""

    section: str
    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    metavar: str | None = None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return f"setting__{self.section}__{self.name}"

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    @property
    def optional(self) -> bool:
        return self.default is None

    def value_of(self, raw: Any) -> Any:
        """The setting's value from a file's or a flag's text. An empty value unsets an
        optional setting, so a flag can take back what a config file set (--kernel '')."""
        if self.optional and raw == "":
            return None
        return self.parse(raw)


def setting(parse: Callable[[Any], T], default: T | Callable[[], T], help: str,
            metavar: str) -> T:
    """A field of a section below: its type is what `parse` returns (mypy checks the two
    agree); the default is a value or a function giving it."""
    spec = {"parse": parse, "default": default, "help": help, "metavar": metavar}
    return cast(T, dataclasses.field(metadata=spec))


# The table. Each class is one TOML table of the config file and one group of flags; its
# fields are the settings, in `config show` order. A verb reads them as config.guest.kernel.

@dataclass(frozen=True)
class XenlfsSettings:
    cache_dir: Path = setting(parse_path, default_cache_dir,
                              "where downloads and built lab images are kept", "DIR")
    log_dir: Path = setting(parse_path, default_log_dir,
                            "where logs of long work are written", "DIR")
    backups: int = setting(
        parse_count, 5,
        "how many backups of each file xenlfs edits are kept, newest first (0: none)", "N")


@dataclass(frozen=True)
class XlSettings:
    """Hint step 6: xl guest configs and the guest lifecycle."""

    config_dir: Path = setting(
        parse_path, Path("/etc/xen"),
        "where guest configs are written and looked up by name (xl's own place)", "DIR")
    shutdown_timeout: int = setting(parse_int, 120,
                                    "seconds 'guest shutdown --wait' waits before giving up",
                                    "SECONDS")


@dataclass(frozen=True)
class LabSettings:
    instance: str = setting(str, "default", "name of the lab (several can be up at once)",
                            "NAME")
    mirror: str = setting(str, "http://deb.debian.org/debian",
                          "Debian mirror the lab's dom0 root is debootstrapped from", "URL")
    memory: int = setting(parse_size, 3 << 30, "memory of the lab's QEMU machine", "SIZE")
    dom0_memory: int = setting(parse_size, 1 << 30,
                               "memory Xen gives dom0 (the rest is for guests)", "SIZE")
    cpu: str = setting(
        str, "qemu64,+svm,+npt",
        "QEMU's -cpu for the lab machine: qemu64,+svm,+npt (AMD-V with nested paging: Xen "
        "runs PVH and HVM guests with HAP) or qemu64 (shadow paging)", "MODEL")
    boot_timeout: int = setting(parse_int, 180,
                                "seconds to wait for dom0 to be ready before giving up",
                                "SECONDS")
    xen: Path | None = setting(parse_path, None,
                               "boot this Xen (xen.gz or its multiboot ELF) instead of Debian's",
                               "FILE")
    dom0_kernel: Path | None = setting(
        parse_path, None, "boot this dom0 kernel (bzImage/vmlinuz) instead of Debian's", "FILE")
    dom0_modules: Path | None = setting(
        parse_path, None,
        "modules for --dom0-kernel: the INSTALL_MOD_PATH of its modules_install", "DIR")


@dataclass(frozen=True)
class SnapshotSettings:
    dir: Path = setting(parse_path, Path("/var/backups"),
                        "where snapshots are written and listed (hint: /var/backups)", "DIR")
    compression: str = setting(
        parse_compression, "zstd",
        "how snapshots are compressed: zstd (fast, default), gzip, xz or none", "NAME")


@dataclass(frozen=True)
class GuestSettings:
    """Hint steps 5 and 6: a guest's root filesystem from a snapshot and its xl config
    (guest prepare, guest config)."""

    iface: str = setting(str, "eth0",
                         "the guest's network interface (newer kernels may call it enX0)",
                         "NAME")
    kernel: str | None = setting(str, None,
                                 "the domU kernel written into a guest's xl config", "FILE")
    memory: int = setting(parse_int, 512, "a guest's memory in MiB", "MiB")


@dataclass(frozen=True)
class KernelSettings:
    src: Path | None = setting(parse_path, None,
                               "the kernel source tree to check, fix, build or install", "TREE")
    jobs: int | None = setting(parse_int, None,
                               "parallel jobs for kernel builds (default: the number of CPUs)",
                               "N")


@dataclass(frozen=True)
class GrubSettings:
    """Step 4: the GRUB entry (xenlfs grub add)."""

    grub_cfg: Path = setting(parse_path, Path("/boot/grub/grub.cfg"), "the grub.cfg GRUB reads",
                             "FILE")
    xen_args: str = setting(str, "", "Xen's command line, e.g. 'dom0_mem=2048M,max:2048M'",
                            "ARGS")
    kernel_args: str = setting(str, "", "more dom0 kernel arguments besides root= and ro",
                               "ARGS")
    title: str = setting(str, "LFS, Xen", "the menu entry's title", "TEXT")


@dataclass(frozen=True)
class ServiceSettings:
    """Step 4: the xencommons bootscript (xenlfs service install)."""

    xen_prefix: Path = setting(
        parse_path, Path("/usr"),
        "the prefix Xen was installed with (its daemons are in PREFIX/sbin)", "DIR")


@dataclass(frozen=True)
class BuildSettings:
    """Steps 2–3: source builds (xenlfs build)."""

    prefix: Path = setting(parse_path, Path("/usr"),
                           "where built packages are installed (configure's --prefix)", "DIR")


@dataclass(frozen=True)
class BridgeSettings:
    """Step 1: the bridge (xenlfs bridge setup)."""

    iface: str = setting(parse_ifname, "eth0", "the network interface the bridge takes over",
                         "IFACE")
    bridge: str = setting(parse_ifname, "xenbr0", "the bridge's name (guests' vif bridge=)",
                          "NAME")


@dataclass(frozen=True)
class Config:
    """What the user asked for, resolved once: defaults < config files < command line.
    Each field whose type is a section class above is that TOML table."""

    xenlfs: XenlfsSettings
    xl: XlSettings
    lab: LabSettings
    snapshot: SnapshotSettings
    guest: GuestSettings
    kernel: KernelSettings
    grub: GrubSettings
    service: ServiceSettings
    build: BuildSettings
    bridge: BridgeSettings
    # where each value came from, by key: "default", a config file, or "command line"
    sources: Mapping[str, str]

    def value(self, setting: Setting) -> Any:
        return getattr(getattr(self, setting.section), setting.name)


def _sections() -> dict[str, type[Any]]:
    """{TOML table: its section class}, in Config's order."""
    types = get_type_hints(Config)
    return {f.name: types[f.name] for f in dataclasses.fields(Config)
            if dataclasses.is_dataclass(types[f.name])}


_SECTIONS = _sections()
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(section, f.name, **f.metadata)
    for section, cls in _SECTIONS.items() for f in dataclasses.fields(cls))
_BY_KEY = {s.key: s for s in SETTINGS}


def settings_in(sections: Iterable[str]) -> list[Setting]:
    wanted = set(sections)
    return [s for s in SETTINGS if s.section in wanted]


def add_flags(parser: argparse.ArgumentParser, *sections: str,
              only: Iterable[str] | None = None) -> None:
    """Add one CLI flag for every setting of these sections (the file can set all of them);
    `only` limits them to these setting names."""
    names = set(only) if only is not None else None
    for setting in settings_in(sections):
        if names is not None and setting.name not in names:
            continue
        parser.add_argument(
            setting.flag,
            dest=setting.dest,
            metavar=setting.metavar or setting.name.upper(),
            default=argparse.SUPPRESS,
            help=f"{setting.help} (config: [{setting.section}] {setting.name}"
                 + ("; '' unsets it)" if setting.optional else ")"),
        )


def config_files(explicit: Path | None) -> list[Path]:
    user_dir = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    files = [Path("/etc/xenlfs.toml"), user_dir / "xenlfs/config.toml"]
    named = explicit or (Path(os.environ["XENLFS_CONFIG"]) if os.environ.get("XENLFS_CONFIG")
                         else None)
    if named is not None:
        if not named.is_file():
            raise UsageError(f"config file {named} does not exist",
                             hint="check the path given to --config or $XENLFS_CONFIG")
        files.append(named)
    return [f for f in files if f.is_file()]


def _line_of(text: str, section: str, key: str | None) -> tuple[int, int]:
    """Where a table or key stands in a TOML file, for error messages (1-based)."""
    in_section = key is None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_section = stripped.strip("[] ") == section
            if key is None and in_section:
                return number, line.index("[") + 1
            continue
        if in_section and key is not None and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number, line.index(key) + 1
    return 1, 1


def read_file(path: Path) -> dict[str, Any]:
    """Read one config file into {section.key: value}, checking every table and key."""
    text = files.read_text(path, "a TOML config file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        line, col = (int(match[1]), int(match[2])) if match else (1, 1)
        what = re.sub(r"\s*\(at line.*\)", "", str(e))
        raise SourceError(str(path), line, col, f"not valid TOML: {what}",
                          "see https://toml.io for the syntax") from e
    values: dict[str, Any] = {}
    sections = sorted({s.section for s in SETTINGS})
    for section, table in data.items():
        if not isinstance(table, dict):
            line, col = _line_of(text, "", section)
            raise SourceError(str(path), line, col, f"'{section}' must be a table",
                              f"put settings under a [table], one of: {', '.join(sections)}")
        if section not in sections:
            line, col = _line_of(text, section, None)
            close = difflib.get_close_matches(section, sections, 1)
            raise SourceError(str(path), line, col, f"unknown table [{section}]",
                              f"did you mean [{close[0]}]?" if close else
                              f"known tables: {', '.join(sections)}")
        for key, raw in table.items():
            setting = _BY_KEY.get(f"{section}.{key}")
            line, col = _line_of(text, section, key)
            if setting is None:
                names = [s.name for s in settings_in([section])]
                close = difflib.get_close_matches(key, names, 1)
                raise SourceError(str(path), line, col, f"unknown setting '{key}' in [{section}]",
                                  f"did you mean '{close[0]}'?" if close else
                                  f"known settings: {', '.join(names)}")
            try:
                values[setting.key] = setting.value_of(raw)
            except (ValueError, TypeError) as e:
                raise SourceError(str(path), line, col, f"bad value for {key}: {e}",
                                  "see 'xenlfs config show' for the expected form") from e
    return values


def resolve(args: argparse.Namespace, config_path: Path | None = None) -> Config:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        values[setting.key] = setting.default_value()
        sources[setting.key] = "default"
    for path in config_files(config_path):
        for key, value in read_file(path).items():
            values[key] = value
            sources[key] = str(path)
    for setting in SETTINGS:
        if hasattr(args, setting.dest):
            raw = getattr(args, setting.dest)
            try:
                values[setting.key] = setting.value_of(raw)
            except (ValueError, TypeError) as e:
                raise UsageError(f"argument {setting.flag}: {e}") from e
            sources[setting.key] = "command line"
    sections = {section: cls(**{f.name: values[f"{section}.{f.name}"]
                                for f in dataclasses.fields(cls)})
                for section, cls in _SECTIONS.items()}
    return Config(**sections, sources=sources)
