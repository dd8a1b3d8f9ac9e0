"""Why an option is off: its unmet dependencies, recursively, and where it is in menuconfig.

Read from the tree's own Kconfig files (kconfig.py). This is an explanation for a human; what
a configuration really becomes is decided by the tree's `make olddefconfig` (fix.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from xenlfs.kernel.config import KernelConfig
from xenlfs.kernel.kconfig import (
    Kconfig,
    annotate,
    conjuncts,
    disjuncts,
    evaluate,
    positive_symbols,
)
from xenlfs.kernel.requirements import BY_TYPE

_MAX_DEPTH = 6


@dataclass(frozen=True)
class Unmet:
    expression: str  # annotated, e.g. "ACPI [=n]"
    causes: tuple[Explanation, ...] = ()


@dataclass(frozen=True)
class Explanation:
    symbol: str
    value: str
    prompt: str | None
    location: tuple[str, ...]
    defined_at: str
    unmet: tuple[Unmet, ...] = ()
    selected_by: tuple[str, ...] = ()
    exists: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": "CONFIG_" + self.symbol, "value": self.value, "exists": self.exists,
            "prompt": self.prompt, "menu": " → ".join(self.location), "defined_at":
            self.defined_at, "selected_by": list(self.selected_by), "notes": list(self.notes),
            "unmet": [{"expression": u.expression, "causes": [c.as_dict() for c in u.causes]}
                      for u in self.unmet],
        }


def explain(symbol: str, config: KernelConfig, kconfig: Kconfig, *, want: int = 2,
            _seen: frozenset[str] = frozenset()) -> Explanation:
    """Explain `symbol` in `config`; want is 2 for =y, 1 for =m or better."""
    sym = kconfig.symbols.get(symbol)
    if sym is None:
        return Explanation(symbol, config.get(symbol), None, (), "", exists=False,
                           notes=("not in this kernel version",))
    seen = _seen | {symbol}
    unmet: list[Unmet] = []
    for dep in sym.depends:
        for part in conjuncts(dep):
            if evaluate(part, config, kconfig) >= want:
                continue
            causes = tuple(
                explain(name, config, kconfig, want=want, _seen=seen)
                for name in dict.fromkeys(positive_symbols(_way(part, kconfig), kconfig))
                if name not in seen and len(seen) < _MAX_DEPTH
                and evaluate(name, config, kconfig) < want)
            unmet.append(Unmet(annotate(part, config, kconfig), causes))
    # 'needs: HYPERVISOR_GUEST' under XEN_PV says nothing once XEN's chain already says it.
    unmet = [u for u in unmet if not any(
        u is not other and _mentions(other, u.expression.split(" [=")[0]) for other in unmet)]
    notes: list[str] = []
    if sym.prompt is None:
        notes.append("has no prompt: it is on only when another option selects it"
                     + (" or by its default" if not sym.selected_by else ""))
    if want == 2 and any(evaluate(d, config, kconfig) == 1 for d in sym.depends):
        notes.append("a dependency is a module, so this can only be a module")
    notes.extend(f"should be off for --type {kind} (kernel check warns while it is on, "
                 f"kernel fix turns it off): {req.why}"
                 for kind, reqs in BY_TYPE.items() for req in reqs
                 if req.symbol == symbol and req.off)
    return Explanation(symbol, config.get(symbol), sym.prompt, sym.location, sym.defined_at,
                       tuple(unmet), tuple(sym.selected_by[:8]), notes=tuple(notes))


def _way(expr: str, kconfig: Kconfig) -> str:
    """Of 'A || B || C', the first alternative this tree can have (ARM is not on x86)."""
    for alternative in disjuncts(expr):
        names = [t for t in re.findall(r"[A-Za-z0-9_]+", alternative) if t.isupper()]
        if all(name in kconfig for name in names):
            return alternative
    return expr


def _mentions(unmet: Unmet, symbol: str) -> bool:
    return any(c.symbol == symbol or any(_mentions(u, symbol) for u in c.unmet)
               for c in unmet.causes)


def enablers(explanation: Explanation) -> list[str]:
    """Symbols with a prompt that the explanation says must be turned on, deepest first."""
    found: list[str] = []
    for unmet in explanation.unmet:
        for cause in unmet.causes:
            found.extend(enablers(cause))
            if cause.exists and cause.prompt is not None:
                found.append(cause.symbol)
    return list(dict.fromkeys(found))


def render(explanation: Explanation, indent: str = "    ",
           shown: set[str] | None = None) -> list[str]:
    """Lines for a terminal: what it is, where it is, what is missing, recursively.

    A symbol already explained (in `shown`) gets one line, so chains stay readable.
    """
    e = explanation
    shown = set() if shown is None else shown
    if not e.exists:
        return [f"{indent}CONFIG_{e.symbol}: not in this kernel version"]
    title = f' "{e.prompt}"' if e.prompt else ""
    if e.symbol in shown:
        return [f"{indent}CONFIG_{e.symbol}{title} [={e.value}] (see above)"]
    shown.add(e.symbol)
    lines = [f"{indent}CONFIG_{e.symbol}{title} [={e.value}]  ({e.defined_at})"]
    if e.location:
        lines.append(f"{indent}  menuconfig: {' → '.join(e.location)}")
    for note in e.notes:
        lines.append(f"{indent}  {note}")
    if e.selected_by and e.prompt is None:
        lines.append(f"{indent}  selected by: {', '.join(e.selected_by)}")
    for unmet in e.unmet:
        lines.append(f"{indent}  needs: {unmet.expression}")
        for cause in unmet.causes:
            lines.extend(render(cause, indent + "    ", shown))
    return lines
