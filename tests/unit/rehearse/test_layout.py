from __future__ import annotations

import pytest

from xenlfs.errors import PreconditionError, SourceError
from xenlfs.rehearse import image, layout

UUIDS = """\
# / and /boot by UUID, as many hosts name them
UUID=5a0f3c1e-7b2d-4c8e-9f10-2b3c4d5e6f70 /     ext4 defaults 1 1
UUID=0b1e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b /boot ext4 defaults 1 2
proc  /proc proc nosuid 0 0
tmpfs /run  tmpfs defaults 0 0
"""


def test_uuids_keep_their_ids_and_boot_is_first():
    lay = layout.layout_from_fstab(UUIDS, "fstab")
    assert lay.bus == "virtio" and lay.disk == "vda"
    boot, root = lay.volumes
    assert (boot.mountpoint, boot.number, boot.uuid) == ("/boot", 1,
                                                         "0b1e2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b")
    assert (root.mountpoint, root.number, root.fstype) == ("/", 2, "ext4")
    assert lay.device(root) == "/dev/vda2" and lay.boot_separate
    assert all(v.content for v in lay.volumes)


def test_device_names_give_numbers_and_the_bus():
    text = "/dev/sda3 / ext4 defaults 1 1\n/dev/sda1 /boot ext2 defaults 1 2\n" \
           "/dev/sda2 swap swap pri=1 0 0\nLABEL=home /home ext4 defaults 0 2\n"
    lay = layout.layout_from_fstab(text, "fstab")
    assert lay.bus == "ahci"
    numbers = {v.mountpoint: (v.number, v.content) for v in lay.volumes}
    assert numbers == {"/boot": (1, True), "swap": (2, False), "/": (3, True),
                       "/home": (4, False)}
    assert lay.volume("/home").label == "home"  # type: ignore[union-attr]
    nvme = layout.layout_from_fstab("/dev/nvme0n1p2 / ext4 defaults 1 1\n", "fstab")
    assert nvme.bus == "nvme" and nvme.device(nvme.volumes[0]) == "/dev/nvme0n1p2"


def test_what_cannot_be_rehearsed_is_said():
    with pytest.raises(PreconditionError, match="root filesystem"):
        layout.layout_from_fstab("proc /proc proc defaults 0 0\n", "fstab")
    with pytest.raises(PreconditionError, match="btrfs"):
        layout.layout_from_fstab("/dev/vda2 / btrfs defaults 0 0\n", "fstab")
    with pytest.raises(PreconditionError, match="several disks"):
        layout.layout_from_fstab("/dev/vda2 / ext4 d 0 0\n/dev/vdb1 /boot ext4 d 0 0\n", "f")
    lay = layout.layout_from_fstab("/dev/vda1 / ext4 d 0 0\nserver:/x /srv nfs d 0 0\n"
                                   "/dev/mapper/vg-data /data ext4 d 0 0\n", "fstab")
    assert [v.mountpoint for v in lay.volumes] == ["/"]
    assert len(lay.not_rehearsed) == 1 and "fstab:3" in lay.not_rehearsed[0]


def test_bad_fstab_line_is_located():
    with pytest.raises(SourceError, match="fstab:2:1"):
        layout.layout_from_fstab("/dev/vda1 / ext4 d 0 0\n/dev/vda2 /boot\n", "fstab")


def test_running_host_facts_win_over_guesses():
    facts = {"/": layout.Facts("sdb", 5 - 2, "ext4", "1111", "root")}
    lay = layout.layout_from_fstab("UUID=1111 / ext4 d 0 0\n", "fstab", facts=facts)
    assert lay.bus == "ahci" and lay.volumes[0].number == 3 and lay.volumes[0].label == "root"


def test_logical_partitions_keep_their_numbers_in_an_extended_one():
    text = "/dev/sda1 /boot ext2 d 0 2\n/dev/sda6 / ext4 d 1 1\nUUID=abcd swap swap d 0 0\n"
    lay = layout.layout_from_fstab(text, "fstab")
    assert {v.mountpoint: v.number for v in lay.volumes} == {"/boot": 1, "swap": 2, "/": 6}
    assert lay.logical and lay.extended == 4 and lay.device(lay.volumes[-1]) == "/dev/sda6"
    sized = layout.with_sizes(lay, {"/": 10 * layout.MiB, "/boot": layout.MiB})
    table = {p.number: p for p in image.partitions(sized)}
    assert sorted(table) == [1, 2, 4, 5, 6]
    extended, placeholder, root = table[4], table[5], table[6]
    assert extended.kind == "5" and placeholder.kind == "83" and placeholder.size == image.EBR
    # Each logical partition after its EBR's MiB, all of them inside the extended one.
    assert placeholder.start == extended.start + image.EBR
    assert root.start == placeholder.start + placeholder.size + image.EBR
    assert root.start + root.size == extended.start + extended.size
    assert image.image_size(sized) == root.start + root.size + layout.MiB
    # A volume fstab names by UUID takes a primary number, and leaves one for the extended.
    lay = layout.layout_from_fstab("/dev/vda5 / ext4 d 1 1\nUUID=1 /boot ext4 d 0 0\n"
                                   "UUID=2 /home ext4 d 0 0\nUUID=3 /srv ext4 d 0 0\n"
                                   "UUID=4 /var ext4 d 0 0\n", "fstab")
    assert sorted(v.number for v in lay.volumes) == [1, 2, 3, 5, 6] and lay.extended == 4


def test_no_primary_number_left_for_the_extended_partition_says_what_to_do():
    text = "".join(f"/dev/vda{n} /m{n} ext4 d 0 0\n" for n in range(1, 5)) + \
        "/dev/vda5 / ext4 d 1 1\n"
    with pytest.raises(PreconditionError, match="extended partition") as raised:
        layout.layout_from_fstab(text, "fstab")
    assert "/dev/vda5" in raised.value.message and "--root" in (raised.value.hint or "")
