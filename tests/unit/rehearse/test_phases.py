"""The diagnosis table against serial-log lines as Xen, GRUB, the kernel, Debian's initramfs
and LFS's bootscripts print them (copied from rehearsals on this machine)."""

from __future__ import annotations

from xenlfs.rehearse import phases

CONTEXT = {"boot_separate": "yes", "disk": "/dev/vda", "bus": "virtio",
           "root_device": "/dev/vda2", "root_uuid": "5a0f-uuid"}
GRUB_OK = "  Booting `LFS, Xen'\nxenlfs-rehearse: GRUB runs the entry LFS, Xen\n"
XEN_OK = GRUB_OK + "(XEN) Xen version 4.17.6-pre (Debian 4.17.5+72-g01140da4e8-1)\n" \
    "(XEN) Freed 664kB init memory\n"


def watch(bridges=("xenbr0",), guests=("guest1",)) -> phases.Watch:
    return phases.Watch(phases.table(list(bridges), list(guests)), CONTEXT)


def test_clean_strips_lfs_colours_and_cursor_moves():
    raw = "      Starting xenstored...\x1b[0G\x1b[1;32m  *  \x1b[0;39m \x1b[155G" \
          "\x1b[1;34m[\x1b[1;32m  OK  \x1b[1;34m]\x1b[0;39m\r\r\n"
    assert phases.clean(raw) == "      Starting xenstored...  *   [  OK  ]\n"


def test_grub_path_on_a_separate_boot_names_the_path_grub_sees():
    w = watch()
    text = GRUB_OK + "error: file `/boot/xen-4.17-amd64.gz' not found.\n" \
        "error: you need to load the kernel first.\n"
    d = w.update(text, 2.0)
    assert d is not None and d.phase == "xen"
    assert "/boot is a separate partition" in d.diagnosis and "'/xen-4.17-amd64.gz'" in \
        d.diagnosis
    assert d.fix.startswith("xenlfs grub add --xen /boot/xen-4.17-amd64.gz")
    assert any("not found" in line for line in d.lines)
    assert w.passed == {"grub": 2.0}


def test_grub_without_a_video_card_boots_on():
    # The rehearsal's machine has no video card: GRUB says so right before Xen's banner.
    w = watch()
    assert w.update(GRUB_OK + "error: Can't get controller info..\n", 2.0) is None
    text = GRUB_OK + "error: Can't get controller info..\nerror: out of memory.\n"
    d = w.update(text, 3.0)
    assert d is not None and d.phase == "xen" and d.diagnosis == "GRUB: out of memory."


def test_later_proof_implies_quiet_phases_and_times_are_kept():
    w = watch()
    assert w.update(XEN_OK, 20.0) is None
    assert w.update(XEN_OK + "INIT: version 3.06 booting\n", 90.0) is None
    assert w.passed["init"] == 90.0 and w.passed["root"] is None  # quiet kernel: implied
    assert w.next_phase().key == "bootscripts"  # type: ignore[union-attr]


def test_the_line_that_proved_a_phase_names_the_root_device():
    root = {p.key: p for p in phases.base_phases()}["root"]
    text = XEN_OK + "[   24.06] EXT4-fs (nvme0n1p2): mounted filesystem with ordered data " \
        "mode.\nINIT: version 3.06 booting\n"
    assert phases.proof_line(root, text) == "[   24.06] EXT4-fs (nvme0n1p2): mounted " \
        "filesystem with ordered data mode."
    assert phases.proof_line(root, XEN_OK) is None


def test_root_device_the_kernel_cannot_see():
    text = XEN_OK + "Booting paravirtualized kernel on Xen\nGave up waiting for root file " \
        "system device.  Common problems:\nALERT!  /dev/sda2 does not exist.  Dropping to a " \
        "shell!\n"
    d = watch().update(text, 80.0)
    assert d is not None and d.phase == "root"
    assert "root=/dev/sda2" in d.diagnosis and "UUID=5a0f-uuid" in d.fix


def test_specific_row_wins_over_a_bootscript_fail_on_the_same_line():
    text = XEN_OK + "INIT: version 3.06 booting\n      Starting xenstored... ***** [ FAIL ]\n"
    w = watch()
    d = w.update(text, 100.0)
    assert d is not None and d.phase == "xencommons" and "xenlfs build xen" in d.fix
    assert w.bootscripts == [("Starting xenstored", "FAIL")]
    other = watch().update(XEN_OK + "INIT: version 3.06 booting\n      Mounting remaining file "
                           "systems... ***** [ FAIL ]\n", 100.0)
    assert other is not None and other.phase == "bootscripts"
    assert other.diagnosis == "a bootscript failed: Mounting remaining file systems"


def test_probe_reports_become_phases():
    probe = "\n".join(f"xenlfs-rehearse: {line}" for line in (
        "probe starts", "xenstored: running", "control_d: yes", "xl list: ok",
        "bridge xenbr0: ok", "guest guest1: created",
        "guest guest1: xl create failed: libxl: error: libxl_device.c:1234: Disk "
        "vdev=xvda1 failed to stat: /var/lib/xen/images/nope.img: No such file or directory"))
    w = watch()
    d = w.update(XEN_OK + "INIT: version 3.06 booting\n" + probe + "\n", 150.0)
    assert d is not None and d.phase == "guest:guest1"
    assert "/var/lib/xen/images/nope.img" in d.diagnosis
    assert d.fix.startswith("xenlfs guest prepare guest1 --target /var/lib/xen/images/nope.img")
    assert [k for k in w.passed] == ["grub", "xen", "dom0_load", "dom0_kernel", "root", "init",
                                     "bootscripts", "xencommons", "control_d", "xl",
                                     "bridge:xenbr0"]


def test_xencommons_not_installed():
    text = XEN_OK + "INIT: version 3.06 booting\nxenlfs-rehearse: probe starts\n" \
        "xenlfs-rehearse: xenstored: not running (xencommons is not installed)\n"
    d = watch().update(text, 150.0)
    assert d is not None and d.phase == "xencommons" and d.fix == "xenlfs service install"


def test_each_phase_has_its_own_deadline():
    w = watch()
    assert w.update(XEN_OK, 30.0) is None
    assert w.timed_out(XEN_OK, 30.0 + 59.0) is None
    d = w.timed_out(XEN_OK, 30.0 + 61.0)
    assert d is not None and d.phase == "dom0_kernel"
    assert "kernel check --role dom0" in d.fix and "60 s" in d.diagnosis


def test_a_fail_pushed_below_its_message_still_names_it():
    text = XEN_OK + "INIT: version 3.06 booting\n      Mounting virtual file systems: /run " \
        "/dev/shmmount: /dev/shm: can't find in /etc/fstab.\n /sys/fs/cgroupmount: " \
        "/sys/fs/cgroup: can't find in /etc/fstab.\n      ***** [ FAIL ]\n"
    d = watch().update(text, 100.0)
    assert d is not None and d.phase == "bootscripts"
    assert d.diagnosis.startswith("a bootscript failed: Mounting virtual file systems: /run")


PROBED = XEN_OK + "INIT: version 3.06 booting\n" + "\n".join(
    f"xenlfs-rehearse: {line}" for line in ("probe starts", "xenstored: running",
                                           "control_d: yes", "xl list: ok",
                                           "bridge xenbr0: ok")) + "\n"


def test_the_probe_names_a_missing_disk_before_xl_fails():
    text = PROBED + "xenlfs-rehearse: guest guest1: disk missing: /var/lib/xen/images/x.img\n" \
        "xenlfs-rehearse: guest guest1: xl create failed: libxl: error: libxl_device.c:1337:" \
        "device_hotplug_child_death_cb: script: /etc/xen/scripts/block failed; error " \
        "detected.\n"
    d = watch().update(text, 200.0)
    assert d is not None and d.phase == "guest:guest1"
    assert d.diagnosis.endswith("does not exist: /var/lib/xen/images/x.img")


def test_a_file_backed_disk_without_the_loop_module():
    text = PROBED + "xenlfs-rehearse: guest guest1: the loop module is not loaded\n" \
        "xenlfs-rehearse: guest guest1: xl create failed: libxl: error: libxl_device.c:1337:" \
        "device_hotplug_child_death_cb: script: /etc/xen/scripts/block failed; error " \
        "detected.\n"
    d = watch().update(text, 200.0)
    assert d is not None and "loop module" in d.diagnosis
    assert "/etc/sysconfig/modules" in d.fix


def test_an_initramfs_still_waiting_for_root_names_root_and_the_fix():
    w = phases.Watch(phases.table([], []), {**CONTEXT, "root_arg": "/dev/sda2"})
    text = XEN_OK + "Booting paravirtualized kernel on Xen\nBegin: Waiting for root file " \
        "system ... Begin: Running /scripts/local-block ... done.\n"
    assert w.update(text, 40.0) is None
    d = w.timed_out(text, 40.0 + 151.0)
    assert d is not None and d.phase == "root"
    assert "root=/dev/sda2" in d.diagnosis and "/dev/vda2" in d.diagnosis
    assert d.fix.startswith("xenlfs grub add --root UUID=5a0f-uuid")


def test_bootscript_messages_stay_whole_when_the_kernel_prints_into_them():
    # LFS prints a message in pieces; the kernel's (and Xen's) lines land in between
    # (seen in rehearsals on this machine and in CI).
    text = phases.clean(
        "      Mounting virtual file systems: \x1b[1;36m/run \x1b[1;36m/dev/shm"
        "[  113.012480] random: crng init done\r\r\n"
        "(XEN) d0v1: spurious line\n"
        " \x1b[1;36m/sys/fs/cgroup      \x1b[0G\x1b[1;32m  *  \x1b[0;39m \x1b[72G"
        "\x1b[1;34m[\x1b[1;32m  OK  \x1b[1;34m]\x1b[0;39m\r\r\n"
        "      Loading modules:[  182.437628] hrtimer: interrupt took 512436021 ns\r\r\n"
        "[  183.661623] loop: module loaded\r\r\n"
        " loop      \x1b[0G\x1b[1;32m  *  \x1b[0;39m \x1b[72G"
        "\x1b[1;34m[\x1b[1;32m  OK  \x1b[1;34m]\x1b[0;39m\r\r\n")
    assert phases.bootscript_results(text) == [
        ("Mounting virtual file systems: /run /dev/shm /sys/fs/cgroup", "OK"),
        ("Loading modules: loop", "OK")]
