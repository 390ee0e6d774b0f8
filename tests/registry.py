"""A real MLflow model registry (SQLite) holding versions of the `tiny` model, for promotion tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlops_ci.backends.tracking.mlflow import MlflowTracking


def build_registry(base: Path, versions: int, tags_for: Callable[[int], dict[str, str]]) -> Path:
    """Register ``tiny`` v1..v``versions`` under ``base`` (a file each, digest ``sha256:nnn...``
    plus ``tags_for(n)``); returns the SQLite file to point MLFLOW_TRACKING_URI at."""
    tracking = MlflowTracking(uri=f"sqlite:///{(base / 'mlflow.db').as_posix()}",
                              artifact_root=(base / "mlartifacts").as_uri())
    for n in range(1, versions + 1):
        folder = base / "models" / f"m-{n}"
        folder.mkdir(parents=True)
        (folder / "model.bin").write_text(f"model {n}\n")
        tags = {"mlops_ci.digest": f"sha256:{str(n) * 64}", **tags_for(n)}
        version = tracking.register("tiny", str(folder), run_id=None, tags=tags).version
        if version != str(n):
            raise RuntimeError(f"the registry under {base} was not empty: registered v{version}, expected v{n}")
    return base / "mlflow.db"


def passing_registry_workspace(repo: Path, base: Path, versions: int = 3):
    """The project at ``repo`` with a copy of a registry of ``versions`` passing versions of tiny
    (built in ``base``) as its MLflow database: a Workspace to promote from."""
    import shutil

    from mlops_ci.config import load_config
    from mlops_ci.stages.register import EVALUATION_TAG
    from mlops_ci.workspace import Workspace

    db = build_registry(base, versions, lambda n: {"mlops_ci.head_sha": "c" * 40, EVALUATION_TAG: "pass"})
    (repo / ".mlops-ci").mkdir()
    shutil.copy(db, repo / ".mlops-ci" / "mlflow.db")
    return Workspace.from_config(load_config(repo / ".mlops-ci.yaml"), env={})
