"""The dress rehearsal's time: `xenlfs rehearse --root REFERENCE-HOST`, warm (the reference
host already built), from the command's start to the guest's login prompt.

    python3 bench/rehearse.py [--cache-dir DIR] [--runs N] [--against SRC]
                              [--deadline-scale FACTOR] [--json]

Target on 2 cores under TCG: <= 120 s from start to the guest's login. Reported beside it:
the copy (snapshot create of the host, the image, grub-install) and each boot phase's time.
Run as root; numbers depend on how busy the machine is (see the load average), so a change
is measured against the code before it in the same run: `--against SRC` (another checkout's
src/, e.g. `git archive BASE src | tar -x -C /tmp/base`) alternates its runs with this
tree's and reports the ratio of the medians.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from xenlfs import settings, ui
from xenlfs.lab import host

TARGET_START_TO_LOGIN = 120.0
SRC = common.SRC


PR_SET_CHILD_SUBREAPER = 36


def _adopt_orphans() -> None:
    """Become the subreaper of the runs' processes: a QEMU its rehearse did not reap (it
    stops waiting once QEMU is a zombie) comes to this process, which reaps it, so its CPU
    time is counted in RUSAGE_CHILDREN rather than lost to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _reap_orphans() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _cpu_of_children() -> float:
    _reap_orphans()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(cache_dir: Path, root: Path, src: Path = SRC, scale: float = 1.0
            ) -> dict[str, object]:
    cpu = _cpu_of_children()
    start = time.monotonic()
    result = subprocess.run(
        common.xenlfs("--cache-dir", str(cache_dir), "rehearse", "--root", str(root), "--json",
                      "--deadline-scale", str(scale)),
        capture_output=True, text=True, check=False, env=common.environment(src))
    whole = time.monotonic() - start
    cpu = _cpu_of_children() - cpu  # QEMU's and the copy's tools' too: all were waited for
    try:
        data = json.loads(result.stdout)
    except ValueError:
        raise SystemExit(f"rehearse failed (exit {result.returncode}) without a report:\n"
                         f"{result.stderr[-3000:]}") from None
    boot = float(data["seconds"])
    phases = {p["name"]: p["at"] for p in data["phases"]}
    run: dict[str, object] = {
        "load_average": round(os.getloadavg()[0], 1), "start_to_login_s": round(whole, 1),
        "cpu_s": round(cpu, 1), "copy_s": round(whole - boot, 1),
        "boot_to_login_s": round(boot, 1), "phases_at_s": phases}
    if result.returncode != 0:
        # Kept, not fatal: on a loaded machine a phase can pass its deadline (or libxl's
        # hotplug timeout); the run's times up to there still count for the copy and boot.
        failure = data.get("failure") or {}
        run["failed"] = f"{failure.get('phase')}: {failure.get('diagnosis')}"
        ui.stderr.print(f"run failed (exit {result.returncode}): {run['failed']}",
                        markup=False)
    return run


def _median(runs: list[dict[str, object]], key: str) -> float | None:
    """The median over the runs that reached the guest's login."""
    values = [float(str(r[key])) for r in runs if "failed" not in r]
    return statistics.median(values) if values else None


def main() -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--cache-dir", type=Path, default=settings.default_cache_dir())
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--against", type=Path, metavar="SRC",
                        help="another checkout's src/ to compare with, run by turns")
    parser.add_argument("--deadline-scale", type=float, default=1.0, metavar="FACTOR",
                        help="passed to rehearse: each phase's deadline times FACTOR (a "
                        "loaded machine: 2)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ui.setup_logging(debug=False, log_dir=None)
    _adopt_orphans()
    reference = host.reference_host(args.cache_dir)  # warm: built before the clock starts
    runs, baseline = [], []
    for _ in range(args.runs):
        if args.against:
            baseline.append(one_run(args.cache_dir, reference.root, args.against.resolve(),
                                    args.deadline_scale))
        runs.append(one_run(args.cache_dir, reference.root, SRC, args.deadline_scale))
    median, cpu = _median(runs, "start_to_login_s"), _median(runs, "cpu_s")
    results: dict[str, object] = {
        "load_average": os.getloadavg()[0], "cpus": os.cpu_count(), "runs": runs,
        "start_to_login_median_s": median and round(median, 1),
        "cpu_median_s": cpu and round(cpu, 1), "target_start_to_login_s": TARGET_START_TO_LOGIN}
    if baseline:
        before, cpu_before = _median(baseline, "start_to_login_s"), _median(baseline, "cpu_s")
        results.update({"against": str(args.against), "against_runs": baseline,
                        "against_start_to_login_median_s": before and round(before, 1)})
        if median and before and cpu and cpu_before:
            results.update({"ratio_to_against": round(median / before, 3),
                            "cpu_ratio_to_against": round(cpu / cpu_before, 3)})
    common.print_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
