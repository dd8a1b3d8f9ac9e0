"""`guest check` on a guest's type: the kernel file must carry the note its type boots by;
keys only HVM guests read are flagged in PV and PVH configs."""

from __future__ import annotations

import gzip
from pathlib import Path

from tests.unit.xl.test_kernel_image import PV_NOTES, PVH_NOTES, bzimage, elf64
from xenlfs.xl import cfg, check


def config(tmp_path: Path, kind: str, kernel: Path, extra: str = "") -> Path:
    path = tmp_path / "g.cfg"
    path.write_text(f'name = "g"\ntype = "{kind}"\nkernel = "{kernel}"\nmemory = 256\n'
                    f'disk = [ "phy:/dev/null,xvda1,w" ]\n{extra}')
    return path


def test_a_pv_only_kernel_in_a_pvh_config_is_an_error(xenlfs, tmp_path: Path) -> None:
    kernel = tmp_path / "vmlinuz-pv"
    kernel.write_bytes(bzimage(gzip.compress(elf64(PV_NOTES))))
    path = config(tmp_path, "pvh", kernel)
    result = xenlfs("guest", "check", str(path))
    assert result.returncode == 1
    assert (f"{path}:3:10: error: kernel {kernel} cannot boot as PVH: it has no PVH entry "
            "point (ELF note XEN_ELFNOTE_PHYS32_ENTRY; Linux's CONFIG_XEN_PVH) — build it with "
            "PVH support: xenlfs kernel fix --role domU --type pvh, or boot it as PV: "
            'type = "pv"') in " ".join(result.stdout.split())
    report = check.check_file(path)
    (finding,) = [f for f in report.findings if f.severity == "error"]
    assert (finding.line, finding.col) == (3, 10)
    assert "XEN_ELFNOTE_PHYS32_ENTRY" in finding.what
    assert finding.fix is not None
    assert "xenlfs kernel fix --role domU --type pvh" in finding.fix


def test_the_same_kernel_as_pv_and_a_pvh_kernel_as_pvh_pass(tmp_path: Path) -> None:
    pv = tmp_path / "vmlinux-pv"
    pv.write_bytes(elf64(PV_NOTES))
    assert check.check_file(config(tmp_path, "pv", pv)).findings == []
    pvh = tmp_path / "vmlinux-pvh"
    pvh.write_bytes(elf64(PVH_NOTES))
    assert check.check_file(config(tmp_path, "pvh", pvh)).findings == []


def test_a_kernel_without_xen_notes_as_pv(tmp_path: Path) -> None:
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(elf64(b""))
    (finding,) = check.check_file(config(tmp_path, "pv", kernel)).findings
    assert finding.severity == "error" and "XEN_ELFNOTE_ENTRY" in finding.what
    assert finding.fix == "build it with PV support: xenlfs kernel fix --role domU --type pv"


def test_a_file_that_is_no_kernel_is_a_warning_with_the_reason(tmp_path: Path) -> None:
    kernel = tmp_path / "notes.txt"
    kernel.write_text("hello\n" * 100)
    (finding,) = check.check_file(config(tmp_path, "pvh", kernel)).findings
    assert finding.severity == "warning" and "neither an ELF kernel nor a bzImage" in finding.what


def test_hvm_only_keys_in_a_pv_config_are_warned_about(xenlfs, tmp_path: Path) -> None:
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(elf64(PV_NOTES))
    path = config(tmp_path, "pv", kernel, 'serial = "pty"\nvnc = 1\nboot = "c"\n')
    result = xenlfs("guest", "check", str(path))
    assert result.returncode == 0  # xl ignores them: warnings
    for line, key in ((6, "serial"), (7, "vnc"), (8, "boot")):
        assert (f"{path}:{line}:1: warning: {key} is read only for HVM guests: xl ignores it "
                "for this pv guest") in result.stdout
    hvm = check.check_config(cfg.parse(path.read_text().replace('"pv"', '"hvm"'), str(path)))
    assert hvm.findings == []


def test_guest_config_by_type(xenlfs, tmp_path: Path) -> None:
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(elf64(PVH_NOTES))
    out = tmp_path / "hvm.cfg"
    result = xenlfs("guest", "config", "h", "--type", "hvm", "--memory", "256", "--disk",
                    "phy:/dev/null,xvda,w", "-o", str(out))
    assert result.returncode == 0, result.stderr
    values = cfg.parse(out.read_text(), str(out)).plain()
    assert values["type"] == "hvm" and values["serial"] == "pty" and "kernel" not in values
    assert values["vga"] == "none"  # a serial console: no emulated screen
    out = tmp_path / "pvh.cfg"
    result = xenlfs("guest", "config", "p", "--type", "pvh", "--memory", "256", "--kernel",
                    str(kernel), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert cfg.parse(out.read_text(), str(out)).plain()["type"] == "pvh"
    result = xenlfs("guest", "config", "q", "--type", "pvh", "--memory", "256",
                    "-o", str(tmp_path / "q.cfg"))
    assert result.returncode == 2 and "needs --kernel" in result.stderr


def test_guest_config_takes_kernel_and_memory_from_the_config_file(xenlfs, tmp_path: Path) -> None:
    # [guest] kernel and memory mean the same for guest config as for guest prepare.
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(elf64(PVH_NOTES))
    settings = tmp_path / "xenlfs.toml"
    settings.write_text(f'[guest]\nkernel = "{kernel}"\nmemory = 384\n')
    out = tmp_path / "g.cfg"
    result = xenlfs("--config", str(settings), "guest", "config", "g", "--type", "pvh",
                    "-o", str(out))
    assert result.returncode == 0, result.stderr
    values = cfg.parse(out.read_text(), str(out)).plain()
    assert (values["kernel"], values["memory"]) == (str(kernel), "384")
    out.unlink()
    result = xenlfs("--config", str(settings), "guest", "config", "g", "--type", "pvh",
                    "--memory", "256", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert cfg.parse(out.read_text(), str(out)).plain()["memory"] == "256"  # the flag wins
