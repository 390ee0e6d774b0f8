"""A KServe InferenceService for one model version, pinned to fixed facts.

The manifest carries the version's artifact URI (never an alias), its digest and the
lineage (PR, source commit, training run, data hashes) as labels and annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_ci.config.schema import ServingConfig

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
LABEL_PREFIX = "mlops-ci.dev"


@dataclass(frozen=True)
class ServedVersion:
    """What a promotion pins: fixed facts about one registered model version."""

    model: str
    version: str
    artifact_uri: str
    digest: str
    env: str
    namespace: str
    lineage: dict[str, str] = field(default_factory=dict)  # run-id, source-commit, source-pr, data.*


def labels(v: ServedVersion) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": v.model,
        "app.kubernetes.io/managed-by": "mlops-ci",
        f"{LABEL_PREFIX}/model": v.model,
        f"{LABEL_PREFIX}/model-version": v.version,
        f"{LABEL_PREFIX}/environment": v.env,
    }


def annotations(v: ServedVersion) -> dict[str, str]:
    out = {
        f"{LABEL_PREFIX}/model-version": v.version,
        f"{LABEL_PREFIX}/artifact-uri": v.artifact_uri,
        f"{LABEL_PREFIX}/digest": v.digest,
    }
    for key in sorted(v.lineage):
        out[f"{LABEL_PREFIX}/{key}"] = v.lineage[key]
    return out


def owned_fields(v: ServedVersion, serving: ServingConfig) -> dict[str, Any]:
    """The fields mlops-ci owns in the InferenceService; everything else is the user's."""
    model: dict[str, Any] = {"modelFormat": {"name": serving.model_format},
                             "protocolVersion": serving.protocol_version}
    if serving.runtime:
        model["runtime"] = serving.runtime
    model["storageUri"] = v.artifact_uri
    model["resources"] = {
        "requests": {"cpu": serving.requests.cpu, "memory": serving.requests.memory},
        "limits": {"cpu": serving.limits.cpu, "memory": serving.limits.memory},
    }
    return {
        "metadata": {"labels": labels(v), "annotations": annotations(v)},
        "spec": {"predictor": {"minReplicas": serving.min_replicas, "maxReplicas": serving.max_replicas,
                               "model": model}},
    }


def render(v: ServedVersion, serving: ServingConfig) -> dict[str, Any]:
    """A complete InferenceService with a stable key order."""
    owned = owned_fields(v, serving)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": v.model, "namespace": v.namespace, **owned["metadata"]},
        "spec": owned["spec"],
    }
