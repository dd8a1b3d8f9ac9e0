"""Hint steps 2–3: the source builds of the packages BLFS lacks (libyajl, libaio, iasl,
dev86), then of Xen.

One module per package holds its recipe (the hint's appendix B); recipe.py runs them all the
same way: unpack → fix known source bugs → configure/make → install → copy into place.
"""

from __future__ import annotations

import importlib

from xenlfs.recipes.recipe import Recipe

# The order is the hint's: the four libraries and tools first, then Xen, which needs them.
NAMES = ("yajl", "libaio", "acpica", "dev86", "xen")


def get(name: str) -> Recipe:
    module = importlib.import_module(f"xenlfs.recipes.{name}")
    found: Recipe = module.RECIPE
    return found
