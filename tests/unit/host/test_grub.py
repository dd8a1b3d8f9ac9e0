from __future__ import annotations

import gzip
import struct

import pytest

from xenlfs.errors import SourceError, UsageError
from xenlfs.host import bootfiles, grub

CFG = """\
set default=0
set timeout=5

menuentry "LFS 12.0" {
\tlinux /vmlinuz-6.1-lfs root=/dev/sda2 ro
}
"""

ENTRY = grub.Entry("xenlfs-xen", "LFS, Xen", "/xen.gz", "/vmlinuz-6.1-xen-dom0",
                   "dom0_mem=1024M", "root=/dev/sda2 ro")


def test_entry_is_the_hints_entry_with_placeholders():
    text = ENTRY.render()
    assert "menuentry 'LFS, Xen' --id xenlfs-xen {" in text
    assert "\tmultiboot /xen.gz placeholder dom0_mem=1024M\n" in text
    assert "\tmodule /vmlinuz-6.1-xen-dom0 placeholder root=/dev/sda2 ro\n" in text


def test_multiboot2_uses_module2():
    text = grub.Entry("xenlfs-xen", "t", "/xen.gz", "/k", multiboot2=True).render()
    assert "\tmultiboot2 /xen.gz placeholder\n" in text and "\tmodule2 /k placeholder\n" in text


def test_add_appends_once_and_is_idempotent():
    once = grub.plan_add(CFG, ENTRY, False)
    assert once.startswith(CFG)
    assert grub.plan_add(once, ENTRY, False) == once
    assert once.count("menuentry 'LFS, Xen'") == 1


def test_changed_arguments_replace_the_entry():
    once = grub.plan_add(CFG, ENTRY, False)
    changed = grub.Entry(**{**ENTRY.__dict__, "xen_args": "dom0_mem=2048M"})
    twice = grub.plan_add(once, changed, False)
    assert "dom0_mem=2048M" in twice and "dom0_mem=1024M" not in twice
    assert twice.count("menuentry 'LFS, Xen'") == 1


def test_default_follows_the_old_default_and_keeps_it_as_fallback():
    new = grub.plan_add(CFG, ENTRY, True)
    lines = new.splitlines()
    at = lines.index('set default="xenlfs-xen"')
    assert lines[at - 2] == "set default=0"
    assert lines[at + 1] == 'set fallback="0"'
    assert grub.plan_add(new, ENTRY, True) == new
    listed = grub.entries(new)
    assert [e.default for e in listed] == [False, True]


def test_remove_restores_the_original():
    assert grub.without(grub.plan_add(CFG, ENTRY, True), "xenlfs-xen") == CFG


def test_remove_keeps_other_xenlfs_entries_and_their_default():
    other = grub.Entry(**{**ENTRY.__dict__, "id": "xenlfs-other", "title": "other"})
    both = grub.plan_add(grub.plan_add(CFG, ENTRY, False), other, True)
    left = grub.without(both, "xenlfs-xen")
    assert "xenlfs-other" in left and 'set default="xenlfs-other"' in left
    assert "--id xenlfs-xen" not in left


def test_list_marks_own_entries_and_reads_ids():
    listed = grub.entries(grub.plan_add(CFG, ENTRY, False))
    assert [(e.title, e.id, e.xenlfs) for e in listed] == [
        ("LFS 12.0", None, False), ("LFS, Xen", "xenlfs-xen", True)]
    assert listed[0].default


def test_ids_must_be_xenlfs_own():
    with pytest.raises(UsageError):
        grub.check_id("linux")


@pytest.mark.parametrize(("text", "line", "col"), [
    ("menuentry 'a' {\n  echo\n", 1, 15),
    ("echo hi\n}\n", 2, 1),
    ("menuentry 'a {\n}\n", 1, 11),
])
def test_balance_reports_where(text, line, col):
    with pytest.raises(SourceError) as e:
        grub.balance(text, "grub.cfg")
    assert (e.value.line, e.value.col) == (line, col)


def test_balance_ignores_braces_in_quotes_comments_and_variables():
    grub.balance("# {\necho '{' \"}\" ${root}\nmenuentry x {\n}\n", "grub.cfg")


def _image(magic_words: bytes, at: int) -> bytes:
    return b"\0" * at + magic_words + b"\0" * 64


def test_multiboot_headers_are_found_only_when_the_checksum_holds():
    flags = 3
    good1 = struct.pack("<III", bootfiles.MULTIBOOT1_MAGIC, flags,
                        (-(bootfiles.MULTIBOOT1_MAGIC + flags)) & 0xFFFFFFFF)
    assert bootfiles.has_multiboot_header(_image(good1, 4096), 1)
    assert not bootfiles.has_multiboot_header(_image(good1, 4098), 1)  # not aligned
    assert not bootfiles.has_multiboot_header(_image(good1, 9000), 1)  # beyond 8 KiB
    bad = struct.pack("<III", bootfiles.MULTIBOOT1_MAGIC, flags, 0)
    assert not bootfiles.has_multiboot_header(_image(bad, 0), 1)
    good2 = struct.pack("<IIII", bootfiles.MULTIBOOT2_MAGIC, 0, 24,
                        (-(bootfiles.MULTIBOOT2_MAGIC + 24)) & 0xFFFFFFFF)
    assert bootfiles.has_multiboot_header(_image(good2, 16384), 2)
    assert not bootfiles.has_multiboot_header(_image(good2, 16384), 1)


def test_gzipped_image_is_read_decompressed(tmp_path):
    good1 = struct.pack("<III", bootfiles.MULTIBOOT1_MAGIC, 0,
                        (-bootfiles.MULTIBOOT1_MAGIC) & 0xFFFFFFFF)
    image = tmp_path / "xen.gz"
    image.write_bytes(gzip.compress(_image(good1, 512)))
    assert bootfiles.has_multiboot_header(bootfiles._head(image, 32768), 1)


MOUNTINFO = """\
27 1 8:2 / / rw,relatime - ext4 /dev/sda2 rw
28 27 8:1 / /boot rw,relatime - ext4 /dev/sda1 rw
29 27 8:3 /images /srv/my\\040boot rw - ext4 /dev/sda3 rw
"""


@pytest.mark.parametrize(("path", "expected"), [
    ("/boot/xen.gz", "/xen.gz"),
    ("/bootx/xen.gz", "/bootx/xen.gz"),
    ("/usr/boot/xen.gz", "/usr/boot/xen.gz"),
    ("/srv/my boot/xen.gz", "/images/xen.gz"),
])
def test_paths_are_relative_to_their_filesystem(path, expected):
    from pathlib import Path

    mounts = bootfiles.parse_mountinfo(MOUNTINFO)
    assert bootfiles.grub_path(Path(path), bootfiles.holding_mount(Path(path), mounts)) == expected


def test_initrd_is_a_second_module():
    text = grub.Entry("xenlfs-xen", "t", "/xen.gz", "/k", initrd="/initrd.img").render()
    assert "\tmodule /k placeholder\n\tmodule /initrd.img\n}" in text
    text = grub.Entry("xenlfs-xen", "t", "/xen.gz", "/k", multiboot2=True,
                      initrd="/initrd.img").render()
    assert "\tmodule2 /initrd.img\n" in text


def test_once_block_follows_the_defaults_and_is_idempotent():
    once = grub.plan_add(CFG, ENTRY, False, once=True)
    lines = once.splitlines()
    assert lines[0] == "set default=0"
    assert lines[1].startswith("### xenlfs begin once")
    assert 'if [ "${next_entry}" ]; then' in lines and "\tsave_env next_entry" in lines
    assert grub.plan_add(once, ENTRY, False, once=True) == once
    # A later --default goes before it, so the one-shot still wins for one boot.
    both = grub.with_default(once, ENTRY.id).splitlines()
    assert both.index('set default="xenlfs-xen"') < both.index('\tset default="${next_entry}"')
    assert [e.default for e in grub.entries(once)] == [True, False]


def test_once_block_goes_with_the_last_entry():
    assert grub.without(grub.plan_add(CFG, ENTRY, False, once=True), "xenlfs-xen") == CFG
    other = grub.Entry(**{**ENTRY.__dict__, "id": "xenlfs-other"})
    both = grub.plan_add(grub.plan_add(CFG, ENTRY, False, once=True), other, False)
    assert "### xenlfs begin once" in grub.without(both, "xenlfs-xen")


def test_command_lines_are_split_as_xen_and_linux_split_theirs():
    assert grub.command_words('  a=1  b="x y"  ""  c\t', "x") == ["a=1", "b=x y", "", "c"]
    with pytest.raises(UsageError, match="never closed"):
        grub.command_words('a="b', "--xen-args")
    with pytest.raises(UsageError, match="control character"):
        grub.command_words("a\nmenuentry x {", "--xen-args")


def test_words_are_literal_for_grubs_lexer():
    assert grub.grub_word("dom0_mem=1G,max:1G") == "dom0_mem=1G,max:1G"
    assert grub.grub_word("a;b") == "'a;b'"
    assert grub.grub_word("it's ${x}") == "'it'\\''s ${x}'"
    entry = grub.Entry("xenlfs-x", "t", "/xen.gz", "/k", xen_args="a } b", kernel_args="$(x)")
    assert "\tmultiboot /xen.gz placeholder a '}' b\n" in entry.render()
    assert "\tmodule /k placeholder '$(x)'\n" in entry.render()
