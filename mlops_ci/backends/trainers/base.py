"""The trainer role: run the user's training script and report how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mlops_ci.console import Progress


@dataclass(frozen=True)
class TrainSpec:
    model: str
    workdir: Path
    script: str
    args: tuple[str, ...]
    nproc_per_node: int
    timeout_s: float
    env: dict[str, str] = field(default_factory=dict)  # added to the inherited environment
    result_path: Path = Path("result.json")


@dataclass(frozen=True)
class TrainResult:
    returncode: int
    timed_out: bool
    log_tail: tuple[str, ...]
    duration_s: float
    worker_exit_code: int | None = None  # the failing training process's own exit code
    error_line: str = ""  # the last line the training script printed before failing


class Trainer(Protocol):
    name: str

    def command(self, spec: TrainSpec) -> list[str]:
        """The command that would run (for --dry-run and the record)."""

    def run(self, spec: TrainSpec, progress: Progress) -> TrainResult: ...
