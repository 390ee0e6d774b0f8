"""The runtime context built from a validated config: where things are and which backends run.

Built once per command from the config and the environment, then passed explicitly to every
stage (no process-wide settings).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlops_ci import gitutil
from mlops_ci.config import LoadedConfig
from mlops_ci.config.schema import Config, ModelConfig
from mlops_ci.errors import UsageError

STATE_DIR = ".mlops-ci"


@dataclass(frozen=True)
class Workspace:
    loaded: LoadedConfig
    top: Path  # the git repository's top folder
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @classmethod
    def from_config(cls, loaded: LoadedConfig, env: Mapping[str, str] | None = None) -> Workspace:
        return cls(loaded=loaded, top=gitutil.toplevel(loaded.root),
                   env=dict(os.environ if env is None else env))

    @property
    def config(self) -> Config:
        return self.loaded.config

    @property
    def root(self) -> Path:
        """The project folder: where `.mlops-ci.yaml` lives; config paths are relative to it."""
        return self.loaded.root

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def prefix(self) -> str:
        rel = os.path.relpath(self.root, self.top)
        return "" if rel == "." else Path(rel).as_posix()

    def repo_path(self, rel: str) -> str:
        """A config-relative path as a path relative to the git top (posix)."""
        return posixpath.normpath(posixpath.join(self.prefix, rel)) if self.prefix else posixpath.normpath(rel)

    def model(self, name: str) -> ModelConfig:
        try:
            return self.config.models[name]
        except KeyError:
            raise UsageError(f"model {name!r} is not defined in {self.loaded.path}",
                             hint=f"use one of: {', '.join(sorted(self.config.models))}") from None

    def models(self, name: str | None) -> list[str]:
        return [name] if name else list(self.config.models)

    def environment(self, name: str) -> str:
        if name not in self.config.environments:
            raise UsageError(f"environment {name!r} is not defined in {self.loaded.path}",
                             hint=f"use one of: {', '.join(sorted(self.config.environments))}")
        return name

    def actor(self) -> str:
        """Who is acting: $GITHUB_ACTOR in Actions, else the git identity of the project checkout."""
        if self.env.get("GITHUB_ACTOR"):
            return self.env["GITHUB_ACTOR"]
        proc = gitutil.git(["var", "GIT_AUTHOR_IDENT"], self.top, check=False)
        ident = proc.stdout.strip()
        # "Name <email> 1700000000 +0000": drop the timestamp
        return ident.rsplit(" ", 2)[0] if proc.returncode == 0 and ident.count(" ") >= 2 else "unknown"

    def default_ref(self) -> str | None:
        """The default branch as this clone knows it: its remote-tracking ref when there is one."""
        branch = self.config.default_branch
        for ref in (f"refs/remotes/origin/{branch}", f"refs/heads/{branch}"):
            if gitutil.rev_parse(ref, self.top):
                return ref
        return None

    @property
    def tracking_uri(self) -> str:
        uri = self.env.get("MLFLOW_TRACKING_URI") or self.config.tracking.uri
        if uri:
            return uri
        return f"sqlite:///{(self.state_dir / 'mlflow.db').as_posix()}"

    @property
    def embedded_tracking(self) -> bool:
        """The default registry: SQLite in this checkout, made by this job (no server or URI given)."""
        return not (self.env.get("MLFLOW_TRACKING_URI") or self.config.tracking.uri)

    @property
    def artifact_root(self) -> str:
        """Where the embedded MLflow keeps artifacts (only used with the SQLite default)."""
        return (self.state_dir / "mlartifacts").resolve().as_uri()

    @property
    def gitops_remote(self) -> str:
        return self.config.gitops.remote or str(self.state_dir / "gitops.git")

    @property
    def uses_default_gitops(self) -> bool:
        return self.config.gitops.remote is None

    @property
    def record_path(self) -> Path:
        return self.state_dir / "record.json"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"
