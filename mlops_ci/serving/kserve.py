"""A KServe InferenceService for one model version, pinned to fixed facts.

The manifest carries the version's artifact URI (never an alias), its digest and the
lineage (PR, source commit, training run, data hashes) as labels and annotations, and the
serving settings: the deployment mode (always written, so that what the config was checked
against is what the cluster runs, whatever KServe's default there), replicas, autoscaling,
canary traffic, payload logging and resources. A setting removed from the config is removed
from the file, except the payload logger: written whole while ``serving.logging`` is set, and
left as it is (a hand-written one) while it is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops_ci.config.schema import InferenceServiceServing, ServingBase
from mlops_ci.serving.yamlio import ABSENT, Whole, prune

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
LABEL_PREFIX = "mlops-ci.dev"
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
GPU = "nvidia.com/gpu"
ENDPOINT_LABEL = "endpoint"  # the pod label KServe's logger agent records as the answer's endpoint
CANARY_ENDPOINT = "canary"


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


def resources(serving: ServingBase) -> dict[str, Any]:
    """Container resources; GPUs (an extended resource) in limits and, equal, in requests."""
    gpus = str(serving.gpus) if serving.gpus else ABSENT
    return {"requests": {"cpu": serving.requests.cpu, "memory": serving.requests.memory, GPU: gpus},
            "limits": {"cpu": serving.limits.cpu, "memory": serving.limits.memory, GPU: gpus}}


def owned_fields(v: ServedVersion, serving: InferenceServiceServing, *, track: str | None = None) -> dict[str, Any]:
    """The fields mlops-ci owns in the InferenceService; everything else is the user's.

    ABSENT marks an owned field the settings leave out: a promotion removes it from the file.
    ``track``: in an environment with a rollout, which side of one this predictor is ("primary" or
    "canary"): its pods are labelled with the version (metrics tell the sides apart by it) and the
    canary's with KServe's ``endpoint`` label (the payload logger records it), and a RawDeployment
    canary (``spec.canary``) is owned, so the full promotion removes it.
    """
    model: dict[str, Any] = {"modelFormat": {"name": serving.model_format},
                             "protocolVersion": serving.protocol_version}
    if serving.runtime:
        model["runtime"] = serving.runtime
    model["storageUri"] = v.artifact_uri
    model["resources"] = resources(serving)
    scaling = serving.autoscaling
    canary = serving.canary_percent
    notes = {**annotations(v), DEPLOYMENT_MODE: serving.deployment_mode}
    predictor: dict[str, Any] = {"minReplicas": serving.min_replicas, "maxReplicas": serving.max_replicas,
                                 "scaleMetric": scaling.metric if scaling else ABSENT,
                                 "scaleTarget": scaling.target if scaling else ABSENT,
                                 "canaryTrafficPercent": canary if canary is not None else ABSENT}
    if serving.logging is not None:  # owned whole when configured; a hand-written logger is left alone
        predictor["logger"] = Whole(serving.logging.manifest())
    predictor["model"] = model
    spec: dict[str, Any] = {"predictor": predictor}
    if track is not None:
        predictor["labels"] = {f"{LABEL_PREFIX}/model-version": v.version,
                               ENDPOINT_LABEL: CANARY_ENDPOINT if track == "canary" else ABSENT}
        spec["canary"] = ABSENT
    return {"metadata": {"labels": labels(v), "annotations": notes}, "spec": spec}


def render(v: ServedVersion, serving: InferenceServiceServing, *, track: str | None = None) -> dict[str, Any]:
    """A complete InferenceService with a stable key order."""
    owned = prune(owned_fields(v, serving, track=track))
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": v.model, "namespace": v.namespace, **owned["metadata"]},
        "spec": owned["spec"],
    }
