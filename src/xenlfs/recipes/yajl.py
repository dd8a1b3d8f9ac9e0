"""libyajl, the JSON library xl and libxl use (hint appendix B: `./configure && make install`).

yajl 2.1.0's ./configure is a small sh script that runs CMake in build/ and writes a Makefile
whose `install` also builds the docs (doxygen, optional) and runs the tests; CMake is the
part that matters, so it is required and Ruby is not.
"""

from __future__ import annotations

from xenlfs.recipes.recipe import Options, Phase, Recipe


def phases(options: Options) -> list[Phase]:
    destdir = "DESTDIR={stage}"
    return [
        Phase("configure", (("./configure", "-p", str(options.prefix)),)),
        Phase("make", (("make", f"-j{options.jobs}", "distro"),)),
        Phase("install", (("make", "install", destdir),)),
    ]


RECIPE = Recipe(
    name="yajl",
    summary="libyajl, a JSON parser (libxl reads and writes its config as JSON)",
    debian_source="yajl",
    phases=phases,
    installs=("{prefix}/include/yajl/yajl_parse.h", "{prefix}/lib/libyajl.so",
              "{prefix}/share/pkgconfig/yajl.pc"),
)
