"""The after-install library check on real ELF files: a program and a library built with
gcc here, a tree holding this machine's own loader and C library, and readelf reading them.
Each case is compared with what the tree's own dynamic loader does (`chroot TREE ldd`
needs root; here the loader of the tree is run with --list and --library-path)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from xenlfs.recipes import libraries

LOADER = Path("/lib64/ld-linux-x86-64.so.2")
pytestmark = pytest.mark.skipif(not LOADER.exists() or shutil.which("gcc") is None,
                                reason="needs gcc and an x86-64 glibc")


def _libc() -> Path:
    out = subprocess.run(["gcc", "-print-file-name=libc.so.6"], capture_output=True,
                         text=True, check=True).stdout.strip()
    return Path(out).resolve()


def whole_tree(tmp_path: Path) -> Path:
    """A tree with this machine's loader and libc where an LFS system has them."""
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib64").mkdir()
    (root / "lib").symlink_to("usr/lib")
    shutil.copy(_libc(), root / "usr/lib/libc.so.6")
    shutil.copy(LOADER.resolve(), root / "usr/lib/ld-linux-x86-64.so.2")
    # LFS: /lib64/ld-linux-x86-64.so.2 -> ../lib/ld-linux-x86-64.so.2 (an absolute link
    # here, which must be followed inside the tree, not on this machine)
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to("/usr/lib/ld-linux-x86-64.so.2")
    (root / "etc").mkdir()
    (root / "etc/ld.so.conf").write_text("# none\ninclude ld.so.conf.d/*.conf\n")
    (root / "etc/ld.so.conf.d").mkdir()
    (root / "etc/ld.so.conf.d/opt.conf").write_text("/opt/foo/lib\n")
    return root


def gcc(*args: str | Path) -> None:
    subprocess.run(["gcc", *map(str, args)], check=True, capture_output=True)


def library_and_program(tmp_path: Path, *rpath: str) -> tuple[Path, Path]:
    """libfoo.so.1 and a program `prog` that needs it, built in tmp_path/build."""
    build = tmp_path / "build"
    build.mkdir(exist_ok=True)
    (build / "foo.c").write_text("int foo(void) { return 42; }\n")
    (build / "prog.c").write_text("int foo(void);\n"
                                  "int main(void) { return foo() == 42 ? 0 : 1; }\n")
    gcc("-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-o", build / "libfoo.so.1",
        build / "foo.c")
    gcc("-o", build / "prog", build / "prog.c", f"-L{build}", "-l:libfoo.so.1",
        *(f"-Wl,-rpath,{p}" for p in rpath))
    return build / "libfoo.so.1", build / "prog"


def install(source: Path, root: Path, where: str) -> Path:
    target = root / where.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return target


def loader_finds(root: Path, program: Path, library_dirs: list[str]) -> bool:
    """The tree's own loader, asked where the program's libraries are (the oracle)."""
    result = subprocess.run([str(root / "usr/lib/ld-linux-x86-64.so.2"), "--library-path",
                             ":".join(str(root / d.lstrip("/")) for d in library_dirs),
                             "--list", str(program)], capture_output=True, text=True)
    return result.returncode == 0 and "not found" not in result.stdout


def test_every_library_found_in_the_tree(tmp_path: Path) -> None:
    root = whole_tree(tmp_path)
    lib, prog = library_and_program(tmp_path)
    installed = [install(lib, root, "/usr/lib/libfoo.so.1"),
                 install(prog, root, "/usr/sbin/prog")]
    report = libraries.check(root, installed)
    assert report.skipped is None and report.checked == 2
    assert report.missing == []
    assert report.found["libfoo.so.1"] == "/lib/libfoo.so.1"
    assert report.found["libc.so.6"] == "/lib/libc.so.6"
    assert loader_finds(root, root / "usr/sbin/prog", ["/usr/lib"])


def test_a_library_only_on_the_build_machine_is_missing(tmp_path: Path) -> None:
    root = whole_tree(tmp_path)
    _, prog = library_and_program(tmp_path)
    installed = [install(prog, root, "/usr/sbin/prog")]
    report = libraries.check(root, installed)
    assert report.missing == [libraries.Missing(Path("/usr/sbin/prog"), "libfoo.so.1")]
    assert libraries.describe(report) == (
        f"/usr/sbin/prog needs libfoo.so.1, which is not in {root} (looked in /opt/foo/lib, "
        "/lib, /usr/lib, /lib64, /usr/lib64)")
    assert not loader_finds(root, root / "usr/sbin/prog", ["/usr/lib"])


def test_ld_so_conf_includes_and_links_stay_inside_the_tree(tmp_path: Path) -> None:
    root = whole_tree(tmp_path)
    lib, prog = library_and_program(tmp_path)
    # Found through etc/ld.so.conf.d/opt.conf, by an absolute link resolved in the tree.
    install(lib, root, "/opt/foo/lib/libfoo.so.1.0")
    (root / "opt/foo/lib/libfoo.so.1").symlink_to("/opt/foo/lib/libfoo.so.1.0")
    installed = [install(prog, root, "/usr/bin/prog")]
    report = libraries.check(root, installed)
    assert report.missing == [] and report.found["libfoo.so.1"] == "/opt/foo/lib/libfoo.so.1"
    # A link to a file that exists on this machine but not in the tree is not a library.
    (root / "opt/foo/lib/libfoo.so.1").unlink()
    (root / "opt/foo/lib/libfoo.so.1").symlink_to(str(tmp_path / "build/libfoo.so.1"))
    report = libraries.check(root, installed)
    assert [m.library for m in report.missing] == ["libfoo.so.1"]


def test_origin_runpath_and_a_missing_interpreter(tmp_path: Path) -> None:
    root = whole_tree(tmp_path)
    lib, prog = library_and_program(tmp_path, "$ORIGIN/../lib/foo")
    install(lib, root, "/usr/lib/foo/libfoo.so.1")
    installed = [install(prog, root, "/usr/bin/prog")]
    assert libraries.check(root, installed).missing == []
    (root / "lib64/ld-linux-x86-64.so.2").unlink()
    report = libraries.check(root, installed)
    assert [m.library for m in report.missing] == ["/lib64/ld-linux-x86-64.so.2"]


def test_a_library_of_another_class_does_not_count(tmp_path: Path) -> None:
    root = whole_tree(tmp_path)
    _, prog = library_and_program(tmp_path)
    # A 32-bit ELF named like the library: the loader would skip it, and so does the check.
    fake = bytearray((root / "usr/lib/libc.so.6").read_bytes()[:64])
    fake[4] = 1  # ELFCLASS32
    (root / "usr/lib/libfoo.so.1").write_bytes(bytes(fake))
    report = libraries.check(root, [install(prog, root, "/usr/bin/prog")])
    assert [m.library for m in report.missing] == ["libfoo.so.1"]
    assert ("the loader skips the file of that name at /lib/libfoo.so.1, "
            "/usr/lib/libfoo.so.1: it is built for another ELF class") in libraries.describe(report)


def test_scripts_are_not_checked_and_a_staging_dir_is_skipped(tmp_path: Path) -> None:
    root = whole_tree(tmp_path)
    script = root / "usr/sbin/xen-script"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    assert libraries.check(root, [script]).checked == 0
    stage = tmp_path / "stage"
    _, prog = library_and_program(tmp_path)
    report = libraries.check(stage, [install(prog, stage, "/usr/bin/prog")])
    assert report.checked == 0 and report.skipped and "no C library" in report.skipped


def test_the_search_dirs_are_the_tree_s_own(tmp_path: Path) -> None:
    root = whole_tree(tmp_path)
    assert libraries.search_dirs(root) == ["/opt/foo/lib", *libraries.DEFAULT_DIRS]
    os.remove(root / "etc/ld.so.conf")
    assert libraries.search_dirs(root) == list(libraries.DEFAULT_DIRS)


def test_include_globs_and_linked_files_are_read_inside_the_tree(tmp_path: Path) -> None:
    root = whole_tree(tmp_path)
    # This machine's directory, and the tree's own at the same path: a link to it (an
    # absolute target) must lead to the tree's copy, never to this machine's.
    host = tmp_path / "host-conf.d"
    host.mkdir()
    (host / "host.conf").write_text("/host/lib\n")
    ours = root / str(host).lstrip("/")
    ours.mkdir(parents=True)
    (ours / "tree.conf").write_text("/tree/lib\n")
    (root / "etc/ld.so.conf").write_text("include /etc/linked.d/*.conf\n"
                                         "include\t/etc/one.conf\n")
    (root / "etc/linked.d").symlink_to(host)
    (root / "etc/one.conf").symlink_to(host / "host.conf")
    assert libraries.search_dirs(root) == ["/tree/lib", *libraries.DEFAULT_DIRS]


def test_a_relative_include_is_relative_to_its_file_and_a_loop_ends(tmp_path: Path) -> None:
    root = whole_tree(tmp_path)
    (root / "etc/ld.so.conf.d/opt.conf").write_text("/opt/foo/lib\ninclude more/*.conf\n"
                                                    "include ../ld.so.conf\n")
    (root / "etc/ld.so.conf.d/more").mkdir()
    (root / "etc/ld.so.conf.d/more/x.conf").write_text("/opt/x/lib, /opt/y/lib\n")
    assert libraries.search_dirs(root) == ["/opt/foo/lib", "/opt/x/lib", "/opt/y/lib",
                                           *libraries.DEFAULT_DIRS]


def test_dot_dot_after_a_link_is_taken_where_the_link_leads(tmp_path: Path) -> None:
    # Relative links only, so this machine's own resolution is the oracle.
    root = tmp_path / "root"
    (root / "srv/pkg/bin").mkdir(parents=True)
    (root / "srv/pkg/lib").mkdir()
    (root / "srv/lib").mkdir()
    (root / "opt").mkdir()
    (root / "srv/link").symlink_to("pkg/bin")
    (root / "opt/foo").symlink_to("../srv/link")
    for path in ("/opt/foo/../lib", "/opt/foo", "/srv/link/../../lib", "/opt/./foo/.."):
        expected = Path(os.path.realpath(root / path.lstrip("/"), strict=True))
        assert libraries.inside(root, path) == expected, path
    assert libraries.inside(root, "/opt/foo/../lib") == root / "srv/pkg/lib"
    assert libraries.inside(root, "/../../opt/foo") == root / "srv/pkg/bin"
    (root / "loop").symlink_to("loop")
    assert libraries.inside(root, "/loop/x") is None


def test_an_installed_path_through_a_link_out_of_the_tree_is_not_read(tmp_path: Path) -> None:
    root = whole_tree(tmp_path)
    _, prog = library_and_program(tmp_path)  # tmp_path/build/prog, on this machine only
    # The tree's /opt/link leads to this machine's build directory if followed here.
    (root / "opt").mkdir()
    (root / "opt/link").symlink_to(tmp_path / "build")
    report = libraries.check(root, [root / "opt/link/prog"])
    assert report.checked == 0 and report.missing == []
    # Inside the tree the link leads to the tree's own copy of that directory: that is read,
    # and $ORIGIN is where the file really is.
    ours = root / str(tmp_path / "build").lstrip("/")
    ours.mkdir(parents=True)
    shutil.copy(prog, ours / "prog")
    report = libraries.check(root, [root / "opt/link/prog"])
    assert report.checked == 1
    assert [(str(m.file), m.library) for m in report.missing] == [
        ("/opt/link/prog", "libfoo.so.1")]


def test_build_s_error_says_what_where_and_how_to_fix(tmp_path: Path) -> None:
    from xenlfs.commands import build
    from xenlfs.errors import XenlfsError

    root = whole_tree(tmp_path)
    _, prog = library_and_program(tmp_path)
    installed = [install(prog, root, "/usr/sbin/prog"), install(prog, root, "/usr/bin/prog2")]
    with pytest.raises(XenlfsError) as raised:
        build._check_libraries(root, installed)
    message = str(raised.value)
    assert message.startswith(f"installed into {root}, but {root} lacks what the installed "
                              "programs need (libfoo.so.1):\n")
    assert "/usr/sbin/prog needs libfoo.so.1, which is not in" in message
    assert "/usr/bin/prog2 needs libfoo.so.1" in message
    assert "--deps TREE" in (raised.value.hint or "")
