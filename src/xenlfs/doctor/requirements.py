"""The table of what building and running Xen needs, and where each piece comes from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from xenlfs.recipes.sources import UPSTREAM


class Kind(StrEnum):
    PROGRAM = "program"       # found on PATH; version from its output
    PKGCONFIG = "pkg-config"  # a pkg-config module; version from --modversion
    HEADER = "header"         # a header under ROOT/usr/include (libraries without a .pc)


@dataclass(frozen=True)
class Requirement:
    name: str
    kind: Kind
    probes: tuple[str, ...]        # alternatives: programs, modules or header paths
    why: str
    fix: str                       # one line: the BLFS page, or the xenlfs build command
    debian: str
    required: bool = True
    version_args: tuple[str, ...] = ("--version",)
    minimum: str | None = None
    marker: str | None = None      # HEADER: text only headers of `minimum` or later have
    optional_from: str | None = None  # Xen version from which it is no longer needed

    def needed(self, xen_version: str) -> bool:
        if not self.required:
            return False
        return self.optional_from is None or _key(xen_version) < _key(self.optional_from)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def at_least(version: str, minimum: str) -> bool:
    return _key(version) >= _key(minimum)


P, M, H = Kind.PROGRAM, Kind.PKGCONFIG, Kind.HEADER
BUILD = "xenlfs build"
ACPICA = UPSTREAM["acpica-unix"]

REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("C compiler", P, ("gcc", "cc"), "compiles Xen and its tools",
                "LFS book, chapter 8 'GCC'", "gcc"),
    Requirement("make", P, ("make",), "runs Xen's build", "LFS book, chapter 8 'Make'", "make"),
    Requirement("binutils", P, ("ld",), "links Xen", "LFS book, chapter 8 'Binutils'",
                "binutils"),
    Requirement("python3", P, ("python3",), "Xen's build scripts and tools",
                "LFS book, chapter 8 'Python'", "python3"),
    Requirement("Python headers", M, ("python3",), "the tools' Python bindings (pygrub)",
                "LFS book, chapter 8 'Python'", "python3-dev"),
    Requirement("perl", P, ("perl",), "Xen's build scripts", "LFS book, chapter 8 'Perl'",
                "perl"),
    Requirement("pkg-config", P, ("pkg-config", "pkgconf"), "finds the libraries below",
                "LFS book, chapter 8 'Pkgconf'", "pkg-config"),
    Requirement("bison", P, ("bison",), "libxlu's config parser", "LFS book, chapter 8 'Bison'",
                "bison"),
    Requirement("flex", P, ("flex",), "libxlu's config lexer", "LFS book, chapter 8 'Flex'",
                "flex"),
    Requirement("gettext", P, ("msgfmt",), "QEMU's and the tools' messages",
                "LFS book, chapter 8 'Gettext'", "gettext"),
    Requirement("OpenSSL", M, ("openssl",), "the tools (and QEMU)", "BLFS book 'OpenSSL' "
                "(LFS 8 'OpenSSL')", "libssl-dev"),
    Requirement("zlib", M, ("zlib",), "compressed kernels and images",
                "LFS book, chapter 8 'Zlib'", "zlib1g-dev"),
    Requirement("ncurses", M, ("ncurses", "ncursesw"), "xentop", "LFS book, chapter 8 'Ncurses'",
                "libncurses-dev"),
    Requirement("libuuid", M, ("uuid",), "domain UUIDs in libxl",
                "LFS book, chapter 8 'Util-linux'", "uuid-dev"),
    Requirement("GLib", M, ("glib-2.0",), "QEMU (the device model)", "BLFS book 'GLib'",
                "libglib2.0-dev"),
    Requirement("GLib gthread", M, ("gthread-2.0",), "QEMU's configure checks it",
                "BLFS book 'GLib'", "libglib2.0-dev"),
    Requirement("Pixman", M, ("pixman-1",), "QEMU's display", "BLFS book 'Pixman'",
                "libpixman-1-dev"),
    Requirement("libyajl", H, ("yajl/yajl_version.h",), "libxl's JSON", f"{BUILD} yajl",
                "libyajl-dev"),
    Requirement("libaio", H, ("libaio.h",), "QEMU's qdisk backend", f"{BUILD} libaio",
                "libaio-dev", minimum="0.3.107", marker="io_prep_preadv"),
    # Debian's mirrors may lack acpica-unix's source: say where upstream's tarballs are.
    Requirement("iasl", P, ("iasl",), "hvmloader's ACPI tables",
                f"{BUILD} acpica (from Debian's acpica-unix source, or --source TARBALL: "
                f"{ACPICA.tarball} from {ACPICA.releases})", ACPICA.debian_binary,
                version_args=("-v",)),
    # rombios is the only user; it is built only with qemu-traditional, off since Xen 4.14.
    Requirement("bcc (dev86)", P, ("bcc",), "rombios (16-bit)", f"{BUILD} dev86", "bcc",
                version_args=("-v",), optional_from="4.14"),
    Requirement("as86 (dev86)", P, ("as86",), "rombios (16-bit)", f"{BUILD} dev86", "bin86",
                version_args=("-v",), optional_from="4.14"),
    Requirement("ld86 (dev86)", P, ("ld86",), "rombios (16-bit)", f"{BUILD} dev86", "bin86",
                version_args=("-v",), optional_from="4.14"),
    Requirement("bridge tool", P, ("bridge", "brctl"), "guests' network (xenbr0)",
                "LFS book, chapter 8 'IPRoute2' (or BLFS 'bridge-utils')", "iproute2",
                version_args=("-V",)),
    Requirement("CMake", P, ("cmake",), "builds libyajl", "BLFS book 'CMake'", "cmake",
                required=False),
    Requirement("Ruby", P, ("ruby",), "libyajl's docs and tests only", "BLFS book 'Ruby'",
                "ruby", required=False),
)
