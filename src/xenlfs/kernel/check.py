"""`xenlfs kernel check`: each option a role needs (or must not have), and the config's value."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from xenlfs.kernel.config import KernelConfig
from xenlfs.kernel.kconfig import Kconfig
from xenlfs.kernel.requirements import (
    DEFAULT_TYPES,
    GuestType,
    Level,
    Requirement,
    Role,
    requirements,
)


class Status(enum.StrEnum):
    ENABLED = "enabled"         # =y
    MODULE = "module"           # =m
    MISSING = "missing"         # off, or absent from the config
    OFF = "off"                 # off, as an unwanted option should be
    NOT_IN_KERNEL = "not in this kernel version"  # the tree's Kconfig has no such symbol


@dataclass(frozen=True)
class Result:
    requirement: Requirement
    status: Status
    value: str

    @property
    def met(self) -> bool:
        if self.requirement.off:
            return self.status not in (Status.ENABLED, Status.MODULE)
        if self.status is Status.ENABLED:
            return True
        if self.status is Status.MODULE:
            return not self.requirement.builtin
        # A symbol this kernel does not have cannot be asked of it.
        return self.status is Status.NOT_IN_KERNEL

    @property
    def fails(self) -> bool:
        return not self.met and self.requirement.level is Level.REQUIRED

    def problem(self) -> str | None:
        if self.met:
            return None
        if self.requirement.off:
            return "on, but it should be off: " + self.requirement.why
        if self.status is Status.MODULE:
            return "built as a module, but it must be built in (=y): " + self.requirement.why
        return self.requirement.why

    def as_dict(self) -> dict[str, Any]:
        req = self.requirement
        return {"symbol": "CONFIG_" + req.symbol, "status": str(self.status), "value": self.value,
                "wanted": req.wanted, "level": str(req.level),
                "met": self.met, "why": req.why}


def status_of(symbol: str, config: KernelConfig, kconfig: Kconfig | None) -> Status:
    value = config.get(symbol)
    if value == "y":
        return Status.ENABLED
    if value == "m":
        return Status.MODULE
    if kconfig is not None and symbol not in kconfig:
        return Status.NOT_IN_KERNEL
    return Status.MISSING


def check(config: KernelConfig, role: Role, kconfig: Kconfig | None = None, *,
          types: tuple[GuestType, ...] = DEFAULT_TYPES, initramfs: bool = False) -> list[Result]:
    results = []
    for req in requirements(role, types, initramfs=initramfs):
        status = status_of(req.symbol, config, kconfig)
        if req.off and status is Status.MISSING:
            status = Status.OFF
        results.append(Result(req, status, config.get(req.symbol)))
    return results


def failed(results: list[Result]) -> list[Result]:
    return [r for r in results if r.fails]
