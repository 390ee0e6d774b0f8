"""The trainer role: run the user's training script and report how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlops_ci.console import Progress


@dataclass(frozen=True)
class RemoteSpec:
    """What a trainer that runs elsewhere (Argo) needs beyond the local command: the commit to
    clone and train, where it came from, and the MLflow run mlops-ci opened for it."""

    config: Any  # the loaded mlops_ci.config.schema.Config
    config_path: str  # .mlops-ci.yaml relative to the repository root
    root: Path  # the repository's top folder (for its origin remote)
    head_sha: str
    repository: str  # owner/name (or the folder's name outside GitHub)
    pr: int | None = None
    tracking_uri: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None


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
    remote: RemoteSpec | None = None


@dataclass(frozen=True)
class TrainResult:
    returncode: int
    timed_out: bool
    log_tail: tuple[str, ...]
    duration_s: float
    worker_exit_code: int | None = None  # the failing training process's own exit code
    error_line: str = ""  # the last line the training script printed before failing
    workflow: str | None = None  # remote trainers: the Workflow that ran it
    workflow_url: str | None = None
    run_id: str | None = None  # the MLflow run that holds the results, when not the one mlops-ci opened


class Trainer(Protocol):
    """What a trainer can do is read from its capabilities, never from its name."""

    name: str
    reads_worktree: bool  # trains the work tree as it is (else the head commit, cloned elsewhere)
    stops_pull_requests: bool  # can stop the runs of a closed pull request (`mlops-ci train --stop`)

    def image(self, train: Any) -> str | None:
        """The image it trains in, pinned by digest, from the model's ``train`` config; None when it
        runs on this machine (the fingerprint names the trainer instead)."""

    def title(self, model: str, spec: TrainSpec) -> str:
        """What the progress line says while it trains."""

    def command(self, spec: TrainSpec) -> list[str]:
        """The command that would run (for --dry-run and the record)."""

    def run(self, spec: TrainSpec, progress: Progress) -> TrainResult: ...
