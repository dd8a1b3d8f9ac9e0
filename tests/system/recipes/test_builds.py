"""Hint step 2 for real: each package built from Debian's upstream tarball by the real
command line into a DESTDIR, and what it installed works."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROGRAM = r"""
#include <stdio.h>
#include <libaio.h>
#include <yajl/yajl_tree.h>
int main(void) {
    char err[128];
    yajl_val doc = yajl_tree_parse("{\"name\": \"xenguest1\", \"memory\": 1024}", err,
                                   sizeof err);
    const char *name_path[] = {"name", NULL}, *mem_path[] = {"memory", NULL};
    if (!doc) { fprintf(stderr, "yajl: %s\n", err); return 1; }
    io_context_t ctx = 0;
    int aio = io_setup(8, &ctx);
    printf("%s %lld aio=%d\n", YAJL_GET_STRING(yajl_tree_get(doc, name_path, yajl_t_string)),
           YAJL_GET_INTEGER(yajl_tree_get(doc, mem_path, yajl_t_number)), aio);
    if (aio == 0) io_destroy(ctx);
    yajl_tree_free(doc);
    return 0;
}
"""


def build(xenlfs, tmp_path: Path, name: str, tarball: Path, destdir: Path, cache: Path,
          *extra: str) -> str:
    result = xenlfs("build", name, "--source", str(tarball), "--destdir", str(destdir),
                    "--cache-dir", str(cache), "--log-dir", str(tmp_path / "logs"),
                    "--jobs", "2", "--nice", "19", "--reuse", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_yajl_and_libaio_link_and_run(xenlfs, orig, cache_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    yajl = build(xenlfs, tmp_path, "yajl", orig("yajl"), dest, cache_dir)
    aio = build(xenlfs, tmp_path, "libaio", orig("libaio"), dest, cache_dir)
    assert f"installed {dest}/usr/lib/libyajl.so" in yajl
    assert f"installed {dest}/usr/include/libaio.h" in aio
    source = tmp_path / "prog.c"
    source.write_text(PROGRAM)
    usr = dest / "usr"
    subprocess.run(["gcc", "-o", str(tmp_path / "prog"), str(source), f"-I{usr}/include",
                    f"-L{usr}/lib", "-lyajl", "-laio"], check=True)
    linked = subprocess.run(["ldd", str(tmp_path / "prog")], capture_output=True, text=True,
                            env={"LD_LIBRARY_PATH": f"{usr}/lib"}, check=True).stdout
    assert f"{usr}/lib/libyajl.so" in linked and f"{usr}/lib/libaio.so" in linked
    out = subprocess.run([str(tmp_path / "prog")], capture_output=True, text=True,
                         env={"LD_LIBRARY_PATH": f"{usr}/lib"}, check=True).stdout
    assert out.startswith("xenguest1 1024 aio=")


def test_iasl_compiles_asl(xenlfs, orig, cache_dir: Path, tmp_path: Path) -> None:
    tarball = orig("acpica-unix")
    dest = tmp_path / "dest"
    build(xenlfs, tmp_path, "acpica", tarball, dest, cache_dir)
    iasl = dest / "usr/bin/iasl"
    version = subprocess.run([str(iasl), "-v"], capture_output=True, text=True, check=True)
    assert "ASL+ Optimizing Compiler" in version.stdout
    asl = tmp_path / "xenlfs.asl"
    asl.write_text('DefinitionBlock ("", "SSDT", 2, "XENLFS", "TEST", 1)\n'
                   '{\n    Name (XLFS, 42)\n}\n')
    subprocess.run([str(iasl), "-p", str(tmp_path / "xenlfs"), str(asl)], check=True,
                   capture_output=True)
    assert (tmp_path / "xenlfs.aml").read_bytes()[:4] == b"SSDT"
    # The build is cached by its inputs: the same tarball and recipe again is a copy.
    again = build(xenlfs, tmp_path, "acpica", tarball, tmp_path / "again", cache_dir)
    assert "acpica: reused the identical earlier build" in again, again
    assert (tmp_path / "again/usr/bin/iasl").read_bytes() == iasl.read_bytes()


def test_dev86_compiles_8086_code(xenlfs, orig, cache_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    out = build(xenlfs, tmp_path, "dev86", orig("linux86"), dest, cache_dir)
    assert "installed" in out
    bin_dir = dest / "usr/bin"
    version = subprocess.run([str(bin_dir / "bcc"), "-v"], capture_output=True, text=True)
    assert "version 0.16" in version.stdout + version.stderr
    # bcc finds its cc1/cpp under its prefix; BCC_PREFIX points it at the staged one.
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "BCC_PREFIX": str(dest / "usr")}
    c = tmp_path / "add.c"
    # Indented assembler is what 0.16.17's copt garbled ('.text' became '.txxt').
    c.write_text("int add(a, b) int a, b; { return a + b; }\n"
                 "void halt() {\n#asm\n\t.text\n\t.even\n\thlt\n#endasm\n}\n")
    subprocess.run([str(bin_dir / "bcc"), "-0", "-O", "-S", "-o", str(tmp_path / "add.s"),
                    str(c)], check=True, env=env)
    assembly = (tmp_path / "add.s").read_text()
    assert "_add:" in assembly and "\n.text\n.even\n" in assembly, assembly
    # as86 takes only short file names: run it where the files are.
    subprocess.run([str(bin_dir / "as86"), "-0", "-O", "-o", "add.o", "add.s"], check=True,
                   env=env, cwd=tmp_path)
    symbols = subprocess.run([str(bin_dir / "nm86"), str(tmp_path / "add.o")],
                             capture_output=True, text=True, check=True, env=env).stdout
    assert " T _add\n" in symbols and " T _halt\n" in symbols


def test_a_second_build_reuses_the_first(xenlfs, orig, tmp_path: Path) -> None:
    tarball = orig("libaio")
    cache_dir = tmp_path / "cache"     # its own cache: libaio builds in seconds
    build(xenlfs, tmp_path, "libaio", tarball, tmp_path / "one", cache_dir)
    again = build(xenlfs, tmp_path, "libaio", tarball, tmp_path / "two", cache_dir)
    assert "reused the identical earlier build" in again
    assert (tmp_path / "two/usr/lib/libaio.so").exists()
    other = build(xenlfs, tmp_path, "libaio", tarball, tmp_path / "three", cache_dir,
                  "--prefix", "/opt/aio")
    assert "reused" not in other and (tmp_path / "three/opt/aio/include/libaio.h").exists()
