"""Typed errors. Each carries what went wrong, where, and what to do; cli.main catches them once."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes (README, "Exit codes")."""

    OK = 0
    FAILED = 1
    USAGE = 2
    PRECONDITION = 3


class XenlfsError(Exception):
    """A failure xenlfs explains to the user. Never shown with a traceback unless --debug."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(XenlfsError):
    """The command line or a config file asks for something that makes no sense."""

    exit_code = ExitCode.USAGE


class PreconditionError(XenlfsError):
    """The machine is not in a state to do this: not root, a tool missing, a device in use."""

    exit_code = ExitCode.PRECONDITION


class ToolMissing(PreconditionError):
    """An external program is not installed."""


class CommandFailed(XenlfsError):
    """An external command exited non-zero (or timed out)."""

    def __init__(
        self,
        message: str,
        *,
        argv: list[str],
        returncode: int | None,
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class SourceError(XenlfsError):
    """Bad input in a file, with its position: printed as file:line:col: what — how to fix."""

    def __init__(self, path: str, line: int, col: int, what: str, fix: str | None = None) -> None:
        self.path, self.line, self.col, self.what, self.fix = path, line, col, what, fix
        located = f"{path}:{line}:{col}: {what}"
        super().__init__(located if not fix else f"{located} — {fix}")

    def __str__(self) -> str:
        return self.message
