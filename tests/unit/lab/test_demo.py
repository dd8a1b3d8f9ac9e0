from __future__ import annotations

from pathlib import Path

import pytest

from xenlfs.kernel.requirements import Role
from xenlfs.lab import demo, images, instance, kernels


def options(memory: int = 256) -> demo.DemoOptions:
    cache = Path("/nonexistent")
    return demo.DemoOptions(cache_dir=cache, mirror="http://deb.debian.org/debian",
                            build=images.BuildOptions(cache_dir=cache),
                            up=instance.UpOptions(), memory_mib=memory)


def report(**view: str) -> demo.DemoReport:
    result = demo.DemoReport()
    result.guest_view = {"hypervisor": "xen", "root": "/dev/root ext4", "root_device": "202:1",
                         "xvda1_device": "202:1", "guest_type": "PV",
                         "memory_kib": str(230 * 1024), **view}
    return result


def test_a_guest_as_the_hint_promises_passes():
    assert demo.check(report(), options()) == []


@pytest.mark.parametrize(
    ("view", "problem"),
    [
        ({"hypervisor": ""}, "/sys/hypervisor/type is ''"),
        ({"root_device": "8:2"}, "root is device '8:2' ('/dev/root ext4'), not xvda1 ('202:1')"),
        ({"root_device": "", "xvda1_device": ""}, "root is device ''"),
        ({"memory_kib": str(1024 * 1024)}, "the guest sees 1024 MiB, configured 256 MiB"),
        ({"memory_kib": str(100 * 1024)}, "the guest sees 100 MiB"),
        ({"guest_type": "HVM"}, "/sys/hypervisor/guest_type is 'HVM', not 'PV'"),
    ],
)
def test_each_wrong_answer_is_reported(view, problem):
    problems = demo.check(report(**view), options())
    assert len(problems) == 1
    assert problem in problems[0]


def test_demo_verb_has_help(xenlfs):
    result = xenlfs("lab", "demo", "--help")
    assert result.returncode == 0
    assert "--guest-memory" in result.stdout


def test_step_4_without_a_cached_kernel_runs_xenlfs_kernel_fix_then_build() -> None:
    tree = Path("/cache/kernel/src/linux-source-6.1-x-domU/linux-source-6.1")
    assert demo.kernel_commands(tree, "pv") == kernels.verbs(tree, Role.DOMU)
    assert [argv[:2] for argv in demo.kernel_commands(tree, "pv")] == [
        ["kernel", "fix"], ["kernel", "build"]]
    for guest_type in ("pvh", "hvm"):  # one kernel for both: XEN_PVH, ACPI, the 8250 console
        fix_argv = demo.kernel_commands(tree, guest_type)[0]
        assert fix_argv[fix_argv.index("--type") + 1] == "pv,pvh,hvm"
        assert "--recommended" in fix_argv
