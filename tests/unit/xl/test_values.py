"""The table of values xl refuses (xl/values.py), rule by rule; the real xl judges the same
inputs in tests/system/xl/test_oracle.py (test_random_values_...)."""

from __future__ import annotations

import pytest

from xenlfs.xl import cfg, check, values


@pytest.mark.parametrize("text, why, mask", [
    ("0-3,^1", None, 0b1101),
    ("all", None, 0xFF),
    (",,", None, 0),
    (" 1", None, 0b10),
    ("1- 3", None, 0b1110),
    ("node:0", None, None),
    ("nodes:all", None, 0xFF),
    ("^all", "cannot combine ^ and all", None),
    ("3-1", "not a CPU range", None),
    ("1-", "not a CPU range", None),
    ("abc", "not a CPU number", None),
    ("-1", "not a CPU number", None),  # strtoul: ULONG_MAX
    ("-2", None, 0),  # strtoul wraps it to 2^64-2, a CPU no host has
    ("node:^1", "not a CPU number", None),
])
def test_cpu_maps_read_as_xl_reads_them(text: str, why: str | None, mask: int | None):
    got_why, got_mask = values.cpu_map(text, 8)
    assert (got_why is None) == (why is None) and (why is None or why in got_why)
    if why is None:
        assert got_mask == mask


@pytest.mark.parametrize("text, mask", [
    ("node:0", 0b0011), ("node:1", 0b1100), ("nodes:0-1,^node:0", 0b1100), ("node:2", 0),
    ("0-7,^node:1", 0b11110011),
])
def test_nodes_are_their_cpus_when_the_host_is_known(text: str, mask: int):
    assert values.cpu_map(text, 8, (0b0011, 0b1100)) == (None, mask)


def errors(text: str) -> list[str]:
    report = check.check_config(cfg.parse('name = "g"\nkernel = "/k"\n' + text, "g.cfg"))
    return [f.what for f in report.findings if f.severity == "error"]


@pytest.mark.parametrize("text, refused", [
    ('cpus = ["1", "abc"]\n', False),  # no vcpus counted: xl reads no item
    ('vcpus = 2\ncpus = ["1", "abc"]\n', True),
    ('vcpus = 1\ncpus = "4096"\n', True),
    ('vcpus = 1\ncpus = "4095"\n', False),
    ('vcpus = 1\ncpus_soft = "4096"\n', False),  # only hard affinity must keep a CPU
    ('tsc_mode = "NATIVE"\n', False),
    ('tsc_mode = "2"\n', False),
    ('tsc_mode = 4\n', True),
    ('tsc_mode += "x"\n', True),
    ('type = "hvm"\ntimer_mode = "x"\n', True),
    ('timer_mode = 1\n', True),  # not for PV guests
    ('vga = "std"\n', False),  # PV: xl does not read vga
    ('type = "hvm"\nvga = "std"\n', True),
    ('type = "hvm"\nvga = "Cirrus"\n', True),  # xl's own strcmp: case counts
    ('device_model_version = "QEMU-XEN"\n', True),
    ('device_model_args = "-x"\n', True),
    ('device_model_args_hvm = ["-x"]\n', False),
    ('type = "hvm"\ngfx_passthru = 7\n', False),
])
def test_values_are_judged_as_xl_judges_them(text: str, refused: bool):
    assert bool(errors(text)) == refused, errors(text)


def test_every_refusal_says_where_why_and_how_to_fix():
    report = check.check_config(cfg.parse('name = "g"\nkernel = "/k"\ntype = "hvm"\n'
                                          'bios = "uefi"\n', "g.cfg"))
    (finding,) = [f for f in report.findings if f.severity == "error"]
    assert str(finding) == ("g.cfg:4:8: error: unknown bios 'uefi' — bios is one of: rombios, "
                            "seabios, ovmf")


def test_xl_ignores_hvmloader_as_an_hvm_kernel():
    report = check.check_config(cfg.parse('name = "g"\ntype = "hvm"\n'
                                          'kernel = "/usr/lib/xen-4.17/boot/hvmloader"\n'))
    assert report.ok and report.guest is not None and report.guest.kernel is None
    assert any("xl ignores kernel" in f.what for f in report.findings)


@pytest.mark.parametrize("text, taken", [
    ("strategy=host", True), ("strategy=host,policy=relaxed", False),
    ("strategy=host,policy=bogus", True), ("strategy=none", False), ("strategy=host,", False),
    ("bogus=1", False), ("", False),
])
def test_rdm_is_taken_as_xl_takes_it(text: str, taken: bool):
    # checked against the JSON xl -N prints for type = "hvm": a taken rdm sets the strategy
    assert values.rdm_taken(text) == taken


def test_an_rdm_xl_ignores_is_a_warning_not_an_error():
    report = check.check_config(cfg.parse('name = "g"\ntype = "hvm"\n'
                                          'rdm = "strategy=host,policy=relaxed"\n', "g.cfg"))
    assert report.ok
    (warning,) = [f for f in report.findings if "rdm" in f.what]
    assert warning.severity == "warning" and "xl 4.17 ignores" in warning.what
