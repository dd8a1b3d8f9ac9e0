"""guest clone without root: the backend each kind of source gets, new MACs, the clone's xl
config and the identity edits planned on fixture trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenlfs.errors import PreconditionError
from xenlfs.guest import clone, edits, identity
from xenlfs.guest.clone import Facts, Lv
from xenlfs.guest.rootfs import GuestRoot
from xenlfs.guest.storage import MiB
from xenlfs.xl import cfg, check

IMAGE = Path("/srv/xen/src.img")
LV = Path("/dev/vg0/src")


def image_on(fs: str, reflink: bool | None = None, allocated: int = 300 * MiB) -> Facts:
    return Facts(IMAGE, "image", 1024 * MiB, allocated, fs=fs, reflink=reflink)


def lv(segtype: str) -> Facts:
    return Facts(LV, "block", 2048 * MiB, 2048 * MiB, lv=Lv("vg0", "src", segtype, "pool0"))


@pytest.mark.parametrize(("facts", "kind"), [
    (lv("thin"), clone.THIN),
    (image_on("xfs", reflink=True), clone.REFLINK),
    (image_on("btrfs", reflink=True), clone.REFLINK),
    (image_on("xfs", reflink=None), clone.REFLINK),  # xfs_info missing: cp decides
])
def test_copy_on_write_where_the_host_can(facts: Facts, kind: str):
    backend = clone.choose(facts, full_copy=False, count=10)
    assert backend.kind == kind and backend.cost == 0


@pytest.mark.parametrize(("facts", "cost", "why"), [
    (image_on("ext4"), 300 * MiB, "ext4, which cannot share extents"),
    (image_on("xfs", reflink=False), 300 * MiB, "XFS made without reflink"),
    (lv("linear"), 2048 * MiB, "linear volume, not a thin one"),
])
def test_a_full_copy_is_refused_with_its_cost_unless_asked(facts: Facts, cost: int, why: str):
    with pytest.raises(PreconditionError) as refused:
        clone.choose(facts, full_copy=False, count=10)
    message = str(refused.value)
    assert why in message and f"full copy of up to {cost // MiB} MiB" in message
    assert f"{cost * 10 // MiB} MiB for 10" in message and "--full-copy" in message
    backend = clone.choose(facts, full_copy=True)
    assert backend.kind == clone.COPY and backend.cost == cost


def test_a_partition_has_no_place_for_a_clone():
    facts = Facts(Path("/dev/sdc12"), "block", 1 << 30, 1 << 30)
    with pytest.raises(PreconditionError, match="not a logical volume or image"):
        clone.choose(facts, full_copy=True)


def test_new_macs_are_xen_unicast_and_never_one_given():
    macs = {identity.new_mac() for _ in range(200)}
    assert len(macs) == 200
    for mac in macs:
        octets = [int(o, 16) for o in mac.split(":")]
        assert octets[:3] == [0x00, 0x16, 0x3E] and octets[3] < 0x80 and not octets[0] & 1
    draws = iter([b"\x01\x02\x03", b"\x81\x02\x03", b"\x04\x05\x06"])
    # the first draw is taken, the second is the same once its top bit is cleared (as libxl)
    assert identity.new_mac({"00:16:3E:01:02:03"}, lambda n: next(draws)) == "00:16:3e:04:05:06"


def test_vif_gets_the_clones_mac_and_address():
    assert clone.vif_with("bridge=xenbr0,mac=00:16:3e:00:00:01", "00:16:3e:00:00:02", None) \
        == "bridge=xenbr0,mac=00:16:3e:00:00:02"
    assert clone.vif_with("", "00:16:3e:00:00:02", "10.0.0.5/24") == \
        "mac=00:16:3e:00:00:02,ip=10.0.0.5"
    assert clone.vif_with("ip=10.0.0.1, bridge=xenbr1", "00:16:3e:00:00:02", "10.0.0.5/24") \
        == " bridge=xenbr1,mac=00:16:3e:00:00:02,ip=10.0.0.5"


SOURCE_CFG = """\
# the web guest
name = "web"
uuid = "5f0c4e1a-6d2b-4c1e-9a57-2d1b2f3c4d5e"
kernel = "/boot/vmlinuz-domU"
memory = 512
disk = ["phy:/dev/vg0/web,xvda1,w", "file:/srv/iso/tools.iso,xvdb,r"]
vif = ["bridge=xenbr0,mac=00:16:3e:00:00:01"] # its NIC
"""


def web_source(tmp_path: Path) -> clone.Source:
    (tmp_path / "web.cfg").write_text(SOURCE_CFG)
    report = check.check_config(cfg.parse(SOURCE_CFG, "web.cfg"), kernel=False)
    assert report.guest is not None
    return clone.Source("web", tmp_path / "web.cfg", SOURCE_CFG,
                        tuple(d.spec for d in report.guest.disks), 0, report.guest.disks[0],
                        tuple(v.spec for v in report.guest.vifs), True)


def test_the_clones_config_keeps_the_sources_but_its_identity(tmp_path: Path):
    source = web_source(tmp_path)
    text = clone.clone_config(source, "web2", "phy:/dev/vg0/web2,xvda1,w",
                              ["bridge=xenbr0,mac=00:16:3e:00:00:02"])
    values = cfg.parse(text, "web2.cfg").plain()
    assert values["name"] == "web2" and values["kernel"] == "/boot/vmlinuz-domU"
    assert values["disk"] == ["phy:/dev/vg0/web2,xvda1,w", "file:/srv/iso/tools.iso,xvdb,r"]
    assert values["vif"] == ["bridge=xenbr0,mac=00:16:3e:00:00:02"]
    assert values["uuid"] != "5f0c4e1a-6d2b-4c1e-9a57-2d1b2f3c4d5e"
    assert text.startswith("# the web guest\n") and "# its NIC" in text


def lfs_clone(root: Path) -> Path:
    (root / "etc/rc.d/init.d").mkdir(parents=True)
    (root / "etc/rc.d/init.d/rc").write_text("#!/bin/sh\n")
    (root / "etc/inittab").write_text("1:2345:respawn:/sbin/agetty --noclear hvc0 9600\n")
    (root / "etc/sysconfig").mkdir()
    (root / "etc/sysconfig/ifconfig.eth0").write_text(
        "ONBOOT=yes\nIFACE=eth0\nSERVICE=ipv4-static\nIP=192.168.1.2\nGATEWAY=192.168.1.1\n"
        "PREFIX=24\n")
    (root / "etc/hostname").write_text("web\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 web\n")
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "var/lib/dbus").mkdir(parents=True)
    os.symlink("/etc/machine-id", root / "var/lib/dbus/machine-id")
    (root / "etc/ssh").mkdir()
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key",
                 "ssh_host_rsa_key.pub", "sshd_config"):
        (root / "etc/ssh" / name).write_text("x\n")
    return root


def test_identity_plan_on_an_lfs_clone(tmp_path: Path):
    opts = identity.Options("web2", "web2", "eth0", edits.Network(ip="10.0.0.5/24"))
    found = identity.plan(GuestRoot(lfs_clone(tmp_path)), opts)
    written = {a.path: a.new for a in found.edits.actions if hasattr(a, "new")}
    assert written["/etc/hostname"] == "web2\n"
    assert "127.0.1.1      web2" in written["/etc/hosts"]
    assert written["/etc/machine-id"] == found.machine_id != "0123456789abcdef0123456789abcdef\n"
    assert "/var/lib/dbus/machine-id" not in written  # a symlink to /etc/machine-id: it follows
    assert "IP=10.0.0.5" in written["/etc/sysconfig/ifconfig.eth0"]
    assert sorted(r.path for r in found.removals) == [
        "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub",
        "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_rsa_key.pub"]
    assert found.key_types == ["rsa", "ed25519"]
    assert any("GATEWAY=192.168.1.1 (the source's) lies outside" in s
               for s in found.edits.skipped)


def test_identity_apply_gives_new_host_keys_inside_the_root(tmp_path: Path):
    root = GuestRoot(lfs_clone(tmp_path))
    found = identity.plan(root, identity.Options("web2", "web2"))
    assert identity.apply(root, found, "web2") == []
    public = (tmp_path / "etc/ssh/ssh_host_ed25519_key.pub").read_text()
    assert public.startswith("ssh-ed25519 ") and public.rstrip().endswith("root@web2")
    assert (tmp_path / "etc/ssh/ssh_host_rsa_key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "etc/ssh/sshd_config").read_text() == "x\n"
    assert "SERVICE=dhcpcd" in (tmp_path / "etc/sysconfig/ifconfig.eth0").read_text()


def test_guests_sharing_a_mac_or_an_address_are_warned(tmp_path: Path):
    base = 'name = "{}"\nkernel = "/k"\nmemory = 64\nvif = ["{}"]\n'
    for name, vif in (("a", "mac=00:16:3e:00:00:01,ip=10.0.0.1"),
                      ("b", "mac=00:16:3E:00:00:01"), ("c", "ip=10.0.0.1"),
                      ("d", "mac=00:16:3e:00:00:04,ip=10.0.0.4")):
        (tmp_path / f"{name}.cfg").write_text(base.format(name, vif))
    found = check.check_guests_in(tmp_path)
    assert [(Path(f.path).name, f.what.split(" is also")[0]) for f in found] == [
        ("b.cfg", "vif mac 00:16:3e:00:00:01"), ("c.cfg", "vif ip 10.0.0.1")]


def test_a_guests_symlinks_never_lead_the_key_removal_to_host_files(tmp_path: Path):
    host = tmp_path / "host-ssh"
    host.mkdir()
    (host / "ssh_host_rsa_key").write_text("the host's own key\n")
    root = lfs_clone(tmp_path / "guest")
    for name in os.listdir(root / "etc/ssh"):
        os.unlink(root / "etc/ssh" / name)
    os.rmdir(root / "etc/ssh")
    os.symlink(host, root / "etc/ssh")  # absolute: inside the guest it leads nowhere
    os.unlink(root / "etc/hostname")
    os.symlink(host / "ssh_host_rsa_key", root / "etc/hostname")
    guest = GuestRoot(root)
    found = identity.plan(guest, identity.Options("web2", "web2"))
    assert found.removals == [] and found.key_types == []
    identity.apply(guest, found, "web2")
    assert os.listdir(host) == ["ssh_host_rsa_key"]
    assert (host / "ssh_host_rsa_key").read_text() == "the host's own key\n"
    assert (root / "etc/hostname").read_text() == "web2\n"  # the link replaced by a file


@pytest.mark.parametrize(("args", "said"), [
    (["src", "a", "b", "--ip", "10.0.0.2/24"], "1 --ip for 2 clones"),
    (["src", "a", "b", "--ip", "10.0.0.2/24", "--ip", "10.0.0.2/24"], "share an address"),
    (["src", "a", "--ip", "10.0.0.300/24"], "--ip 10.0.0.300/24"),
    (["src", "a", "--ip", "10.0.0.3"], "needs a prefix length"),
    (["src", "a", "--gateway", "10.0.0.1"], "--gateway goes with --ip"),
    (["src", "a\nb"], "NAME"),
    (["src", "src"], "cannot be named src"),
    (["src", "a", "a"], "given twice"),
])
def test_bad_arguments_are_usage_errors_before_anything(xenlfs, tmp_path: Path, args, said):
    (tmp_path / "src.cfg").write_text('name = "src"\nkernel = "/k"\nmemory = 64\n'
                                      f'disk = ["format=raw, vdev=xvda1, target={tmp_path}/s"]\n')
    (tmp_path / "s").write_bytes(b"\0" * 4096)
    result = xenlfs("guest", "clone", *args, "--config-dir", str(tmp_path), "--dry-run")
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("facts", "final", "temp"), [
    (image_on("xfs", reflink=True), "/srv/xen/web1.img", "/srv/xen/.xenlfs-clone-tmp-web1.img"),
    (lv("thin"), "/dev/vg0/web1", "/dev/vg0/xenlfs-clone-tmp-web1"),
])
def test_a_clone_is_made_beside_its_final_name_never_under_it(facts: Facts, final: str,
                                                              temp: str):
    assert clone.temp_path(facts, Path(final)) == Path(temp)


def test_json_report_shape(tmp_path: Path):
    source = web_source(tmp_path)
    facts = lv("thin")
    backend = clone.choose(facts, full_copy=False)
    made = [clone.Clone(clone.Request("web2", "web2", "10.0.0.2/24", "10.0.0.1"),
                        Path("/dev/vg0/web2"), "phy:/dev/vg0/web2,xvda1,w",
                        ["00:16:3e:00:00:02"], tmp_path / "web2.cfg", "", ["did edit: x"],
                        "ab" * 16, 1.25),
            clone.Clone(clone.Request("web3", "web3"), Path("/dev/vg0/web3"), "", [],
                        tmp_path / "web3.cfg", "", ["PROBLEM: y"])]
    out = clone.as_json(clone.Report(source, facts, backend, made))
    assert out["backend"] == {"kind": clone.THIN, "why": backend.why, "bytes_each": 0}
    assert out["source"] == {"name": "web", "volume": str(LV), "size": 2048 * MiB}
    assert out["problems"] is True and out["dry_run"] is False
    assert out["clones"] == [
        {"name": "web2", "hostname": "web2", "backend": clone.THIN, "volume": "/dev/vg0/web2",
         "config": str(tmp_path / "web2.cfg"), "macs": ["00:16:3e:00:00:02"],
         "ip": "10.0.0.2/24", "gateway": "10.0.0.1", "machine_id": "ab" * 16,
         "seconds": 1.25, "changes": ["did edit: x"]},
        {"name": "web3", "hostname": "web3", "backend": clone.THIN, "volume": "/dev/vg0/web3",
         "config": str(tmp_path / "web3.cfg"), "macs": [], "ip": "dhcp", "gateway": None,
         "machine_id": None, "seconds": 0.0, "changes": ["PROBLEM: y"]}]
