"""Lab timings: cold-cache build, warm boot to dom0 ready, `xl create` to the guest's marker.

    python3 bench/lab.py [--cache-dir DIR] [--boots N] [--skip-cold] [--json]

The cold build uses a fresh temporary cache (downloads, debootstrap, initramfs); the warm
boots use DIR's cache (built first if needed). Target under TCG on 2 cores: warm dom0 ready
<= 20 s. Run as root; numbers depend on how busy the machine is (see the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from xenlfs import settings, ui
from xenlfs.lab import boot, images, instance, tiny

TARGET_READY = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=settings.default_cache_dir())
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
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
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
