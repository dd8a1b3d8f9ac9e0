"""Dev86: bcc, as86 and ld86, the 16-bit x86 tools Xen's rombios is built with
(hint appendix B: `make; make install`; Debian calls the package linux86).

Dev86's plain `make` builds everything, including the ELKS emulator, which needs vm86 mode
and so cannot build on x86-64, and its 8086 C library, which Xen does not use. We build
what Debian's bcc and bin86 packages ship, with the same make targets `make install` uses.
"""

from __future__ import annotations

from xenlfs.recipes.recipe import Options, Phase, Recipe, SourceFix


def phases(options: Options) -> list[Phase]:
    prefix = f"PREFIX={options.prefix}"
    # make.fil bakes PREFIX in when it is generated, so every make gets the same PREFIX.
    # Dev86's makefiles ask nothing when stdin is not a terminal (run.spawn gives /dev/null).
    return [
        Phase("make", (("make", prefix, "bcc86", "unproto", "copt", "as86", "ld86"),)),
        Phase("install", (("make", prefix, "DIST={stage}", "install-bcc", "install-man"),)),
    ]


RECIPE = Recipe(
    name="dev86",
    summary="bcc, as86, ld86: the 16-bit compiler, assembler and linker (Xen's rombios)",
    debian_source="linux86",
    phases=phases,
    installs=("{prefix}/bin/bcc", "{prefix}/bin/as86", "{prefix}/bin/ld86",
              "{prefix}/lib/bcc/bcc-cc1", "{prefix}/lib/bcc/bcc-cpp"),
    fixes=(
        # 0.16.17's optimiser copies a string onto itself with strcpy; today's glibc
        # garbles that ('.text' becomes '.txxt'). Later releases (and Debian) use memmove.
        SourceFix("copt/copt.c", "\tstrcpy(buf, cp);", "\tmemmove(buf, cp, strlen(cp) + 1);",
                  "copt's overlapping strcpy (bcc -O output was garbled)"),
    ),
)
