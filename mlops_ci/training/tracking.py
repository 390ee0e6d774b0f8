"""MLflow on rank 0 and the result file mlops-ci reads after the run."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import Any
from collections.abc import Iterator

from mlops_ci.training.runtime import Dist, tracking_enabled
from mlops_ci.training.storage import atomic_write_text

RESULT_ENV = "MLOPS_CI_RESULT"


@contextmanager
def tracked_run(dist: Dist) -> Iterator[Any]:
    """The MLflow run on rank 0 (resuming ``MLFLOW_RUN_ID`` when mlops-ci opened one); None elsewhere."""
    if not dist.is_main or not tracking_enabled():
        yield None
        return
    import mlflow

    if not os.environ.get("MLFLOW_RUN_ID") and os.environ.get("MLFLOW_EXPERIMENT_ID") is None:
        mlflow.set_experiment(os.environ.get("MLOPS_CI_MODEL", "default"))
    with mlflow.start_run() as run:
        yield run


def _run_id() -> str | None:
    """The active MLflow run's id (rank 0, tracking on), else the one mlops-ci passed, else None."""
    if tracking_enabled():
        import mlflow

        run = mlflow.active_run()
        if run is not None:
            return run.info.run_id
    return os.environ.get("MLFLOW_RUN_ID") or None


def write_result(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` atomically: a reader sees the old file or the whole new one."""
    atomic_write_text(path, json.dumps(payload, indent=2))


def finish(dist: Dist, *, model_uri: str | None, metrics: dict[str, float] | None = None,
           steps: int | None = None) -> None:
    """Write the result file mlops-ci reads (rank 0 only), then leave the process group.

    ``$MLOPS_CI_RESULT`` gets ``{"model_uri", "metrics", "run_id", "steps"}``; ``run_id`` is the
    MLflow run rank 0 logged to (None when not tracking), ``steps`` the optimizer steps taken.
    With ``$MLOPS_CI_CHECKPOINT_URI`` set, the same JSON also goes to ``<uri>/result.json``.
    """
    path = os.environ.get(RESULT_ENV)
    payload = {"model_uri": model_uri, "metrics": {k: float(v) for k, v in (metrics or {}).items()},
               "run_id": _run_id(), "steps": None if steps is None else int(steps)}
    if dist.is_main and path:
        write_result(path, payload)
    checkpoints = os.environ.get("MLOPS_CI_CHECKPOINT_URI", "").strip()
    if dist.is_main and checkpoints:
        # a multi-node run's Workflow cannot read a file off rank 0's pod: its `result` step
        # reads <checkpoint URI>/result.json instead (argo/training-jobset.yaml)
        from mlops_ci.training.storage import open_store

        store = open_store(checkpoints)
        store.write_text(store.join("result.json"), json.dumps(payload, indent=2))
    dist.barrier()
    dist.close()
