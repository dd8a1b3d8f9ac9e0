from __future__ import annotations

from pathlib import Path

from xenlfs.lab import boot
from xenlfs.lab.boot import Disk, LabSpec


def spec(tmp_path: Path, **kwargs: object) -> LabSpec:
    return LabSpec(xen=Path("/c/xen.elf"), dom0_kernel=Path("/c/vmlinuz"),
                   dom0_initrd=Path("/c/initrd.cpio"), run_dir=tmp_path, **kwargs)  # type: ignore[arg-type]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_qemu_runs_xen_under_tcg_with_dom0_as_multiboot_modules(tmp_path: Path) -> None:
    argv = boot.qemu_argv(spec(tmp_path))
    assert argv[0] == "qemu-system-x86_64"
    assert option(argv, "-accel") == "tcg"
    assert option(argv, "-cpu") == "qemu64,+svm,+npt"  # HAP for PVH and HVM guests
    assert option(argv, "-m") == "3072M"
    assert "-nographic" in argv and "-no-reboot" in argv
    assert option(argv, "-kernel") == "/c/xen.elf"
    assert option(argv, "-append") == ("console=com1 com1=115200 dom0_mem=1024M,max:1024M "
                                       "dom0_max_vcpus=1 noreboot")
    assert option(argv, "-initrd") == ("/c/vmlinuz console=hvc0 quiet loglevel=4 cryptomgr.notests,"
                                       "/c/initrd.cpio")
    assert option(argv, "-serial") == f"file:{tmp_path}/serial.log"
    assert f"path={tmp_path}/agent.sock" in option(argv, "-chardev")
    assert "name=org.xenlfs.agent" in " ".join(argv)
    assert f"local,path={tmp_path}/share,mount_tag=xenlfs" in option(argv, "-virtfs")


def test_commas_inside_values_are_doubled(tmp_path: Path) -> None:
    weird = LabSpec(xen=Path("/c/xen.elf"), dom0_kernel=Path("/a,b/vmlinuz"),
                    dom0_initrd=Path("/c/init,rd"), run_dir=tmp_path,
                    dom0_args=("foo=1,2",))
    assert option(boot.qemu_argv(weird), "-initrd") == (
        "/a,,b/vmlinuz console=hvc0 quiet loglevel=4 cryptomgr.notests foo=1,,2,/c/init,,rd")


def test_memory_and_extra_arguments(tmp_path: Path) -> None:
    argv = boot.qemu_argv(spec(tmp_path, memory=2048 * boot.MiB, dom0_memory=512 * boot.MiB,
                               xen_args=("loglvl=all",)))
    assert option(argv, "-m") == "2048M"
    assert "dom0_mem=512M,max:512M" in option(argv, "-append")
    assert option(argv, "-append").endswith("noreboot loglvl=all")


def test_disks_are_virtio_with_their_serial(tmp_path: Path) -> None:
    argv = boot.qemu_argv(spec(tmp_path, disks=(Disk(Path("/d/guest.img"), "guest"),
                                                Disk(Path("/d/ro.img"), "ro", readonly=True))))
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives == ["file=/d/guest.img,if=none,id=disk0,format=raw,readonly=off",
                      "file=/d/ro.img,if=none,id=disk1,format=raw,readonly=on"]
    assert "virtio-blk-pci,drive=disk0,serial=guest" in argv


def test_boot_watch_notes_each_phase_in_order(tmp_path: Path) -> None:
    watch = boot.BootWatch(spec(tmp_path))
    assert not watch.poll()
    (tmp_path / "serial.log").write_text("(XEN) Xen version 4.17\n(XEN) Freed 668kB init memory\n")
    assert not watch.poll()
    assert [name for name, _ in watch.phases] == ["Xen booted, dom0 kernel starting"]
    assert "dom0 kernel did not reach userspace" in watch.failure_hint()
    with open(tmp_path / "serial.log", "a") as f:
        f.write("xenlfs-dom0: /proc/xen/capabilities: control_d\nxenlfs-dom0: up in 3 s\n"
                "dom0 ready\n")
    assert watch.poll()
    assert len(watch.phases) == len(boot.PHASES)


def test_log_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_text("".join(f"line {i}\r\n" for i in range(100)))
    assert boot.log_tail(log, 3) == "line 97\nline 98\nline 99"
    assert "no serial log" in boot.log_tail(tmp_path / "missing")


def test_format_phases_shows_durations_and_offsets() -> None:
    text = boot.format_phases([("xen", 5.0), ("dom0", 12.5)])
    assert "xen      5.0 s  (at   5.0 s)" in text
    assert "dom0     7.5 s  (at  12.5 s)" in text
