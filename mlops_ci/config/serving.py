"""The `serving` section of a model: what a promotion writes (a KServe InferenceService, or a
Deployment + Service + HPA), and Kubernetes resource quantities."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from mlops_ci.config.base import IMAGE_DIGEST_RE, Strict

# A Kubernetes resource quantity: a plain or decimal number with an optional suffix
# (binary Ki..Ei, decimal n, u, m, k, M..E, or an exponent), as the API server parses it.
QUANTITY_RE = re.compile(r"^(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_QUANTITY_SCALE = {"": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
                   "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity_value(text: str) -> float | None:
    """The number a Kubernetes quantity stands for (1Gi -> 1073741824.0); None if it is not one."""
    match = QUANTITY_RE.fullmatch(text)
    if not match:
        return None
    suffix = match.group(3) or ""
    if suffix[:1] in ("e", "E"):
        return float(text)
    return float(match.group(1)) * _QUANTITY_SCALE[suffix]


def _number_as_text(value):
    # `cpu: 2` or `cpu: 0.5` in YAML is a number; Kubernetes wants the quantity as text
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _quantity(value: str) -> str:
    if quantity_value(value) is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity: write e.g. 500m or 2 (cpu), 512Mi or 4Gi "
                         "(memory); no spaces, units Ki/Mi/Gi (powers of 2) or k/M/G (powers of 10)")
    return value


Quantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_quantity)]


class Resources(Strict):
    cpu: Quantity = Field(default="1", description="CPU cores, e.g. 500m or 2")
    memory: Quantity = Field(default="2Gi", description="memory, e.g. 512Mi or 4Gi")


class Autoscaling(Strict):
    """What the autoscaler watches, and the value per pod it keeps the metric at."""

    metric: Literal["cpu", "memory", "concurrency", "rps"] = Field(
        description="cpu or memory: a Kubernetes HPA (kind deployment, KServe RawDeployment); concurrency or "
        "rps: Knative's autoscaler (KServe Serverless)")
    target: int = Field(ge=1, description="cpu/memory: average utilization in percent of the requests; "
                        "concurrency: in-flight requests per pod; rps: requests per second per pod")


def _server_image(value: str) -> str:
    if not IMAGE_DIGEST_RE.fullmatch(value):
        raise ValueError(f"image {value!r} is not pinned by digest (a tag can move, and the served version "
                         "would change without a promotion): write name@sha256:<64 hex digits>, e.g. "
                         "ghcr.io/acme/model-server@sha256:...; `docker buildx imagetools inspect <image>` "
                         "prints the digest of a pushed tag")
    return value


ServerImage = Annotated[str, AfterValidator(_server_image)]  # ImageDigest's rule, in serving's words
HPA_METRICS = ("cpu", "memory")
KNATIVE_METRICS = ("concurrency", "rps")


class ServingConfig(Strict):
    """How a promoted version is served: a KServe InferenceService, or a Deployment + Service + HPA.

    Settings that only one kind or mode supports are refused for the others (scale to zero and
    canaries need KServe Serverless, i.e. Knative; an HPA scales on cpu or memory, never to 0).
    """

    kind: Literal["inferenceservice", "deployment"] = Field(
        default="inferenceservice", description="'inferenceservice': a KServe InferenceService; 'deployment': "
        "a plain Deployment + Service + HorizontalPodAutoscaler running `image`")
    deployment_mode: Literal["Serverless", "RawDeployment"] = Field(
        default="RawDeployment", description="KServe's serving.kserve.io/deploymentMode: 'RawDeployment' "
        "(KServe's default since v0.17, where it is called Standard; Deployment + HPA, no Knative) or "
        "'Serverless' (Knative: scale to zero, request-based autoscaling, canaries). kind inferenceservice only")
    model_format: str = Field(default="mlflow", description="KServe modelFormat.name (kind inferenceservice)")
    protocol_version: Literal["v1", "v2"] = Field(default="v2", description="KServe inference protocol "
                                                  "(kind inferenceservice)")
    runtime: str | None = Field(default=None, description="KServe ServingRuntime to use; default: the one "
                                "KServe picks for model_format (kind inferenceservice)")
    image: ServerImage | None = Field(
        default=None, validate_default=True, json_schema_extra={"pattern": IMAGE_DIGEST_RE.pattern},
        description="model server image pinned by digest, name@sha256:<64 hex> (kind deployment, required "
        "there). It gets the version as env MODEL_URI, MODEL_DIGEST, MODEL_NAME, MODEL_VERSION")
    args: list[str] = Field(default=[], description="arguments of the model server (kind deployment); "
                            "$(MODEL_URI) and the other variables above are expanded by Kubernetes, e.g. "
                            "[mlflow, models, serve, -m, $(MODEL_URI), -h, 0.0.0.0, -p, '8080']")
    port: int | None = Field(default=None, ge=1, le=65535, description="port the model server listens on "
                             "(kind deployment; default 8080); the Service exposes it as port 80")
    min_replicas: int = Field(default=1, ge=0, description="0 scales to zero: KServe Serverless only")
    max_replicas: int = Field(default=1, ge=1)
    autoscaling: Autoscaling | None = Field(
        default=None, description="autoscaling metric and target; default: KServe's own (inferenceservice) "
        "or cpu at 80% of the requests (deployment)")
    canary_percent: int | None = Field(
        default=None, ge=0, le=100, description="percent of traffic the new version gets while the previous "
        "one keeps the rest (KServe canaryTrafficPercent; Serverless only). Remove it to send all traffic "
        "to the new version")
    requests: Resources = Field(default=Resources(), description="what each pod is guaranteed")
    limits: Resources = Field(default=Resources(cpu="2", memory="4Gi"), validate_default=True,
                              description="the most each pod may use")
    gpus: int = Field(default=0, ge=0, le=16, description="nvidia.com/gpu per pod (in limits, and the same in "
                      "requests as Kubernetes requires)")

    @field_validator("deployment_mode")
    @classmethod
    def _mode_is_kserve(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("kind") == "deployment":
            raise ValueError("deployment_mode is a KServe setting and kind is deployment: remove it, "
                             "or set kind: inferenceservice")
        return value

    @field_validator("model_format", "protocol_version", "runtime")
    @classmethod
    def _kserve_only(cls, value, info: ValidationInfo):
        if info.data.get("kind") == "deployment" and value is not None:
            raise ValueError(f"{info.field_name} is a KServe setting and kind is deployment (your image is the "
                             "server): remove it, or set kind: inferenceservice")
        return value

    @field_validator("image")
    @classmethod
    def _image_for_deployment(cls, value, info: ValidationInfo):
        kind = info.data.get("kind")
        if kind == "deployment" and value is None:
            raise ValueError("kind deployment needs image: the model server image pinned by digest, "
                             "e.g. ghcr.io/acme/model-server@sha256:<64 hex digits>")
        if kind == "inferenceservice" and value is not None:
            raise ValueError("image is for kind deployment; KServe picks the server from runtime and "
                             "model_format: remove image, or set kind: deployment")
        return value

    @field_validator("args", "port")
    @classmethod
    def _deployment_only(cls, value, info: ValidationInfo):
        if info.data.get("kind") == "inferenceservice" and value not in (None, []):
            raise ValueError(f"{info.field_name} is for kind deployment (KServe runs its own server): "
                             "remove it, or set kind: deployment")
        return value

    @field_validator("min_replicas")
    @classmethod
    def _scale_to_zero(cls, value: int, info: ValidationInfo) -> int:
        if value == 0:
            kind, mode = info.data.get("kind"), info.data.get("deployment_mode")
            if kind == "deployment":
                raise ValueError("min_replicas 0 (scale to zero) is not possible with kind deployment: a "
                                 "HorizontalPodAutoscaler never scales below 1; use min_replicas 1, or kind "
                                 "inferenceservice with deployment_mode: Serverless")
            if mode == "RawDeployment":
                raise ValueError("min_replicas 0 (scale to zero) needs Knative: set deployment_mode: Serverless, "
                                 "or min_replicas 1 (RawDeployment scales with an HPA, which never goes below 1)")
        return value

    @field_validator("autoscaling")
    @classmethod
    def _metric_fits_autoscaler(cls, value: Autoscaling | None, info: ValidationInfo):
        if value is None:
            return value
        kind, mode = info.data.get("kind"), info.data.get("deployment_mode")
        if (kind == "deployment" or mode == "RawDeployment") and value.metric not in HPA_METRICS:
            where = "kind deployment" if kind == "deployment" else "deployment_mode RawDeployment"
            raise ValueError(f"metric {value.metric!r} needs Knative's autoscaler, but {where} scales with a "
                             "Kubernetes HPA: use metric cpu or memory, or kind inferenceservice with "
                             "deployment_mode: Serverless")
        if kind == "inferenceservice" and mode == "Serverless" and value.metric not in KNATIVE_METRICS:
            raise ValueError(f"metric {value.metric!r} needs an HPA, but deployment_mode Serverless scales with "
                             "Knative's autoscaler, which watches concurrency or rps: use one of those, or "
                             "deployment_mode: RawDeployment")
        return value

    @field_validator("canary_percent")
    @classmethod
    def _canary_needs_knative(cls, value: int | None, info: ValidationInfo):
        if value is not None and (info.data.get("kind") == "deployment"
                                  or info.data.get("deployment_mode") != "Serverless"):
            raise ValueError("canary_percent splits traffic between Knative revisions: it needs kind "
                             "inferenceservice with deployment_mode: Serverless; remove it otherwise")
        return value

    @field_validator("limits")
    @classmethod
    def _requests_within_limits(cls, limits: Resources, info: ValidationInfo) -> Resources:
        requests = info.data.get("requests")
        if isinstance(requests, Resources):
            for name in ("cpu", "memory"):
                asked, cap = getattr(requests, name), getattr(limits, name)
                if quantity_value(asked) > quantity_value(cap):
                    raise ValueError(f"limits.{name} {cap} is below requests.{name} {asked}: Kubernetes "
                                     "refuses a request above its limit; raise the limit or lower the request")
        return limits
