"""Experiment tracking and model registry backends."""

from __future__ import annotations

from mlops_ci.backends.tracking.base import ModelVersionInfo, RunInfo, Tracking
from mlops_ci.backends.tracking.mlflow import MlflowTracking

TRACKING: dict[str, type] = {
    "mlflow": MlflowTracking,
}


def tracking_for(ws) -> Tracking:
    """The tracking backend of a workspace (``tracking.backend``, default MLflow: a server URI, or
    SQLite under .mlops-ci/)."""
    from mlops_ci.backends.naming import choose

    backend = choose(TRACKING, ws.config.tracking.backend, role="tracking backend", setting="tracking.backend")
    return backend(uri=ws.tracking_uri, artifact_root=ws.artifact_root)


__all__ = ["TRACKING", "ModelVersionInfo", "RunInfo", "Tracking", "tracking_for"]
