"""libaio ≥ 0.3.107, Linux's asynchronous I/O library that Xen's qdisk backend uses
(hint appendix B: Debian's orig tarball, `make prefix=/usr install`)."""

from __future__ import annotations

from xenlfs.recipes.recipe import Options, Phase, Recipe


def phases(options: Options) -> list[Phase]:
    return [
        Phase("make", (("make", f"-j{options.jobs}", f"prefix={options.prefix}"),)),
        Phase("install", (("make", f"prefix={options.prefix}", "DESTDIR={stage}",
                           "install"),)),
    ]


RECIPE = Recipe(
    name="libaio",
    summary="libaio, Linux kernel asynchronous I/O (Xen's qdisk backend)",
    debian_source="libaio",
    phases=phases,
    installs=("{prefix}/include/libaio.h", "{prefix}/lib/libaio.so"),
)
