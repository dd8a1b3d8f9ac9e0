"""Benchmark of `xenlfs guest check` on big configs, against the real xl 4.17 in the same run.

xl's side is `xl -N create FILE` (Debian's xen-utils-4.17) with tests/oracle/xlshim.c
preloaded, as tests/system/xl runs it: it parses the file with Xen's own libxlu and xl_parse.c
and prints libxl's JSON without starting a guest. Both read each file in full and both exit
non-zero where the file is refused, so each side's verdict is printed beside its time.

Configs: 10,000 lines of distinct keys (each unknown to xl, so xenlfs looks for a
misspelling of each), 10,000 lines of a disk list (one spec a line), one list of 100,000
disks, 800 disk specs of 1,000 prefixes each and a list of a million numbers. The target (issue
18): the 10,000-line configs checked in under 1 s; the others show that time stays linear.

    python3 bench/xl_check.py [--repeat N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.oracle.xl import build_shim, find_xl

from bench import common

ROOT = common.ROOT

HEAD = 'name = "bench"\nkernel = "/boot/vmlinuz"\nmemory = 1024\n'
TARGET_S = 1.0


def configs() -> dict[str, str]:
    disks = [f'"phy:/dev/vg/d{i},xvd{letters(i)},w"' for i in range(100_000)]
    return {
        "10,000 distinct keys": HEAD + "".join(f'key_{i} = "value {i}"\n' for i in range(10_000)),
        "10,000 lines of disks": HEAD + "disk = [\n" + ",\n".join(disks[:10_000]) + "\n]\n",
        "100,000 disks": HEAD + "disk = [" + ", ".join(disks) + "]\n",
        "800 disks of 1,000 words": HEAD + "disk = [" + ", ".join(
            '"' + "phy:" * 1000 + f'/dev/x{i},xvd{letters(i)},w"' for i in range(800)) + "]\n",
        "1,000,000 list items": HEAD + "x = [" + "1," * 1_000_000 + "1]\n",
    }


def letters(n: int) -> str:
    """xvd names past z: a..z, aa..zz, aaa... (libxl reads up to 2^20 disks this way)."""
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(ord("a") + r) + out
    return out


def best_of(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, int]:
    times, code = [], 0
    for _ in range(repeat):
        start = time.monotonic()
        code = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                              check=False).returncode
        times.append(time.monotonic() - start)
    return min(times), code


def main() -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()
    xl = find_xl()
    if xl is None:
        sys.exit("xl is not installed: apt-get install xen-utils-4.17")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        shim = build_shim(Path(tmp))
        xl_env = dict(os.environ, LD_PRELOAD=str(shim), LC_ALL="C")
        ours_env = common.environment(XDG_CONFIG_HOME="/nonexistent")
        print(f"{'config':24} {'lines':>7} {'xenlfs':>8} {'xl':>8} {'ratio':>6}  verdicts")
        for label, text in configs().items():
            path = Path(tmp) / "bench.cfg"
            path.write_text(text)
            ours, ours_code = best_of([sys.executable, "-m", "xenlfs", "guest", "check",
                                       str(path)], ours_env, args.repeat)
            theirs, xl_code = best_of([xl, "-N", "create", str(path)], xl_env, args.repeat)
            lines = text.count("\n")
            verdicts = f"xenlfs {'ok' if ours_code == 0 else 'refuses'}, " \
                       f"xl {'ok' if xl_code == 0 else 'refuses'}"
            print(f"{label:24} {lines:>7} {ours:>7.2f}s {theirs:>7.2f}s "
                  f"{ours / theirs:>5.1f}x  {verdicts}")
            if lines >= 10_000 and lines < 100_000 and ours >= TARGET_S:
                print(f"  slower than the target of {TARGET_S:.0f} s")
                failed = True
            if (ours_code == 0) != (xl_code == 0):
                print("  xenlfs and xl disagree on this file")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
