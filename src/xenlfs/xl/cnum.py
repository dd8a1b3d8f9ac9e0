"""Numbers and words as xl's C code reads them: strtol, strtoul, sscanf's %x and %u, strtok.

Their quirks decide verdicts: a '-' negates modulo 2^64, "0x" alone reads as 0 in sscanf, an
overflow gives ULONG_MAX, empty pieces vanish in strtok. And Python refuses to turn more than
4300 decimal digits into an int (ValueError) where C just overflows: past 40 digits every C
integer has overflowed, so cint stops there.
"""

from __future__ import annotations

import re
import string

OVERFLOWED = 10 ** 40  # larger than any C integer: callers clamp or refuse it


def cint(text: str, base: int = 10) -> int:
    """int(text, base) for a number a regex has already checked (Python limits only base 10)."""
    if base != 10:
        return int(text, base)
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").lstrip("0") or "0"
    return sign * (OVERFLOWED if len(digits) > 40 else int(digits))


def strtol(text: str) -> int | None:
    """C strtol(text, &end, 0) that must use the whole text, as xl reads numbers."""
    m = re.fullmatch(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if not m:
        return None
    digits = m[2]
    value = (int(digits, 16) if digits[:2].lower() == "0x" else
             int(digits, 8) if digits.startswith("0") else cint(digits))
    value = -value if m[1] == "-" else value
    return value if -(1 << 63) <= value < 1 << 63 else None


ULONG_MAX = (1 << 64) - 1


def strtoul10(text: str, i: int) -> tuple[int | None, int]:
    """C strtoul(text + i, &end, 10): (value, end), value None when nothing converts.
    A '-' negates modulo 2^64 and an overflow gives ULONG_MAX, as in C."""
    m = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)").match(text, i)
    if not m:
        return None, i
    n = min(cint(m[2]), ULONG_MAX)
    if m[1] == "-" and n != ULONG_MAX:
        n = -n % (1 << 64)
    return n, m.end()


SPACE = " \t\n\v\f\r"  # C isspace
HEX = string.hexdigits


def strtok(text: str, delims: str) -> list[str]:
    return [piece for piece in re.split(f"[{re.escape(delims)}]", text) if piece]


def _blanks_and_sign(text: str, i: int) -> tuple[bool, int]:
    """What C's number readers skip first: blanks, then one '+' or '-' (is it '-'?)."""
    j = i
    while j < len(text) and text[j] in SPACE:
        j += 1
    negative = j < len(text) and text[j] == "-"
    if j < len(text) and text[j] in "+-":
        j += 1
    return negative, j


def strtoul(text: str, i: int, base: int) -> tuple[int | None, int]:
    """C strtoul(text + i, &end, base) for base 0, 10 or 16: (value or None, end)."""
    negative, j = _blanks_and_sign(text, i)
    if base in (0, 16) and text[j:j + 2].lower() == "0x" and text[j + 2:j + 3] \
            and text[j + 2] in HEX:
        base, j = 16, j + 2
    elif base == 0:
        base = 8 if text[j:j + 1] == "0" else 10
    digits = {8: "01234567", 10: string.digits, 16: HEX}[base]
    k = j
    while k < len(text) and text[k] in digits:
        k += 1
    if k == j:
        return None, i
    n = min(cint(text[j:k], base), (1 << 64) - 1)
    if negative and n != (1 << 64) - 1:
        n = -n % (1 << 64)
    return n, k


def scan_hex(text: str, i: int, bits: int) -> tuple[int | None, int]:
    """glibc sscanf's %x (bits=32) or %llx (bits=64) at text[i]: (value or None, end)."""
    negative, j = _blanks_and_sign(text, i)
    if text[j:j + 2].lower() == "0x":  # taken even with no digit after it: reads as 0
        j += 2
        k = j
        while k < len(text) and text[k] in HEX:
            k += 1
        n = int(text[j:k], 16) if k > j else 0
    else:
        k = j
        while k < len(text) and text[k] in HEX:
            k += 1
        if k == j:
            return None, i
        n = int(text[j:k], 16)
    n = min(n, (1 << 64) - 1)
    if negative:
        n = -n % (1 << 64)
    return n & ((1 << bits) - 1), k


def scan_uint(text: str, i: int) -> tuple[int | None, int]:
    """glibc sscanf's %u."""
    n, end = strtoul(text, i, 10)
    return (None, i) if n is None else (n & 0xFFFFFFFF, end)
