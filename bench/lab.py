"""Lab timings: cold-cache build, warm boot to dom0 ready, `xl create` to the guest's marker.

    python3 bench/lab.py [--cache-dir DIR] [--boots N] [--skip-cold] [--json]
    python3 bench/lab.py --demo [--demo-cold] [--cache-dir DIR]

--demo times the whole `xenlfs lab demo` scenario: warm (DIR's cache, filled first if
needed) and, with --demo-cold, cold (a fresh empty cache: debootstrap twice, the domU kernel
build, the lab build). Targets: warm QEMU start to guest login <= 60 s, whole <= 120 s.

The cold build uses a fresh temporary cache (downloads, debootstrap, initramfs); the warm
boots use DIR's cache (built first if needed). Target under TCG on 2 cores: warm dom0 ready
<= 20 s. Run as root; numbers depend on how busy the machine is (see the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import common
from xenlfs import settings, ui
from xenlfs.lab import boot, images, instance, tiny

TARGET_READY = 20.0
TARGET_DEMO_LOGIN = 60.0
TARGET_DEMO_WHOLE = 120.0


def demo_run(cache_dir: Path) -> dict[str, float]:
    """One `xenlfs lab demo --json`: its wall time, and QEMU start to the guest's login."""
    start = time.monotonic()
    result = subprocess.run(
        common.xenlfs("--cache-dir", str(cache_dir), "lab", "demo", "--json",
                      "--instance", f"bench-demo-{os.getpid()}"),
        capture_output=True, text=True, check=False, env=common.environment())
    whole = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"lab demo failed:\n{result.stderr[-3000:]}")
    steps = json.loads(result.stdout)["steps"]
    names = list(steps)
    first = next(i for i, n in enumerate(names) if n.startswith("lab: "))
    last = next(i for i, n in enumerate(names) if n.startswith("wait for the guest's login"))
    return {"whole_s": round(whole, 1),
            "qemu_start_to_login_s": round(sum(steps[n] for n in names[first:last + 1]), 1)}


def demo_main(args: argparse.Namespace) -> int:
    results: dict[str, object] = {"load_average": os.getloadavg()[0]}
    if args.demo_cold:
        with tempfile.TemporaryDirectory(prefix="xenlfs-bench-demo-") as cold:
            results["cold"] = demo_run(Path(cold))
    demo_run(args.cache_dir)  # fills the cache if needed
    results["warm"] = demo_run(args.cache_dir)
    results["targets"] = {"qemu_start_to_login_s": TARGET_DEMO_LOGIN,
                          "whole_s": TARGET_DEMO_WHOLE}
    common.print_results(results, as_json=True)
    return 0


def main() -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--cache-dir", type=Path, default=settings.default_cache_dir())
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--demo", action="store_true", help="time the lab demo scenario")
    parser.add_argument("--demo-cold", action="store_true", help="with --demo: a cold run too")
    args = parser.parse_args()
    if args.demo:
        return demo_main(args)
    ui.setup_logging(debug=False, log_dir=None)
    results: dict[str, object] = {"load_average": os.getloadavg()[0]}

    if not args.skip_cold:
        with tempfile.TemporaryDirectory(prefix="xenlfs-bench-") as cold:
            start = time.monotonic()
            times = ui.StepTimes()
            images.build(images.BuildOptions(cache_dir=Path(cold)), times)
            results["cold_build_s"] = round(time.monotonic() - start, 1)
            results["cold_build_steps"] = {name: round(s, 1) for name, s in times.steps}

    artefacts = images.build(images.BuildOptions(cache_dir=args.cache_dir))
    results["dom0_initrd_mib"] = artefacts.dom0_initrd.stat().st_size >> 20
    ready: list[float] = []
    for n in range(args.boots):
        options = instance.UpOptions(name=f"bench-{os.getpid()}")
        with instance.one_shot(artefacts, options) as lab:
            ready.append(lab.phases[-1][1])
            print(f"boot {n + 1}: dom0 ready after {ready[-1]:.1f} s\n"
                  f"{boot.format_phases(lab.phases)}", file=sys.stderr)
            if n == args.boots - 1:
                tiny.boot(lab, args.cache_dir, name="bench-warmup")
                _, seconds = tiny.boot(lab, args.cache_dir, name="bench")
                results["create_to_guest_marker_s"] = round(seconds, 1)
    results["warm_dom0_ready_s"] = [round(r, 1) for r in ready]
    results["warm_dom0_ready_median_s"] = round(statistics.median(ready), 1)
    results["target_dom0_ready_s"] = TARGET_READY
    common.print_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
