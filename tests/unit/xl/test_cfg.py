"""The libxlu grammar: values, positions and the errors a person can act on."""

from __future__ import annotations

import pytest

from xenlfs.errors import SourceError
from xenlfs.xl import cfg


def values(text: str) -> dict[str, object]:
    return cfg.parse(text, "g.cfg").plain()


def error(text: str) -> SourceError:
    with pytest.raises(SourceError) as e:
        cfg.parse(text, "g.cfg")
    return e.value


def test_numbers_are_kept_as_text():
    assert values("memory = 0x80\nvcpus = 01\n") == {"memory": "0x80", "vcpus": "01"}


def test_last_assignment_wins_and_plus_equals_appends():
    got = values('a = "x"\na = "y"\na += "z"\nl = [1]\nl += [2, [3]]\nn += "new"\n')
    assert got == {"a": "yz", "l": ["1", "2", ["3"]], "n": "new"}


def test_lists_take_newlines_comments_and_a_trailing_comma():
    assert values('d = [\n  "a", # one\n  "b"\n  ,\n]\ne = [\n]\n') == {"d": ["a", "b"], "e": []}


def test_escapes_follow_libxlu():
    assert values(r'''a = "q\"s\'b\\t\tn\n"''') == {"a": "q\"s'b\\t\tn\n"}
    # libxlu consumes an "octal" escape but emits nothing for it
    assert values(r'a = "x\101y"') == {"a": "xy"}


def test_the_last_line_may_lack_its_newline_unless_it_is_a_comment():
    assert values('a = 1') == {"a": "1"}
    e = error('a = 1\n# end')
    assert (e.line, e.col) == (2, 1)
    assert "newline" in e.fix  # type: ignore[operator]


def test_values_keep_their_positions():
    config = cfg.parse('# c\nname = "g"\ndisk = [ "a",\n   "b" ]\n', "g.cfg")
    disk = config.values["disk"]
    assert isinstance(disk, cfg.List)
    assert [item.pos for item in disk.items] == [cfg.Pos(3, 10), cfg.Pos(4, 4)]
    assert config.where("name").pos == cfg.Pos(2, 1)


@pytest.mark.parametrize(("text", "line", "col", "words"), [
    ('name = "g"\r\nmemory = 1\n', 1, 11, "CRLF"),
    ('Name = "g"\n', 1, 1, "lower case"),
    ('memory = 1g\n', 1, 11, "no units"),
    ('vcpus = int(2)\n', 1, 12, "not Python"),
    ('name = g\n', 1, 8, 'quote it'),
    ('name =\n"g"\n', 1, 7, "same line"),
    ('name = "g\n', 1, 8, "not closed"),
    ('d = [ "a" "b" ]\n', 1, 11, "commas"),
    ('d = ["a"]\nd += "b"\n', 2, 6, "same kind"),
    ('e = "\\x41"\n', 1, 6, "\\x"),
])
def test_errors_say_where_and_how_to_fix(text, line, col, words):
    e = error(text)
    assert (e.line, e.col) == (line, col), str(e)
    assert words in str(e)
    assert str(e).startswith(f"g.cfg:{line}:{col}: ") and " — " in str(e)


@pytest.mark.parametrize(("text", "col", "message"), [
    ("memory = M\n", 10, "'M' is not quoted"),
    ("kernel = /boot/x\n", 10, "'/boot/x' is not quoted"),
    ("cpu_weight = -1\n", 14, 'a negative number must be quoted in xl configs — write "-1"'),
    ("vcpus = int(2)\n", 12, "not Python"),
])
def test_bare_values_are_explained(text, col, message):
    e = error(text)
    assert e.col == col and message in str(e)
