"""Serving runtimes run on this machine: a registered version served as the cluster will serve it.

``RUNTIMES`` names each runtime mlops-ci can start here, by what a model's ``serving`` section
asks KServe for; :func:`runtime_for` says which one serves a model, or why none can run here
(the caller says so and skips, never passes). Today: MLServer with its MLflow runtime
(:mod:`~mlops_ci.runtime.mlserver`), for ``modelFormat: mlflow`` over protocol v2; the V2
protocol's JSON is in :mod:`~mlops_ci.runtime.v2`.
"""

from __future__ import annotations

from typing import Any

# runtime name -> (what it serves, in KServe's words): one line per runtime
RUNTIMES: dict[str, dict[str, str]] = {
    "mlserver": {"model_format": "mlflow", "protocol_version": "v2"},
}


def runtime_for(serving: Any) -> tuple[str | None, str]:
    """(the runtime that serves ``serving`` here, or None; why not, when None)."""
    if serving.kind != "inferenceservice":
        return None, ("kind deployment serves with your own image, which cannot run here (no container engine): "
                      "the serving check runs for kind inferenceservice only")
    if serving.runtime not in (None, "kserve-mlserver"):
        return None, (f"serving.runtime {serving.runtime!r} is a ServingRuntime of your cluster, which cannot run "
                      "here: mlops-ci runs what kserve-mlserver runs (MLServer with its MLflow runtime)")
    for name, serves in RUNTIMES.items():
        if all(getattr(serving, key, None) == value for key, value in serves.items()):
            return name, ""
    return None, (f"no runtime here serves modelFormat {serving.model_format!r} over protocol "
                  f"{serving.protocol_version}: mlops-ci runs MLServer for mlflow over v2")


__all__ = ["RUNTIMES", "runtime_for"]
