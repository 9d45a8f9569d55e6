"""One error hierarchy; the CLI maps each class to an exit code (README: "Exit codes")."""

from __future__ import annotations


class NbenvError(Exception):
    """An error a user can act on: one line of `message`, optionally one line of `hint`."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(NbenvError):
    """Bad command-line arguments that typer/click could not catch."""

    exit_code = 2


class SpecError(NbenvError):
    """An environment spec or the repo-wide settings are invalid."""

    exit_code = 3

    @classmethod
    def at(cls, file: str, line: int | None, field: str | None, what: str, hint: str | None = None) -> SpecError:
        """Build the canonical `FILE:LINE: field.path: what is wrong` message."""
        where = f"{file}:{line}" if line else file
        return cls(f"{where}: {field}: {what}" if field else f"{where}: {what}", hint)


class LockError(NbenvError):
    """poetry.lock is missing, stale or unusable."""

    exit_code = 4


class DriftError(NbenvError):
    """`generate --check` found generated files that differ from what the specs produce."""

    exit_code = 5


class EngineUnavailable(NbenvError):
    exit_code = 6


class BuildError(NbenvError):
    exit_code = 7


class DataError(NbenvError):
    exit_code = 8


class RunError(NbenvError):
    """The environment did not start or stopped answering."""

    exit_code = 9


class RegistryError(NbenvError):
    """A push was refused (dirty tree, tag conflict) or the registry failed."""

    exit_code = 10


class WheelsMissing(NbenvError):
    """`nbenv image preflight`: a selected package has no wheel for a target platform, so the build would
    compile it (nbenv.wheel_preflight)."""

    exit_code = 11
