"""What can go wrong with a tool environment: building it, or a call to its worker."""

from __future__ import annotations

from pathlib import Path

from mlops_ci.errors import BackendError


class EnvBuildError(BackendError):
    """A tool environment could not be created (interpreter, cache folder, lock, venv or pip)."""


class WorkerFailed(Exception):
    """The worker gave no usable response; the message says why (and is masked).

    Not a :class:`~mlops_ci.errors.FatalError`: the caller decides what it means (the deepchecks
    suites turn it into a result gated by ``on_error``).
    """


class WorkerTimeout(WorkerFailed):
    """The worker ran past its timeout and was stopped, with every process it started."""


class WorkerExited(WorkerFailed):
    """The worker exited with a code other than 0; ``log`` holds what it printed."""

    def __init__(self, message: str, *, code: int, log: Path) -> None:
        super().__init__(message)
        self.code = code
        self.log = log
