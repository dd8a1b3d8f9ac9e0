"""`xenlfs guest check/config` tried as a new user would, through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.xl.test_kernel_image import PV_NOTES, elf64

HINT = ('kernel = "/boot/vmlinuz-4.9.40-xen-domU"\nmemory = 1024\nname = "xenguest1"\n'
        "vif = [ '' ]\ndisk = ['phy:/dev/sdc12,xvda1,w']\nroot = \"/dev/xvda1 ro\"\n")


def test_crlf_line_endings_are_explained(xenlfs, tmp_path: Path):
    cfg = tmp_path / "xenguest1.cfg"
    cfg.write_bytes(HINT.replace("\n", "\r\n").encode())
    result = xenlfs("guest", "check", str(cfg))
    assert result.returncode == 1
    assert f"{cfg}:1:41: error: carriage return" in result.stdout
    assert f"sed -i 's/\\r$//' {cfg}" in result.stdout


def test_a_misspelt_key_gets_a_did_you_mean(xenlfs, tmp_path: Path):
    cfg = tmp_path / "g.cfg"
    cfg.write_text(HINT.replace("memory", "memroy"))
    result = xenlfs("guest", "check", str(cfg))
    assert result.returncode == 0  # xl accepts it: a warning, not an error
    assert f"{cfg}:2:1: warning: unknown key 'memroy': xl ignores it — did you mean 'memory'?" \
        in result.stdout


def test_target_not_last_says_how_to_reorder(xenlfs, tmp_path: Path):
    cfg = tmp_path / "g.cfg"
    cfg.write_text(HINT.replace("phy:/dev/sdc12,xvda1,w", "target=/dev/sdc12,xvda1,w"))
    result = xenlfs("guest", "check", str(cfg))
    assert result.returncode == 1
    assert f"{cfg}:5:10: error: disk 'target=/dev/sdc12,xvda1,w': no vdev: target= must be " \
        "the last parameter" in result.stdout
    assert "'vdev=xvda1, access=w, target=/dev/sdc12'" in result.stdout


def test_check_json_reports_what_xl_makes_of_the_file(xenlfs, tmp_path: Path):
    cfg = tmp_path / "g.cfg"
    cfg.write_text(HINT)
    result = xenlfs("guest", "check", "--json", str(cfg))
    assert result.returncode == 0, result.stderr
    [report] = json.loads(result.stdout)
    guest = report["guest"]
    assert (guest["name"], guest["memory"], guest["cmdline"]) == ("xenguest1", 1024,
                                                                  "root=/dev/xvda1 ro")
    assert guest["disks"][0]["target"] == "/dev/sdc12" and guest["disks"][0]["vdev"] == "xvda1"


def test_two_guests_writing_one_disk_are_warned(xenlfs, tmp_path: Path):
    a, b = tmp_path / "a.cfg", tmp_path / "b.cfg"
    a.write_text(HINT)
    b.write_text(HINT.replace("xenguest1", "xenguest2"))
    result = xenlfs("guest", "check", str(a), str(b))
    assert "disk /dev/sdc12 is also written by" in result.stdout


def test_config_writes_a_file_that_checks_and_set_edits_it(xenlfs, tmp_path: Path):
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(elf64(PV_NOTES))  # guest check looks inside: a PV kernel
    out = tmp_path / "xen" / "g1.cfg"
    result = xenlfs("guest", "config", "g1", "--kernel", str(kernel), "--memory", "512",
                    "--disk", f"file:{kernel},xvda1,w", "--root", "/dev/xvda1 ro",
                    "--config-dir", str(tmp_path / "xen"))
    assert result.returncode == 0, result.stderr
    assert out.is_file() and "warning" not in result.stderr
    text = out.read_text().replace("memory = 512", "memory = 512  # MiB")
    out.write_text(text)
    result = xenlfs("guest", "config", str(out), "--set", "memory=2048", "--set", "vcpus=2")
    assert result.returncode == 0, result.stderr
    assert "memory = 2048  # MiB" in out.read_text() and "vcpus = 2\n" in out.read_text()
    assert list(out.parent.glob("g1.cfg.*.xenlfs-bak"))
    checked = json.loads(xenlfs("guest", "check", "--json", str(out)).stdout)
    assert checked[0]["ok"] and checked[0]["guest"]["memory"] == 2048


def test_config_refuses_to_replace_without_force(xenlfs, tmp_path: Path):
    out = tmp_path / "g.cfg"
    out.write_text("# mine\n")
    result = xenlfs("guest", "config", "g", "-o", str(out), "--kernel", "/k", "--memory", "1",
                    "--disk", "phy:/dev/x,xvda,w")
    assert result.returncode == 2 and "exists" in result.stderr
    assert out.read_text() == "# mine\n"


def test_lifecycle_outside_dom0_says_so(xenlfs):
    result = xenlfs("guest", "list")
    if Path("/proc/xen/capabilities").exists():
        return  # running in a Xen domain: covered by the lab tier
    assert result.returncode == 3
    assert "not running in Xen's dom0" in result.stderr and "Traceback" not in result.stderr


def test_binary_or_latin1_files_are_errors_and_left_alone(xenlfs, tmp_path: Path):
    for content in (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)),
                    HINT.replace("xenguest1", "invit\xe9").encode("latin-1")):
        cfg = tmp_path / "g.cfg"
        cfg.write_bytes(content)
        checks = [["guest", "check", str(cfg)]] if content.startswith(b"\x7fELF") else []
        for args in [["guest", "config", str(cfg), "--set", "memory=2048"], *checks]:
            result = xenlfs(*args)
            assert result.returncode == 1, result.stderr
            said = result.stdout if args[1] == "check" else result.stderr  # check's report
            assert f"{cfg}:" in said and "internal error" not in result.stderr
        assert cfg.read_bytes() == content and not list(tmp_path.glob("*.xenlfs-bak"))


def test_set_through_a_symlinked_config_edits_the_file_it_names(xenlfs, tmp_path: Path):
    real = tmp_path / "store/g.cfg"
    real.parent.mkdir()
    real.write_text(HINT)
    real.chmod(0o600)
    link = tmp_path / "g.cfg"
    link.symlink_to(real)
    result = xenlfs("guest", "config", str(link), "--set", "memory=2048")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and "memory = 2048" in real.read_text()
    assert real.stat().st_mode & 0o7777 == 0o600


def test_set_refuses_a_value_xl_refuses(xenlfs, tmp_path: Path):
    cfg = tmp_path / "g.cfg"
    cfg.write_text(HINT)
    result = xenlfs("guest", "config", str(cfg), "--set", "cpus=abc")
    assert result.returncode != 0 and cfg.read_text() == HINT
    assert "cpus = \"abc\": 'abc' is not a CPU number or range" in result.stderr
    assert "not writing" in result.stderr
    assert xenlfs("guest", "config", str(cfg), "--set", "cpus=0-3,^1").returncode == 0
    assert 'cpus = "0-3,^1"' in cfg.read_text()


def test_one_rule_set_same_text_is_no_change_other_text_needs_force(xenlfs, tmp_path: Path):
    out = tmp_path / "g.cfg"
    argv = ["guest", "config", "g", "-o", str(out), "--kernel", "/k", "--memory", "64",
            "--disk", "phy:/dev/x,xvda,w"]
    assert xenlfs(*argv).returncode == 0
    written = out.read_text()
    again = xenlfs(*argv)  # the same command again converges: nothing written, no backup
    assert again.returncode == 0 and "already as needed" in again.stderr
    assert out.read_text() == written and not list(tmp_path.glob("g.cfg.*.xenlfs-bak"))
    other = [*argv[:-4], "--memory", "128", *argv[-2:]]
    for extra in ([], ["--dry-run"]):  # a dry run refuses what the run would refuse
        refused = xenlfs(*other, *extra)
        assert refused.returncode == 2 and "--force" in refused.stderr
    shown = xenlfs(*other, "--force", "--dry-run")
    assert shown.returncode == 0 and "-memory = 64" in shown.stdout
    assert "+memory = 128" in shown.stdout and out.read_text() == written
    assert xenlfs(*other, "--force").returncode == 0
    assert "memory = 128" in out.read_text()
    assert len(list(tmp_path.glob("g.cfg.*.xenlfs-bak"))) == 1
