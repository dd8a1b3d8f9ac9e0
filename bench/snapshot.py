"""Benchmark of step 0: the hint's `tar czpf`, raw tar, and `xenlfs snapshot create`.

Prepares once, and caches under the xenlfs cache dir, a real Debian 12 root of > 500 MB
(debootstrap with a compiler, Python, git, vim, man-db), keyed by everything that shapes it.
Then, in the same run and on the same warm page cache: the hint's exact command, raw GNU
tar (both the literal `tar cpf /dev/null`, which GNU tar shortcuts without reading file
data, and `tar cpf - | cat >/dev/null`, which reads everything: the honest I/O limit), and
`xenlfs snapshot create` (manifest included), then `xenlfs snapshot verify`.

    python3 bench/snapshot.py [--cache DIR] [--repeat N] [--prepare-only]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("build-essential", "python3", "git", "vim", "man-db", "iproute2", "locales",
            "openssh-server", "less", "file", "xz-utils", "zstd", "curl")
HINT_EXCLUDES = ("/var/backups", "/boot", "/dev", "/lost+found", "/var/lost+found", "/media",
                 "/mnt", "/proc", "/run", "/sys", "/tmp")


def default_cache() -> Path:
    return Path("/var/cache/xenlfs") if os.geteuid() == 0 else Path.home() / ".cache/xenlfs"


def tree_key() -> str:
    text = "\n".join((SUITE, MIRROR, *sorted(PACKAGES), "1"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def prepare(cache: Path) -> Path:
    base = cache / "bench" / f"snapshot-root-{SUITE}-{tree_key()}"
    tree = base / "root"
    if (base / "ready").exists():
        return tree
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    print(f"preparing {tree} with debootstrap (once; cached) …", file=sys.stderr)
    subprocess.run(["debootstrap", f"--include={','.join(PACKAGES)}", SUITE, str(tree),
                    MIRROR], check=True, stdout=subprocess.DEVNULL)
    # apt's downloaded .debs are not part of a system; a real root has them cleaned
    for deb in (tree / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    (base / "ready").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    return tree


def timed(argv: list[str] | str, repeat: int, *, shell: bool = False,
          env: dict[str, str] | None = None, before: object = None) -> float:
    times = []
    for _ in range(repeat):
        if callable(before):
            before()
        start = time.monotonic()
        subprocess.run(argv, shell=shell, check=True, env=env, stdout=subprocess.DEVNULL)
        times.append(time.monotonic() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=default_cache())
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast commands "
                        "(median); the hint's slow command runs once")
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args()
    tree = prepare(args.cache)
    if args.prepare_only:
        print(tree)
        return 0
    out = args.cache / "bench" / "snapshot-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    hint_excludes = [f"--exclude=.{p}" for p in HINT_EXCLUDES]
    size = int(subprocess.run(["du", "-sb", str(tree)], capture_output=True, text=True,
                              check=True).stdout.split()[0])
    files = sum(len(d) + len(f) for _, d, f in os.walk(tree))
    print(f"tree: {tree}\n      {size / 1e6:.0f} MB in {files} entries; "
          f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")

    # Warm the page cache so every command reads the same, cached tree.
    subprocess.run(f"tar -C {tree} -cf - . | cat >/dev/null", shell=True, check=True)

    hint_out = out / "hint.tgz"
    t_hint = timed(["tar", "-C", str(tree), "-czpf", str(hint_out), *hint_excludes, "."], 1)
    t_devnull = timed(["tar", "-C", str(tree), "-cpf", "/dev/null", *hint_excludes, "."],
                      args.repeat)
    t_raw = timed(f"tar -C {tree} -cpf - {' '.join(hint_excludes)} . | cat >/dev/null",
                  args.repeat, shell=True)
    ours = out / "xenlfs.tar.zst"

    def remove_ours() -> None:
        for path in (ours, Path(f"{ours}.manifest.jsonl")):
            path.unlink(missing_ok=True)
    t_ours = timed([sys.executable, "-m", "xenlfs", "snapshot", "create", "--root", str(tree),
                    str(ours)], args.repeat, env=env, before=remove_ours)
    t_verify = timed([sys.executable, "-m", "xenlfs", "snapshot", "verify", str(ours)],
                     args.repeat, env=env)
    hint_size, our_size = hint_out.stat().st_size, ours.stat().st_size
    manifest_size = Path(f"{ours}.manifest.jsonl").stat().st_size

    def check(ok: bool) -> str:
        return "met" if ok else "NOT met"
    print(f"""
command                                          wall s     archive MB
hint: tar czpf … --exclude=… (gzip -6)         {t_hint:8.2f}   {hint_size / 1e6:10.1f}
raw:  tar cpf /dev/null (GNU tar skips data)   {t_devnull:8.2f}
raw:  tar cpf - | cat >/dev/null (reads all)   {t_raw:8.2f}
xenlfs snapshot create (zstd -3 -T0, manifest) {t_ours:8.2f}   {our_size / 1e6:10.1f}  \
(+ manifest {manifest_size / 1e6:.1f} MB)
xenlfs snapshot verify (every hash)            {t_verify:8.2f}

target                                   measured   result
>= 6x faster than the hint               {t_hint / t_ours:6.1f}x    {check(t_hint / t_ours >= 6)}
archive no larger than the hint's        {our_size / hint_size:6.2f}x    \
{check(our_size <= hint_size)}
within 1.5x of raw tar (reads all)       {t_ours / t_raw:6.2f}x    {check(t_ours / t_raw <= 1.5)}
within 1.5x of tar cpf /dev/null         {t_ours / t_devnull:6.2f}x    \
{check(t_ours / t_devnull <= 1.5)}
(median of {args.repeat} runs each, the hint's once; warm page cache)""")
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
