"""One exception root for everything a user can cause, with its exit code.

Every error says what happened, where (a file:line:column, a URL, an object name) and what to
do next. The top-level handler (`mlops_ci.cli.main`) prints ``str(error)`` and exits with
``error.exit_code``; see the table in the README.
"""

from __future__ import annotations


class ExitCode:
    OK = 0
    GATE_FAILED = 1  # the run worked and its verdict is "fail"
    USAGE = 2  # bad command line
    CONFIG = 3  # .mlops-ci.yaml is malformed or invalid
    INPUT = 4  # the repository's data, params or git state cannot be used
    BACKEND = 5  # an external component (MLflow, DVC, git remote, torchrun) failed
    INTERNAL = 70  # a bug in mlops-ci: please report it
    INTERRUPTED = 130


class FatalError(Exception):
    """Root of every error mlops-ci reports to a user."""

    exit_code = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(FatalError):
    exit_code = ExitCode.USAGE


class ConfigError(FatalError):
    exit_code = ExitCode.CONFIG


class InputError(FatalError):
    """The user's repository content (data, params, git state, records) cannot be used."""

    exit_code = ExitCode.INPUT


class DataError(InputError):
    pass


class RecordError(InputError):
    pass


class GitError(InputError):
    pass


class NotFound(InputError):
    """Something the user named (a model version, a run) does not exist where it was looked up."""


class BackendError(FatalError):
    """An external component failed (tracking server, DVC, a git remote, the trainer)."""

    exit_code = ExitCode.BACKEND


class TrainingError(BackendError):
    pass


class PromotionError(FatalError):
    exit_code = ExitCode.INPUT


class PushConflict(PromotionError):
    """The GitOps remote moved and the change cannot be rebased onto it: another push landed first,
    so nothing about the user's input is wrong (exit 5, as for any backend that refused)."""

    exit_code = ExitCode.BACKEND


class GateFailed(FatalError):
    """Raised where a command must stop because gates failed (e.g. promote without --force)."""

    exit_code = ExitCode.GATE_FAILED
