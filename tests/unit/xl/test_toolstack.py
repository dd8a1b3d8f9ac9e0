"""The lifecycle's pure parts: reading xl's and xentop's output, finding a guest's file,
refusing outside dom0, and what create would run."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlfs.errors import PreconditionError
from xenlfs.xl import cfg, check, toolstack

# The layout xl 4.17 prints (tools/xl/xl_list.c): name padded to 40 columns, then numbers.
XL_LIST = """\
Name                                        ID   Mem VCPUs\tState\tTime(s)
Domain-0                                     0  1024     2     r-----      12.3
my guest                                     3   128     1     -b----       0.4
"""


def test_xl_list_is_parsed_including_names_with_spaces():
    domains = toolstack.parse_list(XL_LIST)
    assert [(d.name, d.id, d.memory, d.vcpus, d.state) for d in domains] == [
        ("Domain-0", 0, 1024, 2, "r-----"), ("my guest", 3, 128, 1, "-b----")]


XENTOP = "\n".join([
    '      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS NETT'
    'X(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID',
    '  Domain-0 -----r         15    0.0    1048576   33.3   no limit       n/a     2    0     '
    '   0        0    0        0        0        0          0          0    0',
    ' xenguest1 --b---          1    0.0     131072    4.2     132096       4.2     1    1     '
    '   0        0    1        0       10        2        300         16    0',
])


def test_a_xentop_sample_is_parsed():
    rows = {row["NAME"]: row for row in toolstack.parse_top(XENTOP)}
    assert rows["Domain-0"]["MAXMEM(k)"] == "no_limit" and rows["Domain-0"]["VCPUS"] == "2"
    assert rows["xenguest1"]["MEM(k)"] == "131072" and rows["xenguest1"]["SSID"] == "0"


def test_outside_dom0_the_error_says_so(tmp_path: Path):
    caps = tmp_path / "capabilities"
    with pytest.raises(PreconditionError, match=r"not running in Xen's dom0.*does not exist"):
        toolstack.require_dom0(caps)
    caps.write_text("\n")  # what a domU sees
    with pytest.raises(PreconditionError, match="this is a guest"):
        toolstack.require_dom0(caps)
    caps.write_text("control_d\n")
    toolstack.require_dom0(caps)


def test_a_guest_is_found_by_name_or_file(tmp_path: Path):
    assert toolstack.config_path("xenguest1", tmp_path) == tmp_path / "xenguest1.cfg"
    assert toolstack.config_path("./g.cfg", tmp_path) == Path("./g.cfg")
    assert toolstack.config_path("/srv/g", tmp_path) == Path("/srv/g")


def test_create_dry_run_checks_then_prints_the_command(xenlfs, tmp_path: Path):
    cfg = tmp_path / "g.cfg"
    cfg.write_text('name = "g"\nkernel = "/k"\n')
    result = xenlfs("guest", "create", str(cfg), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"would run: xl create {cfg}" in result.stderr
    cfg.write_text('name = "g"\nkernel = "/k"\ndisk = ["/dev/sdc12,xvda1,w"]\n')
    result = xenlfs("guest", "create", str(cfg), "--dry-run")
    assert result.returncode == 2 and "unknown format 'xvda1'" in result.stderr


def test_a_missing_bridge_is_warned(tmp_path: Path):
    (tmp_path / "xenbr0" / "bridge").mkdir(parents=True)
    cfg = tmp_path / "g.cfg"
    cfg.write_text('name = "g"\nkernel = "/k"\nvif = ["", "bridge=br9"]\n')
    report = check.check_file(cfg)
    check.check_bridges(report, tmp_path)
    missing = [f.what for f in report.findings if "bridge" in f.what]
    assert missing == ["vif 'bridge=br9': bridge br9 does not exist on this host: the guest "
                       "will not start"]


# The layout of `xl info -n` (tools/xl/xl_info.c): keys padded to a column, then ': value'.
XL_INFO = """\
host                   : lab
nr_cpus                : 2
max_cpu_id             : 9
nr_nodes               : 1
cores_per_socket       : 2
xen_major              : 4
cpu_topology           :
cpu:    core    socket     node
  0:       0        0        0
  1:       1        0        0
numa_info              :
node:    memsize    memfree    distances
   0:     2048       1024      10
"""


def test_xl_info_gives_what_xl_asks_while_reading_a_config():
    # libxl sizes CPU maps in bytes: CPUs 0-9 take two, so 16 CPU numbers fit
    assert toolstack.parse_host(XL_INFO) == check.Host(cpus=16, online_cpus=2, nodes=1,
                                                       node_cpus=(0b11,))
    assert toolstack.parse_host("") == check.Host()


def test_the_host_decides_cpus_and_vnuma_when_it_is_known():
    text = ('name = "g"\nkernel = "/k"\nvcpus = 1\ncpus = "16"\n'
            'vnuma = [["pnode=1", "size=128", "vcpus=0"]]\n')
    config = cfg.parse(text, "g.cfg")
    assert check.check_config(config).ok  # unknown host: a CPU 16 and a node 1 may exist
    host = toolstack.parse_host(XL_INFO)
    errors = [f.what for f in check.check_config(config, host).findings
              if f.severity == "error"]
    assert len(errors) == 2
    assert "leaves vcpu 0 no CPU of the 16 CPUs of this host" in errors[0]
    assert "pnode 1: the host has 1 NUMA node(s)" in errors[1]
