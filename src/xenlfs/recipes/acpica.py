"""ACPICA's iasl, the ASL compiler Xen's hvmloader needs for its ACPI tables
(hint appendix B: `make; make install`)."""

from __future__ import annotations

from xenlfs.recipes.recipe import Options, Phase, Recipe


def phases(options: Options) -> list[Phase]:
    prefix = f"PREFIX={options.prefix}"
    # Only iasl: Xen needs nothing else from ACPICA, and the other ten tools would more
    # than double the build. `make install` installs just the tools that were built.
    return [
        Phase("make", (("make", f"-j{options.jobs}", prefix, "iasl"),)),
        Phase("install", (("make", prefix, "DESTDIR={stage}", "install"),)),
    ]


RECIPE = Recipe(
    name="acpica",
    summary="iasl, ACPICA's ASL compiler (Xen's hvmloader ACPI tables)",
    debian_source="acpica-unix",
    phases=phases,
    installs=("{prefix}/bin/iasl",),
)
