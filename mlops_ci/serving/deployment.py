"""A plain Kubernetes alternative to KServe: Deployment + Service + HorizontalPodAutoscaler.

For ``serving.kind: deployment``. The Deployment runs the user's model server image (pinned by
digest) and hands it the version as environment variables (MODEL_URI, MODEL_DIGEST, MODEL_NAME,
MODEL_VERSION; ``$(MODEL_URI)`` in ``serving.args`` is expanded by Kubernetes). It carries the
same labels, annotations and lineage as an InferenceService (kserve.py), on the object and on
its pods, so a new version rolls out. The Service and the HPA only carry labels that do not
change between versions: re-promoting changes deployment.yaml alone.

The Deployment has no ``spec.replicas``: the HPA owns the replica count, and a value in git
would make Argo CD fight the HPA on every sync. The HPA is in Argo CD sync wave 1, after the
Deployment and Service (wave 0): Argo CD applies it once the Deployment it scales exists and is
healthy. Argo CD's kind order alone (Service, Deployment, then HorizontalPodAutoscaler) would
already apply them in that order within one wave; the wave also makes it wait for health.
"""

from __future__ import annotations

from typing import Any

from mlops_ci.config.schema import DeploymentServing
from mlops_ci.serving.kserve import LABEL_PREFIX, ServedVersion, annotations, labels, resources
from mlops_ci.serving.yamlio import ABSENT, prune

DEFAULT_PORT = 8080
SERVICE_PORT = 80
CONTAINER = "model-server"
DEFAULT_CPU_TARGET = 80  # percent: what an autoscaling/v2 HPA uses when it is given no metric
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
HPA_SYNC_WAVE = "1"

FILES = ("deployment.yaml", "service.yaml", "hpa.yaml")


def selector(v: ServedVersion) -> dict[str, str]:
    """Pod selector: immutable in a Deployment, so it never holds the version."""
    return {"app.kubernetes.io/name": v.model, f"{LABEL_PREFIX}/model": v.model}


def stable_labels(v: ServedVersion) -> dict[str, str]:
    return {k: val for k, val in labels(v).items() if k != f"{LABEL_PREFIX}/model-version"}


def _env(v: ServedVersion) -> list[dict[str, str]]:
    return [{"name": "MODEL_NAME", "value": v.model}, {"name": "MODEL_VERSION", "value": v.version},
            {"name": "MODEL_URI", "value": v.artifact_uri}, {"name": "MODEL_DIGEST", "value": v.digest}]


def deployment_owned(v: ServedVersion, serving: DeploymentServing) -> dict[str, Any]:
    container = {
        "name": CONTAINER,
        "image": serving.image,
        "args": list(serving.args) if serving.args else ABSENT,
        "ports": [{"name": "http", "containerPort": serving.port or DEFAULT_PORT, "protocol": "TCP"}],
        "env": _env(v),
        "resources": resources(serving),
    }
    return {
        "metadata": {"labels": labels(v), "annotations": annotations(v)},
        "spec": {
            "selector": {"matchLabels": selector(v)},
            "template": {
                "metadata": {"labels": labels(v), "annotations": annotations(v)},
                "spec": {"containers": [container]},
            },
        },
    }


def service_owned(v: ServedVersion, serving: DeploymentServing) -> dict[str, Any]:
    return {
        "metadata": {"labels": stable_labels(v)},
        "spec": {"selector": selector(v),
                 "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]},
    }


def _metric(serving: DeploymentServing) -> dict[str, Any]:
    scaling = serving.autoscaling
    name, target = (scaling.metric, scaling.target) if scaling else ("cpu", DEFAULT_CPU_TARGET)
    return {"type": "Resource",
            "resource": {"name": name, "target": {"type": "Utilization", "averageUtilization": target}}}


def hpa_owned(v: ServedVersion, serving: DeploymentServing) -> dict[str, Any]:
    return {
        "metadata": {"labels": stable_labels(v), "annotations": {SYNC_WAVE: HPA_SYNC_WAVE}},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": v.model},
                 "minReplicas": serving.min_replicas, "maxReplicas": serving.max_replicas,
                 "metrics": [_metric(serving)]},
    }


# file name -> (apiVersion, kind, the fields mlops-ci owns in it)
KINDS = {
    "deployment.yaml": ("apps/v1", "Deployment", deployment_owned),
    "service.yaml": ("v1", "Service", service_owned),
    "hpa.yaml": ("autoscaling/v2", "HorizontalPodAutoscaler", hpa_owned),
}


def owned_fields(name: str, v: ServedVersion, serving: DeploymentServing) -> dict[str, Any]:
    """The fields mlops-ci owns in one of FILES; everything else is the user's."""
    return KINDS[name][2](v, serving)


def render(name: str, v: ServedVersion, serving: DeploymentServing) -> dict[str, Any]:
    """A complete object for one of FILES, with a stable key order."""
    api_version, kind, owned_of = KINDS[name]
    owned = prune(owned_of(v, serving))
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": v.model, "namespace": v.namespace, **owned["metadata"]},
            "spec": owned["spec"]}
