"""The writer: new files and --set edits always read back as the values meant."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenlfs.errors import UsageError
from xenlfs.xl import cfg, write

HINT = write.GuestConfig(name="xenguest1", kernel="/boot/vmlinuz-4.9.40-xen-domU", memory=1024,
                         disks=("phy:/dev/sdc12,xvda1,w",), vifs=("",), root="/dev/xvda1 ro")


def test_render_writes_the_hints_file():
    assert cfg.parse(write.render(HINT)).plain() == {
        "name": "xenguest1", "kernel": "/boot/vmlinuz-4.9.40-xen-domU", "memory": "1024",
        "root": "/dev/xvda1 ro", "disk": ["phy:/dev/sdc12,xvda1,w"], "vif": [""]}


writable = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"
                                 + "".join(map(chr, range(1, 32))) + "\x7f") | st.sampled_from(
    ["\n", "\t", "\\", '"', "'"]))


@given(name=writable, extra=writable, disks=st.lists(writable, max_size=3))
def test_any_string_reads_back_unchanged(name, extra, disks):
    guest = write.GuestConfig(name=name or "g", kernel="/k", memory=1, disks=tuple(disks),
                              extra=extra or None)
    got = cfg.parse(write.render(guest)).plain()
    assert got["name"] == (name or "g") and got.get("disk", []) == disks
    assert got.get("extra") == (extra or None)


def test_a_control_character_cannot_be_written():
    with pytest.raises(UsageError, match="control character"):
        write.quote("a\x01b")


ORIGINAL = """\
# my guest
name = "g"   # its name
memory = 512 ; vcpus = 2

disk = [ "phy:/dev/sdc12,xvda1,w",  # root
]
memory += 1
"""


@pytest.mark.parametrize(("arg", "key", "value"), [
    ("memory=2048", "memory", "2048"),
    ("kernel=/boot/vmlinuz-domU", "kernel", "/boot/vmlinuz-domU"),
    ("name=two words", "name", "two words"),
    ('vif=["bridge=xenbr0", ""]', "vif", ["bridge=xenbr0", ""]),
    ("extra=quiet # not a comment", "extra", "quiet # not a comment"),
])
def test_set_keeps_comments_and_order(arg, key, value):
    key_, raw = write.parse_assignment(arg)
    text = write.set_values(ORIGINAL, "g.cfg", [(key_, raw)])
    before, after = cfg.parse(ORIGINAL).plain(), cfg.parse(text).plain()
    assert after == {**before, key: value}
    assert "# my guest" in text and "# its name" in text and "# root" in text
    assert [a.name for a in cfg.parse(text).assignments][:4] == ["name", "memory", "vcpus",
                                                                "disk"]


def test_set_rejects_a_bad_key():
    with pytest.raises(UsageError, match="not an xl key"):
        write.parse_assignment("Memory=1")


def test_replacing_a_multiline_list_keeps_its_comments_above_it():
    text = ('name = "g"\ndisk = [ "phy:/dev/sdc12,xvda1,w",  # root\n  # swap next\n'
            '  "phy:/dev/sdc13,xvda2,w",\n] # after\nmemory = 1\n')
    new = write.set_values(text, "g.cfg", [write.parse_assignment('disk=["phy:/dev/x,xvda1,w"]')])
    assert new == ('name = "g"\n# root\n# swap next\ndisk = ["phy:/dev/x,xvda1,w"] # after\n'
                   "memory = 1\n")


def test_set_works_beside_and_with_lists_as_deep_as_xl_allows():
    deep = "[" * 3000 + "1" + "]" * 3000
    text = f'name = "g"\nx = {deep}\n'
    new = write.set_values(text, "g.cfg", [write.parse_assignment("memory=512"),
                                           write.parse_assignment(f"y={deep}")])
    assert new == text + f"memory = 512\ny = {deep}\n"
