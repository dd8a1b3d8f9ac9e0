"""The one way a package is built: unpack, fix, phases of commands, install, copy into place.

Each phase leaves a stamp (a hash of what it ran) in the work tree, so running the same build
again after a failure skips the phases that finished; a phase that would run differently
re-runs, and so does everything after it. Every command's output goes to one log file.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import TaskID

from xenlfs import run, ui
from xenlfs.digest import file_digest
from xenlfs.errors import CommandFailed, PreconditionError

log = logging.getLogger("xenlfs.build")

STAMPS = ".xenlfs-stamps"


@dataclass(frozen=True)
class Options:
    prefix: Path = Path("/usr")
    destdir: Path | None = None     # stage the install here instead of /
    jobs: int = 1
    nice: int | None = None
    extra: tuple[str, ...] = ()     # recipe-specific: Xen's configure args
    targets: tuple[str, ...] = ()   # recipe-specific: Xen's make targets
    # A tree whose prerequisites (the recipe's `needs`: headers, libraries, tools xenlfs
    # built there) the build uses instead of the build machine's; None: the build machine's.
    deps: Path | None = None


@dataclass(frozen=True)
class Phase:
    """Commands run in the source tree (cwd relative to it), or a Python step on the tree."""

    name: str
    commands: tuple[tuple[str, ...], ...] = ()
    cwd: str = "."
    action: Callable[[Path, Callable[[str], None]], str] | None = None
    env: tuple[tuple[str, str], ...] = ()

    def fingerprint(self) -> str:
        what = repr((self.commands, self.cwd, self.env,
                     self.action.__qualname__ if self.action else None))
        return hashlib.sha256(what.encode()).hexdigest()


@dataclass(frozen=True)
class SourceFix:
    """A known bug of a release's source, fixed only where the buggy text is found."""

    path: str
    old: str
    new: str
    why: str


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    debian_source: str                     # Debian's source package with this upstream tarball
    phases: Callable[[Options], list[Phase]]
    installs: tuple[str, ...]              # files a good install has: "{prefix}/bin/iasl"
    fixes: tuple[SourceFix, ...] = ()
    stage: Callable[[Path, Path], Path] = lambda tree, work: work / "stage"
    # Files the build takes from Options.deps ("{prefix}/lib/libyajl.so"): checked before it
    # starts, and their contents are part of the cache key.
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Built:
    recipe: str
    tree: Path
    installed: list[Path]                  # the `installs` files, where they now are
    skipped: list[str]                     # phases done by an earlier run
    notes: list[str]                       # what fix phases found and did
    log: Path
    seconds: float
    reused: bool = False
    phases: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # every file copied into place


def plan(recipe: Recipe, options: Options) -> list[Phase]:
    """Every phase, in order, as it would run (the --dry-run output)."""
    return [Phase("unpack"), Phase("fix source"), *recipe.phases(options),
            Phase("copy into place")]


def needed(recipe: Recipe, options: Options) -> list[Path]:
    """The files the build takes from the --deps tree (none without one)."""
    if options.deps is None:
        return []
    prefix = str(options.prefix).strip("/")
    return [options.deps / p.format(prefix=prefix) for p in recipe.needs]


def check_needs(recipe: Recipe, options: Options) -> None:
    missing = [p for p in needed(recipe, options) if not p.exists()]
    if missing:
        raise PreconditionError(
            f"{recipe.name} takes its prerequisites from {options.deps}, which lacks "
            + ", ".join(str(p) for p in missing),
            hint=f"build them into that tree first: xenlfs build yajl|libaio|acpica "
            f"--destdir {options.deps}")


def cache_key(recipe: Recipe, tarball_digest: str, options: Options) -> str:
    """What a finished build depends on: the tarball, the recipe's and the runner's code,
    the options, and the prerequisites it takes from the --deps tree (their contents, not
    where the tree is). Any edit to either module changes the key, so a cached build can
    never hide a change to how it is built."""
    digest = hashlib.sha256(tarball_digest.encode())
    # sorted: a set's order changes with each process's hash seed, and so would the key.
    for module in sorted({recipe.phases.__module__, __name__}):
        digest.update(inspect.getsource(sys.modules[module]).encode())
    digest.update(repr((options.prefix, options.extra, options.targets)).encode())
    for path in needed(recipe, options):
        assert options.deps is not None
        digest.update(f"{path.relative_to(options.deps)} {file_digest(path)}".encode())
    return f"{recipe.name}-{digest.hexdigest()[:16]}"


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _run_logged(argv: Sequence[str], cwd: Path, out: Path, options: Options,
                env: dict[str, str]) -> None:
    full = [*(["nice", "-n", str(options.nice)] if options.nice is not None else []), *argv]
    with open(out, "a", encoding="utf-8") as f:
        f.write(f"\n+ (cd {cwd} && {run.command_line(full)})\n")
        f.flush()
        proc = run.spawn(full, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
        proc.wait()
    try:
        run.check_finished(proc, stderr=_tail(out))
    except CommandFailed as e:
        e.hint = (f"the whole log is {out}; fix the cause and run the same command again "
                  "(finished phases are skipped)")
        raise


def _stamp_ok(tree: Path, index: int, phase: Phase) -> bool:
    stamp = tree / STAMPS / f"{index:02d}"
    return stamp.is_file() and stamp.read_text() == phase.fingerprint()


def _stamp(tree: Path, index: int, phase: Phase) -> None:
    (tree / STAMPS).mkdir(exist_ok=True)
    (tree / STAMPS / f"{index:02d}").write_text(phase.fingerprint())


def _clear_stamps_from(tree: Path, index: int) -> None:
    for stamp in (tree / STAMPS).glob("*"):
        if stamp.name.isdigit() and int(stamp.name) >= index:
            stamp.unlink()


def unpack(tarball: Path, work: Path, digest: str) -> Path:
    """The tarball's single top directory under WORK/src, unpacked once per tarball."""
    src = work / "src"
    marker = work / "unpacked"
    if not (marker.is_file() and marker.read_text() == digest):
        shutil.rmtree(work, ignore_errors=True)
        src.mkdir(parents=True)
        run.run(["tar", "-xf", tarball, "-C", src, "--no-same-owner"])
        marker.write_text(digest)
    tops = [p for p in src.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise PreconditionError(f"{tarball} does not unpack to a single directory",
                                hint="give the package's source tarball")
    return tops[0]


def apply_fixes(tree: Path, fixes: Sequence[SourceFix]) -> list[str]:
    notes = []
    for fix in fixes:
        path = tree / fix.path
        text = path.read_text(errors="surrogateescape") if path.is_file() else ""
        if fix.old in text:
            path.write_text(text.replace(fix.old, fix.new), errors="surrogateescape")
            notes.append(f"fixed {fix.path}: {fix.why}")
    return notes


def build(recipe: Recipe, tarball: Path, options: Options, *, work_root: Path,
          log_dir: Path, result_cache: Path | None = None) -> Built:
    """Build and install one package; see the module docstring for resuming."""
    if not tarball.is_file():
        raise PreconditionError(f"{tarball} does not exist",
                                hint="give the source tarball with --source")
    check_needs(recipe, options)
    start = time.monotonic()
    digest = file_digest(tarball)
    work = work_root / f"{recipe.name}-{digest[:12]}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"build-{recipe.name}.log"
    key = cache_key(recipe, digest, options)
    cached = result_cache / f"{key}.tar" if result_cache else None
    if cached is not None and cached.is_file():
        with ui.step(f"{recipe.name}: install the identical earlier build ({cached.name})"):
            installed = _copy_into_place(cached, options, recipe)
        return Built(recipe.name, work, installed, [], [], log_path,
                     time.monotonic() - start, reused=True, files=_members(cached, options))
    with open(log_path, "w", encoding="utf-8") as f:
        f.write(f"xenlfs build {recipe.name} from {tarball} (sha256 {digest})\n")
    phases = recipe.phases(options)
    skipped: list[str] = []
    notes: list[str] = []
    env = {"MAKEFLAGS": ""}
    with ui.count_progress() as progress:
        task = TaskID(progress.add_task(f"{recipe.name}", total=len(phases) + 2))
        with ui.step(f"{recipe.name}: unpack {tarball.name}"):
            tree = unpack(tarball, work, digest)
            if not (tree / STAMPS / "fixed").exists():
                notes += apply_fixes(tree, recipe.fixes)
                (tree / STAMPS).mkdir(exist_ok=True)
                (tree / STAMPS / "fixed").write_text("\n".join(notes))
        progress.advance(task)
        stage = recipe.stage(tree, work)
        redo = False
        for index, phase in enumerate(phases):
            if not redo and _stamp_ok(tree, index, phase):
                skipped.append(phase.name)
                log.info("    %s: %s already done", recipe.name, phase.name)
                progress.advance(task)
                continue
            if not redo:
                _clear_stamps_from(tree, index)
                redo = True
            with ui.step(f"{recipe.name}: {phase.name}"):
                if phase.action is not None:
                    note = phase.action(tree, lambda line: _append(log_path, line))
                    if note:
                        notes.append(note)
                        log.info("    %s", note)
                for argv in phase.commands:
                    argv = tuple(a.replace("{stage}", str(stage)) for a in argv)
                    _run_logged(argv, tree / phase.cwd, log_path, options,
                                env | dict(phase.env))
            _stamp(tree, index, phase)
            progress.advance(task)
        archive = work / "stage.tar"
        run.run(["tar", "-cf", archive, "-C", stage, "."])
        with ui.step(f"{recipe.name}: copy into {options.destdir or '/'}"):
            installed = _copy_into_place(archive, options, recipe)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(archive, cached.with_suffix(".partial"))
            os.replace(cached.with_suffix(".partial"), cached)
            _prune(cached.parent, recipe.name)
        progress.advance(task)
    return Built(recipe.name, tree, installed, skipped, notes, log_path,
                 time.monotonic() - start, phases=[p.name for p in phases],
                 files=_members(archive, options))


KEEP = 4  # cached builds kept per package: older recipes' builds are never used again


def _prune(results: Path, name: str) -> None:
    found = sorted(results.glob(f"{name}-*.tar"), key=lambda p: p.stat().st_mtime,
                   reverse=True)
    for old in found[KEEP:]:
        old.unlink()


def _members(archive: Path, options: Options) -> list[Path]:
    """The regular files an install archive put into place."""
    target = options.destdir or Path("/")
    with tarfile.open(archive) as tar:
        return [target / m.name.removeprefix("./") for m in tar if m.isfile()]


def _append(log_path: Path, line: str) -> None:
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(line.rstrip("\n") + "\n")


def _copy_into_place(archive: Path, options: Options, recipe: Recipe) -> list[Path]:
    target = options.destdir or Path("/")
    target.mkdir(parents=True, exist_ok=True)
    run.run(["tar", "-xf", archive, "-C", target, "--no-same-owner", "--keep-directory-symlink"],
            writes=True)
    prefix = str(options.prefix).strip("/")
    installed = [target / p.format(prefix=prefix) for p in recipe.installs]
    missing = [p for p in installed if not os.path.lexists(p)]
    if missing:
        raise CommandFailed(f"{recipe.name}: the install lacks "
                            + ", ".join(str(p) for p in missing),
                            argv=[], returncode=None,
                            hint="see the build log; the recipe and this release disagree")
    return installed
