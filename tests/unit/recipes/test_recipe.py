"""The recipe runner on a tiny real package (real tar and make): phases, the log, a failure
with the log's tail, resuming, source fixes found by content, and the result cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xenlfs.errors import CommandFailed, PreconditionError
from xenlfs.recipes import recipe
from xenlfs.recipes.recipe import Options, Phase, Recipe, SourceFix

MAKEFILE = """\
all: hello
hello: hello.sh
\ttest ! -e $(CURDIR)/../../../../break || { echo "the build broke here"; exit 1; }
\tcp hello.sh hello
\techo built >> $(CURDIR)/../../../../count
install: hello
\tinstall -D -m 755 hello $(DESTDIR)$(prefix)/bin/hello
"""


def tarball(tmp_path: Path, greeting: str = "hello, world") -> Path:
    src = tmp_path / "pkg/hello-1.0"
    src.mkdir(parents=True)
    (src / "Makefile").write_text(MAKEFILE)
    (src / "hello.sh").write_text(f"#!/bin/sh\necho 'BUG {greeting}'\n")
    out = tmp_path / "hello-1.0.tar.gz"
    subprocess.run(["tar", "-czf", str(out), "-C", str(tmp_path / "pkg"), "hello-1.0"],
                   check=True)
    return out


def phases(options: Options) -> list[Phase]:
    return [Phase("make", (("make",),)),
            Phase("install", (("make", "install", f"prefix={options.prefix}",
                               "DESTDIR={stage}"),))]


HELLO = Recipe("hello", "a test package", "hello", phases, ("{prefix}/bin/hello",),
               fixes=(SourceFix("hello.sh", "BUG ", "", "the greeting's typo"),))


def build(tmp_path: Path, source: Path, destdir: Path, cache: Path | None = None,
          prefix: str = "/usr") -> recipe.Built:
    # the tree is tmp_path/w/hello-DIGEST/src/hello-1.0: ../../../.. is tmp_path
    return recipe.build(HELLO, source, Options(prefix=Path(prefix), destdir=destdir),
                         work_root=tmp_path / "w", log_dir=tmp_path / "logs",
                         result_cache=cache)


def test_build_fixes_installs_and_logs(tmp_path: Path) -> None:
    built = build(tmp_path, tarball(tmp_path), tmp_path / "dest")
    hello = tmp_path / "dest/usr/bin/hello"
    assert built.installed == [hello]
    assert subprocess.run([str(hello)], capture_output=True, text=True).stdout == \
        "hello, world\n"
    assert built.notes == ["fixed hello.sh: the greeting's typo"]
    log = built.log.read_text()
    assert "+ (cd " in log and "cp hello.sh hello" in log and "install -D" in log


def test_a_failure_shows_the_tail_and_a_rerun_resumes(tmp_path: Path) -> None:
    source = tarball(tmp_path)
    (tmp_path / "break").touch()
    with pytest.raises(CommandFailed) as e:
        build(tmp_path, source, tmp_path / "dest")
    assert "the build broke here" in str(e.value)
    assert str(tmp_path / "logs/build-hello.log") in str(e.value)
    assert not (tmp_path / "dest").exists()
    (tmp_path / "break").unlink()
    built = build(tmp_path, source, tmp_path / "dest")
    assert built.skipped == [] and (tmp_path / "dest/usr/bin/hello").exists()
    again = build(tmp_path, source, tmp_path / "dest2")
    assert again.skipped == ["make", "install"]
    assert (tmp_path / "count").read_text() == "built\n"      # made once


def test_changed_options_rerun_the_phases(tmp_path: Path) -> None:
    source = tarball(tmp_path)
    build(tmp_path, source, tmp_path / "dest")
    other = build(tmp_path, source, tmp_path / "dest", prefix="/opt/hello")
    assert other.skipped == ["make"]
    assert (tmp_path / "dest/opt/hello/bin/hello").exists()


def test_the_result_cache_reuses_only_an_identical_build(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    source = tarball(tmp_path)
    first = build(tmp_path, source, tmp_path / "d1", cache)
    assert not first.reused and len(list(cache.iterdir())) == 1
    second = build(tmp_path, source, tmp_path / "d2", cache)
    assert second.reused and (tmp_path / "d2/usr/bin/hello").exists()
    changed = tarball(tmp_path / "new", greeting="hello, LFS")
    third = build(tmp_path, changed, tmp_path / "d3", cache)
    assert not third.reused
    for n in range(recipe.KEEP + 1):
        build(tmp_path, source, tmp_path / "d4", cache, prefix=f"/opt/{n}")
    assert len(list(cache.glob("hello-*.tar"))) == recipe.KEEP
    key = recipe.cache_key(HELLO, "x", Options())
    assert key != recipe.cache_key(HELLO, "y", Options())
    assert key != recipe.cache_key(HELLO, "x", Options(prefix=Path("/opt")))


def test_a_tarball_that_is_not_one_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bad = tmp_path / "bad.tar"
    subprocess.run(["tar", "-cf", str(bad), "-C", str(tmp_path), "a", "b"], check=True)
    with pytest.raises(Exception, match="single directory"):
        build(tmp_path, bad, tmp_path / "dest")


def test_the_result_cache_key_is_the_same_in_every_process() -> None:
    """Each CLI run is a new process with its own hash seed; the key must not depend on it."""
    script = ("from xenlfs import recipes; from xenlfs.recipes import recipe; "
              "print(recipe.cache_key(recipes.get('libaio'), 'x', recipe.Options()))")
    keys = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": str(seed),
                                            "PYTHONPATH": str(Path(recipe.__file__).parents[2])}
                           ).stdout for seed in range(6)}
    assert len(keys) == 1, keys


NEEDS = Recipe("hello", "a test package", "hello", phases, ("{prefix}/bin/hello",),
               needs=("{prefix}/lib/libgreet.so", "{prefix}/bin/iasl"))


def test_prerequisites_from_a_tree_are_checked_and_keyed_by_content(tmp_path: Path) -> None:
    deps = tmp_path / "tree"
    options = Options(deps=deps, destdir=tmp_path / "dest")
    source = tarball(tmp_path)
    with pytest.raises(PreconditionError) as e:
        recipe.build(NEEDS, source, options, work_root=tmp_path / "w",
                     log_dir=tmp_path / "logs")
    assert f"{deps}/usr/lib/libgreet.so" in str(e.value)
    assert f"xenlfs build yajl|libaio|acpica --destdir {deps}" in str(e.value)
    assert not (tmp_path / "w").exists()          # refused before anything was unpacked
    for name in ("lib/libgreet.so", "bin/iasl"):
        (deps / "usr" / name).parent.mkdir(parents=True, exist_ok=True)
        (deps / "usr" / name).write_text("one\n")
    built = recipe.build(NEEDS, source, options, work_root=tmp_path / "w",
                         log_dir=tmp_path / "logs")
    assert built.files == [tmp_path / "dest/usr/bin/hello"]
    key = recipe.cache_key(NEEDS, "x", options)
    # The same contents in another tree: the same build; other contents: another.
    elsewhere = tmp_path / "other"
    shutil.copytree(deps, elsewhere)
    assert recipe.cache_key(NEEDS, "x", Options(deps=elsewhere)) == key
    (elsewhere / "usr/bin/iasl").write_text("two\n")
    assert recipe.cache_key(NEEDS, "x", Options(deps=elsewhere)) != key
    assert recipe.cache_key(NEEDS, "x", Options()) != key


def test_built_lists_every_file_it_put_into_place(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    source = tarball(tmp_path)
    first = build(tmp_path, source, tmp_path / "d1", cache)
    assert first.files == [tmp_path / "d1/usr/bin/hello"]
    second = build(tmp_path, source, tmp_path / "d2", cache)
    assert second.reused and second.files == [tmp_path / "d2/usr/bin/hello"]
