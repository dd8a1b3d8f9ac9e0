"""Our reading of xl configs against Xen's own: the real xl 4.17 (`xl -N create`) decides.

Per corpus file: the same accept/reject, the label in its name is right, and for accepted
files the same values for the keys xenlfs models. Then random files, compared the same way."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.oracle.xl import Oracle
from xenlfs.xl import check, keys

CORPUS = Path(__file__).parents[2] / "unit" / "xl" / "corpus"
FILES = sorted(CORPUS.glob("*.cfg"))


def expected_from_libxl(config: dict[str, Any]) -> dict[str, Any]:
    b = config["b_info"]
    return {
        "name": config["c_info"]["name"],
        "type": config["c_info"]["type"],
        "kernel": b.get("kernel"),
        "ramdisk": b.get("ramdisk"),
        "cmdline": b.get("cmdline"),
        "memory_kb": b.get("target_memkb"),
        "maxmem_kb": b.get("max_memkb"),
        "vcpus": len(b["avail_vcpus"]) if "avail_vcpus" in b else None,
        "maxvcpus": b.get("max_vcpus"),
        "disks": [{"target": d.get("pdev_path"), "vdev": d.get("vdev"),
                   "format": d.get("format"), "readwrite": bool(d.get("readwrite")),
                   "is_cdrom": bool(d.get("is_cdrom")), "removable": bool(d.get("removable")),
                   "script": d.get("script"), "backend": d.get("backend_domname")}
                  for d in config.get("disks", [])],
        "vifs": [{k: n[k] for k in ("mac", "bridge", "ip", "script", "ifname", "model",
                                    "nictype", "rate_bytes_per_interval",
                                    "rate_interval_usecs", "mtu", "devid") if k in n}
                 for n in config.get("nics", [])],
    }


def ours(guest: check.Guest) -> dict[str, Any]:
    # libxl keeps KiB in 64-bit unsigned integers: a negative memory wraps around
    memory_kb = guest.memory * 1024 % (1 << 64) if guest.memory is not None else None
    maxmem_kb = guest.maxmem * 1024 % (1 << 64) if guest.maxmem is not None else memory_kb
    return {
        "name": guest.name, "type": guest.type, "kernel": guest.kernel,
        "ramdisk": guest.ramdisk, "cmdline": guest.cmdline, "memory_kb": memory_kb,
        "maxmem_kb": maxmem_kb, "vcpus": guest.vcpus or None,
        "maxvcpus": guest.maxvcpus or guest.vcpus or None,
        "disks": [{"target": d.target, "vdev": d.vdev, "format": d.format,
                   "readwrite": d.readwrite, "is_cdrom": d.is_cdrom, "removable": d.removable,
                   "script": d.script, "backend": d.backend} for d in guest.disks],
        # xl numbers NICs in order unless devid= says otherwise
        "vifs": [{"devid": i, **{k: v for k, v in n.fields.items() if k != "trusted"}}
                 for i, n in enumerate(guest.vifs)],
    }


# xlshim.c's host: one CPU and one NUMA node; libxl sizes CPU maps in whole bytes, so CPUs
# 0-7 exist for xl
SHIM_HOST = check.Host(cpus=8, online_cpus=1, nodes=1, node_cpus=(0b1,))


def compare(oracle: Oracle, path: Path) -> tuple[bool, check.Report]:
    verdict = oracle.create_dry_run(path)
    # `xl -N` never loads the kernel: what only its domain builder refuses is not compared
    report = check.check_file(path, SHIM_HOST, kernel=False)
    errors = [str(f) for f in report.findings if f.severity == "error"]
    assert report.ok == verdict.accepted, f"xl said:\n{verdict.stderr}\nwe said: {errors}"
    if verdict.accepted:
        assert verdict.config is not None and report.guest is not None
        assert ours(report.guest) == expected_from_libxl(verdict.config)
    return verdict.accepted, report


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_corpus_file_is_read_as_xl_reads_it(oracle: Oracle, path: Path):
    accepted, _ = compare(oracle, path)
    assert accepted == path.name.startswith("ok-"), "the file's ok-/bad- label is wrong"


# Real-world files: the examples Xen installs (Debian: xen-utils-common, /etc/xen).
EXAMPLES = sorted(Path("/etc/xen").glob("xlexample.*"))


@pytest.mark.skipif(not EXAMPLES, reason="Xen's example configs are not installed in /etc/xen")
@pytest.mark.parametrize("path", EXAMPLES, ids=[f.name for f in EXAMPLES])
def test_xens_own_examples_are_read_as_xl_reads_them(oracle: Oracle, path: Path):
    accepted, report = compare(oracle, path)
    assert accepted and report.guest is not None and report.guest.disks


BASE = 'name = "g"\nkernel = "/k"\n'
PIECES = ["extra", "root", "a.b", "memory", "maxmem", "vcpus", " = ", " += ", "=", " ", "\t",
          "\n", "\r", ";", ",", "[", "]", "# c\n", "#", "'", '"', "\\", "\\n", "\\x41", "\\12",
          "\\0 1", "\\9", "0x1f", "012", "12", "1g", '"s"', "'t'", "(", "-", ":", "A", "é"]
DISKS = ["phy:", "file:", "tap:", "aio:", "qcow2:", "raw:", "nbd:", "foo:", "/dev/sdc12", "/i",
         "xvda1", "hdc:cdrom", "hdc:disk", "raw", "qcow2", "w", "r", "ro", "rw", "", ",", ", ",
         "=", "target=", "vdev=", "format=", "access=", "devtype=", "devtype=cdrom", "cdrom",
         "acess=r", "script=", "backendtype=phy", "backend=d0", "discard", "x:y", " ", "\t", "\n",
         "colo-port=0", "specification=virtio", "vdev=xvdb", "d1p2", "hda:disk,"]
VIFS = ["mac=", "00:16:3e:00:00:01", "01:02:03:04:05:06", "zz", "bridge=", "xenbr0", "rate=",
        "10Mb/s", "5MB/s", "010Kb/s", "@20ms", "@1s", "@5us", "@0", "devid=", "mtu=", "1500",
        "type=", "vif", "ioemu", ",", " ", "=", "ip=10.0.0.2", "vifname=v", "model=e1000",
        "script=vif-bridge", "trusted", "brige=x"]

joined = st.lists(st.sampled_from(PIECES), max_size=25).map("".join)
spec = st.lists(st.sampled_from(DISKS), max_size=8).map("".join)
nic = st.lists(st.sampled_from(VIFS), max_size=8).map("".join)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@settings(max_examples=int(os.environ.get("XL_FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(body=joined, disks=st.lists(spec, max_size=3), vifs=st.lists(nic, max_size=2))
def test_random_files_are_read_as_xl_reads_them(oracle: Oracle, tmp_path_factory, body, disks,
                                                vifs):
    path = tmp_path_factory.mktemp("fuzz") / "g.cfg"
    text = (BASE + f"disk = [{', '.join(map(quoted, disks))}]\n"
            f"vif = [{', '.join(map(quoted, vifs))}]\n" + body)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    compare(oracle, path)


KEYS = ["type", "builder", "memory", "maxmem", "vcpus", "maxvcpus", "on_crash", "on_reboot",
        "uuid", "kernel", "ramdisk", "root", "extra", "cmdline", "bootloader", "name",
        "max_grant_frames", "disk", "vif", "memroy"]
ATOMS = ["hvm", "pv", "pvh", "p", "", "h", "generic", "destroy", "restart", "x", "1", "0", "-1",
         "0x10", "010", "08", " 12", "12 ", "abc", "/k", "00000000-0000-0000-0000-00000000000a",
         "phy:/dev/sdc12,xvda1,w", "bridge=xenbr0"]


def value_text(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.sampled_from(["atom", "atom", "number", "list"] if depth < 2 else ["atom"]))
    if kind == "number":
        return draw(st.sampled_from(["1", "0", "128", "0x10", "010", "08", "4"]))
    if kind == "atom":
        return quoted(draw(st.sampled_from(ATOMS)))
    items = draw(st.lists(st.deferred(lambda: st.just(0)), max_size=3))
    return "[" + ", ".join(value_text(draw, depth + 1) for _ in items) + "]"


@st.composite
def settings_files(draw: st.DrawFn) -> str:
    lines = ['name = "g"', 'kernel = "/k"']
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from([" = ", " = ", " += "]))
        lines.append(draw(st.sampled_from(KEYS)) + op + value_text(draw))
    return "\n".join(lines) + "\n"


@settings(max_examples=int(os.environ.get("XL_FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(text=settings_files())
def test_random_settings_are_judged_as_xl_judges_them(oracle: Oracle, tmp_path_factory, text):
    path = tmp_path_factory.mktemp("keys") / "g.cfg"
    path.write_text(text)
    compare(oracle, path)


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("[\n", "]"), ("[1,", ",]"),
                                              ('["a",\n', "\n]"), ("[[],", "]")])
def test_xls_nesting_limit_is_ours(oracle: Oracle, tmp_path: Path, opening: str, closing: str):
    """libxlu's parser gives up at a stack of 10,000 entries: each form of nesting reaches
    that at its own depth, which we find by bisection on the real xl and compare."""
    def verdicts(depth: int) -> tuple[bool, bool]:
        path = tmp_path / f"deep{depth}.cfg"
        path.write_text(BASE + "x = " + opening * depth + '"v"' + closing * depth + "\n")
        return oracle.create_dry_run(path).accepted, check.check_file(path, kernel=False).ok

    low, high = 1, 6000  # xl accepts `low` levels and refuses `high`
    assert verdicts(low) == (True, True) and verdicts(high) == (False, False)
    while high - low > 1:
        middle = (low + high) // 2
        xl_accepts, we_accept = verdicts(middle)
        assert xl_accepts == we_accept, f"{middle} levels of {opening!r}"
        low, high = (middle, high) if xl_accepts else (low, middle)
    assert verdicts(low) == (True, True) and verdicts(high) == (False, False)


# Values: each key of xl.cfg(5) 4.17 that xl judges by its value, with values xl accepts and
# values it refuses, mixed into files with each guest type. Fixed seed; more with the slow run.
VALUES: dict[str, list[str]] = {
    "cpus": ['"2"', '"0-3"', '"0-3,^1"', '"all"', '"^all"', '"nodes:all"', '"3-1"', '"abc"',
             '"node:0"', '"node:1"', '"nodes:0-1,^node:0"', '"0-3,^node:0"', '"node:x"',
             '"nodes:0,^0"', '["node:0", "node:1"]', '"^node:0,node:0"',
             '"1-"', '"-1"', '"-2"', '" 1"', '"+1"', '""', '",,"', '"1000000"', '"1- 3"',
             '"18446744073709551615"', '"18446744073709551614"', '"1,x"', '"node:^1"',
             '["1", "abc"]', '["abc"]', '[]', '[["x"], "abc"]', '["0", "1", "z"]', "7",
             '"0x1"'],
    "cpus_soft": ['"1"', '"x"', '["1", "2-1"]', '"all"'],
    "vcpus": ["1", "2", "3"],
    "maxvcpus": ["2", "4"],
    "tsc_mode": ['"default"', '"native"', '"NATIVE"', '"always_emulate"', '"native_paravirt"',
                 '"bogus"', "0", "3", "4", '"-1"', '"2"', '""'],
    "timer_mode": ['"delay_for_missed_ticks"', '"no_missed_ticks_pending"', '"unknown"',
                   '"x"', "0", "3", "4", '"One_Missed_Tick_Pending"'],
    "altp2m": ['"disabled"', '"mixed"', '"external"', '"limited"', '"x"', "0", "3", "4"],
    "passthrough": ['"default"', '"disabled"', '"enabled"', '"sync_pt"', '"share_pt"', '"x"',
                    '"Enabled"'],
    "vuart": ['"sbsa_uart"', '"unknown"', '"pl011"'],
    "gic_version": ['"v2"', '"v3"', '"default"', '"V3"', '"v4"'],
    "tee": ['"none"', '"optee"', '"OPTEE"', '"tz"'],
    "device_model_version": ['"qemu-xen"', '"qemu-xen-traditional"', '"QEMU-XEN"', '"qemu"'],
    "bios": ['"seabios"', '"rombios"', '"ovmf"', '"uefi"', '"SeaBIOS"', '"unknown"'],
    "hdtype": ['"ide"', '"ahci"', '"AHCI"', '"scsi"'],
    "vga": ['"stdvga"', '"cirrus"', '"none"', '"qxl"', '"std"', '"Cirrus"'],
    "gfx_passthru": ["0", "1", '"igd"', '"default"', '"IGD"', '"nvidia"', '"1"'],
    "vendor_device": ['"none"', '"xenserver"', '"XenServer"', '"x"'],
    "device_model_args": ['"-x"', '["-x"]', "[]"],
    "device_model_args_pv": ['"-x"', '["-x", "y"]'],
    "device_model_args_hvm": ['"-x"', '["-x"]'],
    "on_crash": ['"destroy"', '"restart"', '"rename-restart"', '"preserve"', '"Destroy"',
                 '"coredump-destroy"', '"soft-reset"', '"x"'],
    "kernel": ['"/usr/lib/xen-4.17/boot/hvmloader"', '"hvmloader"', '"/k"'],
    "pci": ['["0000:00:1f.0"]', '["00:1f.0"]', '["0:0:1f.7@1f"]', '["00:1f.8"]', '["00:20.0"]',
            '["10000:00:00.0"]', '["00:1f.*"]', '["name=gpu"]', '["00:1f.0,name=gpu"]',
            '["00:1f.0,permissive=1,rdm_policy=relaxed"]', '["00:1f.0,rdm_policy=lax"]',
            '["00:1f.0,foo=1"]', '["bdf=00:1f.0,seize=1"]', '["00:1f.0@20"]', '["00:1f.0,"]',
            '["00:1f.0x"]', '["00:1f"]', '[""]', '["0x:0.0"]', '["00:1f.0,,"]',
            '["00:1f.0", ["x"], "junk"]', '["00:1f.0,vslot=ff"]', '["00: 1f. 0"]'],
    "iomem": ['["fe000,1"]', '["fe000,1@20"]', '["fe000,1@"]', '["fe000"]', '["fe000, 1"]',
              '["fe000,1 "]', '["0x,0x"]', '["g,1"]', '["1,2@3@4"]', '[["1,1"]]', '[]'],
    "ioports": ['["3f8"]', '["3f8-3ff"]', '["3f8-"]', '["3f8-3ffz"]', '["3f8z"]', '["x"]',
                '["ffffffff"]', '["fffffffe"]', '["-1"]', '["3ff-3f8"]', '[["1"]]', '["0x10"]'],
    "irqs": ['["7"]', '["7x"]', '["0x7"]', '[" 7"]', '["4294967295"]', '["4294967294"]',
             '[["7"]]', '["-1"]', '[""]'],
    "p9": ['["tag=t,path=/p,security_model=none"]', '["tag=t,path=/p"]',
           '["tag=t,path=/p,security_model=none,backend=d"]', '["tag=t,path=/p,mode=x"]',
           '["tag=t,path=/p,security_model=none", "tag=u"]', '["nokey"]', '[""]'],
    "vtpm": ['["backend=vtpmmgr"]', '["backend=d,uuid=00000000-0000-0000-0000-00000000000a"]',
             '["backend=d,uuid=xyz"]', '["uuid=00000000-0000-0000-0000-00000000000a"]',
             '["backend=d,x=1"]', '[""]', '["backend"]'],
    "channel": ['["name=org.qemu,connection=pty"]', '["connection=socket,path=/s"]',
                '["connection=socket"]', '["connection=tcp"]', '["name=x"]', '[""]',
                '["connection = pty"]', '["connection=pty,bogus=1"]', '["connection="]',
                '["connection=pty,name"]'],
    "usbctrl": ['["type=qusb,version=2,ports=4"]', '["type=usb"]', '["version=3"]',
                '["speed=1"]', '["type=PV"]', '[""]'],
    "usbdev": ['["hostbus=1,hostaddr=2"]', '["type=hostdev"]', '["type=x"]', '["bus=1"]'],
    "vkb": ['["backend-type=linux"]', '["backend-type=qemu,width=100"]', '["width=1"]',
            '["backend-type=unknown"]', '["backend-type=x"]', '["backend-type=linux,z=1"]',
            '["backend-type=linux,feature-multi-touch=1"]',
            '["backend-type=linux,feature-multi-touch=1,multi-touch-width=5"]',
            '["backend-type=linux,multi-touch-num-contacts=2"]'],
    "vdispl": ['["connectors=id0:1920x1080"]', '["connectors=id0:1920x1080;id1:800x600"]',
               '["backend=d"]', '["connectors=id0:big"]', '["connectors=id0:10x"]',
               '["connectors=id0:1920x1080,be-alloc=1"]', '["connectors=id0:1x1,x=1"]'],
    "vsnd": ['[["card, short-name=c", "pcm, name=p", "stream, type=P"]]',
             '[["card", "pcm", "stream, type=X"]]', '[["stream, unique-id=s, type=c"]]',
             '[["card, sample-formats=s16_le;u8"]]', '[["card, sample-formats=s17"]]',
             '[["card, bogus=1"]]', '[["speaker"]]', '["card"]',
             '[["pcm, sample-rates=8000;44100, channels-max=2"]]'],
    "mca_caps": ['["lmce"]', '["lmce", "x"]', '"lmce"', '[]'],
    "vnuma": ['[["pnode=0", "size=512", "vcpus=0"]]', '[["pnode=1", "size=512", "vcpus=0"]]',
              '[["pnode=0", "size=512", "vcpus=0-1"]]', '[["size=256", "vcpus=0"], '
              '["size=256", "vcpus=1"]]', '[["size=512"]]', '["size=512"]', '[["size"]]',
              '[["size=x"]]', '[["size=5x"]]', '[["bogus=1", "size=1", "vcpus=0"]]',
              '[["vcpus=x"]]', '[["vcpus=3-1"]]', '[["vdistances=10,x", "vcpus=0"]]',
              '"x"', "[]", "[[]]", '[["vcpus=,"]]', '[[" size = 128 ", "vcpus=0"]]',
              '[["size=1024", "vcpus=0", ["x"]]]'],
    "viridian": ["1", "0", '"x"', '["all"]', '["defaults", "!hcall_ipi"]', '["BASE"]',
                 '["bogus"]', '["!bogus"]', '["!all"]', '[["x"]]', "[]", '["!"]'],
    "mmio_hole": ["256", "255", "3840", "3841", "1024", '"-1"', '"x"', "0"],
    "ms_vm_genid": ['"generate"', '"none"', '"Generate"', '"x"'],
    "rdm": ['"strategy=host"', '"strategy=host,policy=relaxed"', '"strategy=none"', '"x"'],
    "vnclisten": ['"127.0.0.1:1"', '"127.0.0.1"'],
    "vncdisplay": ["1", "0", '"x"'],
    "maxmem": ["512", "1024"],
    "memory": ["512", "256"],
}
TYPES = ['type = "pv"\n', 'type = "pvh"\n', 'type = "hvm"\n', ""]
# Every other key xl reads, with values of each kind: xl ignores the wrong kind, with a warning.
BY_KIND = {"number": ["1", "0", '"x"', '"-1"', "[]", '"0x10"', '"2"'],
           "string": ['"x"', "1", "[]", '""'],
           "list": ['["x"]', '"x"', "[]", '[""]', '[["x"]]'],
           "any": ['"x"', "1", '["x"]', "[]"]}
OTHER_KEYS = sorted(keys.KNOWN - set(VALUES) - {"name", "type", "builder", "disk", "vif"})


def kind_of(key: str) -> str:
    return ("list" if key in keys.LIST else "number" if key in keys.NUMBER
            else "string" if key in keys.STRING else "any")


@st.composite
def value_files(draw: st.DrawFn) -> str:
    names = draw(st.lists(st.sampled_from(sorted(VALUES)) | st.sampled_from(OTHER_KEYS),
                          min_size=1, max_size=5, unique=True))
    lines = [f"{key} = {draw(st.sampled_from(VALUES.get(key) or BY_KIND[kind_of(key)]))}\n"
             for key in names]
    return draw(st.sampled_from(TYPES)) + 'name = "g"\nkernel = "/k"\n' + "".join(lines)


def budget(default: int) -> int:
    return int(os.environ.get("XL_VALUE_EXAMPLES", str(default)))


@settings(max_examples=budget(400), deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(text=value_files())
def test_random_values_are_judged_as_xl_judges_them(oracle: Oracle, tmp_path_factory, text):
    path = tmp_path_factory.mktemp("values") / "g.cfg"
    path.write_text(text)
    compare(oracle, path)


@pytest.mark.slow
@settings(max_examples=budget(3000), deadline=None, suppress_health_check=list(HealthCheck))
@given(text=value_files())
def test_many_random_values_are_judged_as_xl_judges_them(oracle: Oracle, tmp_path_factory,
                                                         text):
    path = tmp_path_factory.mktemp("values") / "g.cfg"
    path.write_text(text)
    compare(oracle, path)


# Disk specs whose one word xl's scanner reads past its buffer (disk.SCAN_LIMIT): from where
# xl dies, found by bisection on the real xl, we refuse too. The one shape where xl survives
# a byte longer (a run of blanks) is the heap's luck, and is left out.
LONG_SPECS = {
    "prefix": lambda n: "phy:/" + "a" * n + ",xvda,w",
    "positional": lambda n: "/" + "a" * n + ",raw,xvda,w",
    "target": lambda n: "vdev=xvda,target=/" + "a" * n,
    "utf-8": lambda n: "phy:/" + "é" * n + ",xvda,w",
    "prefixes": lambda n: "phy:" * n + "/x,xvda,w",
    "script at the end": lambda n: "/dev/x,raw,xvda,w,script=" + "a" * n,
    "backend first": lambda n: "backend=" + "a" * n + ",phy:/dev/x,xvda,w",
}


@pytest.mark.parametrize("shape", sorted(LONG_SPECS))
def test_xls_disk_scanner_limit_is_ours(oracle: Oracle, tmp_path: Path, shape: str):
    def verdicts(n: int) -> tuple[bool, bool]:
        path = tmp_path / f"long{n}.cfg"
        path.write_text(BASE + f'disk = ["{LONG_SPECS[shape](n)}"]\n')
        return oracle.create_dry_run(path).accepted, check.check_file(path, kernel=False).ok

    low, high = 1, 20_000
    assert verdicts(low) == (True, True) and verdicts(high) == (False, False)
    while high - low > 1:
        middle = (low + high) // 2
        xl_accepts, we_accept = verdicts(middle)
        assert xl_accepts == we_accept, f"{shape}: {middle}"
        low, high = (middle, high) if xl_accepts else (low, middle)
