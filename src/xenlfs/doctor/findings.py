"""What the doctor reports: one finding per requirement or host fact, with its fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    MISSING = "missing"       # required and absent: doctor exits 1
    OLD = "too old"           # required and older than the minimum: exits 1
    ABSENT = "absent"         # optional (or not needed for this Xen) and absent
    WARN = "warning"          # a host fact that limits what works
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    name: str
    status: Status
    found: str          # what was found: the program, module or file, with its version
    needed: str         # "required", "optional", "for HVM guests" …
    why: str
    fix: str

    @property
    def problem(self) -> bool:
        return self.status in (Status.MISSING, Status.OLD)

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"problem": self.problem}
