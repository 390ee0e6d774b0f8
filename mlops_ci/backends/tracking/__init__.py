"""Experiment tracking and model registry backends."""

from __future__ import annotations

from mlops_ci.backends.tracking.base import ModelVersionInfo, RunInfo, Tracking
from mlops_ci.backends.tracking.mlflow import MlflowTracking

TRACKING: dict[str, type] = {
    "mlflow": MlflowTracking,
}


def tracking_for(ws) -> Tracking:
    """The tracking backend of a workspace (MLflow: a server URI, or SQLite under .mlops-ci/)."""
    return TRACKING["mlflow"](uri=ws.tracking_uri, artifact_root=ws.artifact_root)


__all__ = ["TRACKING", "ModelVersionInfo", "RunInfo", "Tracking", "tracking_for"]
