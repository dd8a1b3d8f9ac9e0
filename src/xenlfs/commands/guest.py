"""`xenlfs guest …`: the hint's guest steps. Each step's module adds its own verbs here."""

from __future__ import annotations

import argparse

from xenlfs.commands import guest_clone, guest_prepare, guest_xl
from xenlfs.commands.parser import ArgumentParser, add_group


def register(verbs: argparse._SubParsersAction[ArgumentParser], common: ArgumentParser) -> None:
    sub = add_group(verbs, "guest", "make, check and run Xen guests (hint steps 5 and 6)",
                    common)
    guest_prepare.add_prepare(sub, common)  # step 5: prepare
    guest_clone.add_clone(sub, common)  # many guests from one prepared guest
    guest_xl.register(sub, common)  # step 6: check, config, create, list, top, console, ...
