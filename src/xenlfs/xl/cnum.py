"""Numbers as xl's C parsers read them, without Python's limits getting in the way.

Python refuses to turn more than 4300 decimal digits into an int (ValueError); a C parser
just overflows. Past 40 digits every C integer has overflowed, so cint stops there.
"""

from __future__ import annotations

OVERFLOWED = 10 ** 40  # larger than any C integer: callers clamp or refuse it


def cint(text: str, base: int = 10) -> int:
    """int(text, base) for a number a regex has already checked (Python limits only base 10)."""
    if base != 10:
        return int(text, base)
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").lstrip("0") or "0"
    return sign * (OVERFLOWED if len(digits) > 40 else int(digits))
