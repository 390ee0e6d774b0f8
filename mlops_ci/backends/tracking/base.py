"""The tracking/registry role: runs, logged models, registered versions and aliases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    status: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    source: str  # the URI the version was registered from
    artifact_uri: str  # where the files are (fixed, resolvable by the serving runtime)
    run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


class Tracking(Protocol):
    """What mlops-ci needs of a tracking server and model registry. Every backend passes the
    contract suite in tests/pipeline/test_tracking_contract.py."""

    uri: str

    def ping(self) -> None:
        """Raise BackendError (with what to do) unless the server answers and accepts our credentials."""
        ...

    def experiment(self, name: str) -> str: ...

    def start_run(self, experiment_id: str, *, run_name: str, tags: dict[str, str]) -> str: ...

    def end_run(self, run_id: str, status: str) -> None: ...

    def get_run(self, run_id: str) -> RunInfo: ...

    def search_runs(self, experiment: str, tags: dict[str, str], *, status: str | None = None) -> list[RunInfo]:
        """Runs of the experiment named ``experiment`` carrying every tag in ``tags`` (newest first)."""
        ...

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None: ...

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Store ``text`` as the run's artifact ``artifact_file`` (a relative path)."""
        ...

    def load_text(self, run_id: str, artifact_file: str) -> str | None:
        """The run's artifact ``artifact_file`` as text; None when the run has no such artifact."""
        ...

    def metric_history(self, run_id: str) -> list[dict[str, float]]:
        """The run's logged metrics by step: one dict per step, with its ``step``."""
        ...

    def run_url(self, run_id: str, experiment_id: str) -> str | None: ...

    def logged_model_uri(self, run_id: str, experiment_id: str) -> str | None: ...

    def artifact_location(self, model_uri: str) -> str: ...

    def local_copy(self, artifact_uri: str) -> str:
        """A local folder with the files at ``artifact_uri`` (downloaded when they are remote)."""
        ...

    def predict(self, model_uri: str, frame: pd.DataFrame) -> np.ndarray: ...

    def version_by_alias(self, name: str, alias: str) -> ModelVersionInfo | None: ...

    def get_version(self, name: str, version: str) -> ModelVersionInfo: ...

    def search_versions(self, name: str, tags: dict[str, str], *, limit: int | None = None) -> list[ModelVersionInfo]:
        """Versions of model ``name`` carrying every tag in ``tags`` (newest first; [] if no such model)."""
        ...

    def register(self, name: str, model_uri: str, *, run_id: str | None, tags: dict[str, str]) -> ModelVersionInfo: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None: ...

    def digest(self, artifact_uri: str) -> str: ...
