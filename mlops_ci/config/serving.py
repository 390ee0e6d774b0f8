"""The `serving` section of a model: what a promotion writes, one class per kind, and Kubernetes
resource quantities.

``kind: inferenceservice`` (the default: a section without ``kind`` is one) is a KServe
InferenceService, :class:`InferenceServiceServing`; ``kind: deployment`` is a plain Deployment +
Service + HorizontalPodAutoscaler running the user's server image, :class:`DeploymentServing`.
Both build on :class:`ServingBase` (replicas, autoscaling, resources, GPUs); ``ServingConfig`` is
their union on ``kind``.

A setting of the other kind is refused with a message naming the kind it belongs to, at the line
it is written on (never pydantic's "Extra inputs are not permitted"). A section is validated by
the class its kind names (:func:`_by_kind`), so that an error's location is the setting's path in
the file: pydantic's own tagged union would put the tag in it (``serving.deployment.image``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (AfterValidator, BeforeValidator, Discriminator, Field, Tag, ValidationError, ValidationInfo,
                      ValidatorFunctionWrapHandler, WrapValidator, field_validator, model_validator)

from mlops_ci.config.base import IMAGE_DIGEST_RE, Strict, setting_errors
from mlops_ci.config.payload_logging import PayloadLogging
from mlops_ci.config.serving_check import ServingCheck

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


KIND_HELP = ("'inferenceservice': a KServe InferenceService; 'deployment': a plain Deployment + Service + "
             "HorizontalPodAutoscaler running `image`")
CANARY_NEEDS_KNATIVE = ("canary_percent splits traffic between Knative revisions: it needs kind inferenceservice "
                        "with deployment_mode: Serverless; remove it otherwise")


def _needs_knative(metric: str, where: str) -> str:
    return (f"metric {metric!r} needs Knative's autoscaler, but {where} scales with a Kubernetes HPA: use metric "
            "cpu or memory, or kind inferenceservice with deployment_mode: Serverless")


def _needs_an_hpa(metric: str) -> str:
    return (f"metric {metric!r} needs an HPA, but deployment_mode Serverless scales with Knative's autoscaler, "
            "which watches concurrency or rps: use one of those, or deployment_mode: RawDeployment")


def _kserve_only(name: str) -> str:
    return (f"{name} is a KServe setting and kind is deployment (your image is the server): remove it, or set "
            "kind: inferenceservice")


def _deployment_only(name: str) -> str:
    return f"{name} is for kind deployment (KServe runs its own server): remove it, or set kind: deployment"


# the other kind's settings: name -> (the values that leave it unset, the message refusing any other)
Refusals = dict[str, tuple[tuple[Any, ...], str]]


class ServingBase(Strict):
    """What both kinds of serving share: replicas, autoscaling, resources and GPUs."""

    kind: Literal["inferenceservice", "deployment"]
    min_replicas: int = Field(default=1, ge=0, description="0 scales to zero: KServe Serverless only")
    max_replicas: int = Field(default=1, ge=1)
    autoscaling: Autoscaling | None = Field(
        default=None, description="autoscaling metric and target; default: KServe's own (inferenceservice) "
        "or cpu at 80% of the requests (deployment)")
    requests: Resources = Field(default=Resources(), description="what each pod is guaranteed")
    limits: Resources = Field(default=Resources(cpu="2", memory="4Gi"), validate_default=True,
                              description="the most each pod may use")
    gpus: int = Field(default=0, ge=0, le=16, description="nvidia.com/gpu per pod (in limits, and the same in "
                      "requests as Kubernetes requires)")
    check: ServingCheck = Field(default=ServingCheck(), description="the serving check: the candidate served in "
                                "the runtime KServe runs, against the champion, before it is registered")

    other_kind_settings: ClassVar[Refusals] = {}  # each kind lists the other's

    @model_validator(mode="wrap")
    @classmethod
    def _fits_the_kind(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """The other kind's settings, each refused at its line, ahead of the errors in this kind's own
        settings; once those parse, the kind's rules across settings (:meth:`_conflicts`)."""
        refused: list[tuple[str, Any, str]] = []
        if isinstance(data, dict):
            others = cls.other_kind_settings
            refused = [(name, value, others[name][1]) for name, value in data.items()
                       if name in others and value not in others[name][0]]
            data = {name: value for name, value in data.items() if name not in others}
        try:
            model = handler(data)
        except ValidationError as err:
            if not refused:
                raise
            rest = [{key: e[key] for key in ("type", "loc", "input", "ctx") if key in e} for e in err.errors()]
        else:
            rest = setting_errors(model._conflicts())
            if not refused and not rest:
                return model
        raise ValidationError.from_exception_data(cls.__name__, [*setting_errors(refused), *rest])

    def _conflicts(self) -> list[tuple[str, Any, str]]:
        """(setting, value, message) for each setting that this kind refuses given the others."""
        return []

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


class InferenceServiceServing(ServingBase):
    """A KServe InferenceService (kind inferenceservice, the default).

    Scale to zero, Knative's metrics (concurrency, rps) and canaries need deployment_mode
    Serverless; RawDeployment scales with an HPA, on cpu or memory and never to 0.
    """

    kind: Literal["inferenceservice"] = Field(default="inferenceservice", description=KIND_HELP)
    deployment_mode: Literal["Serverless", "RawDeployment"] = Field(
        default="RawDeployment", description="KServe's serving.kserve.io/deploymentMode: 'RawDeployment' "
        "(KServe's default since v0.17, where it is called Standard; Deployment + HPA, no Knative) or "
        "'Serverless' (Knative: scale to zero, request-based autoscaling, canaries). kind inferenceservice only")
    model_format: str = Field(default="mlflow", description="KServe modelFormat.name (kind inferenceservice)")
    protocol_version: Literal["v1", "v2"] = Field(default="v2", description="KServe inference protocol "
                                                  "(kind inferenceservice)")
    runtime: str | None = Field(default=None, description="KServe ServingRuntime to use; default: the one "
                                "KServe picks for model_format (kind inferenceservice)")
    canary_percent: int | None = Field(
        default=None, ge=0, le=100, description="percent of traffic the new version gets while the previous "
        "one keeps the rest (KServe canaryTrafficPercent; Serverless only). Remove it to send all traffic "
        "to the new version")
    logging: PayloadLogging | None = Field(
        default=None, description="payload logging: KServe's predictor.logger sends each request and response "
        "as a CloudEvent to an http(s) url, or writes them in batches to blob storage (kind inferenceservice)")

    other_kind_settings: ClassVar[Refusals] = {
        "image": ((None,), ("image is for kind deployment; KServe picks the server from runtime and "
                            "model_format: remove image, or set kind: deployment")),
        "args": (([],), _deployment_only("args")),
        "port": ((None,), _deployment_only("port")),
    }

    def _conflicts(self) -> list[tuple[str, Any, str]]:
        """Each setting that needs the other deployment mode."""
        serverless = self.deployment_mode == "Serverless"
        metric = self.autoscaling.metric if self.autoscaling is not None else None
        problems = []
        if self.min_replicas == 0 and not serverless:
            problems.append(("min_replicas", 0, ("min_replicas 0 (scale to zero) needs Knative: set "
                                                 "deployment_mode: Serverless, or min_replicas 1 (RawDeployment "
                                                 "scales with an HPA, which never goes below 1)")))
        if metric is not None and not serverless and metric not in HPA_METRICS:
            problems.append(("autoscaling", metric, _needs_knative(metric, "deployment_mode RawDeployment")))
        elif metric is not None and serverless and metric not in KNATIVE_METRICS:
            problems.append(("autoscaling", metric, _needs_an_hpa(metric)))
        if self.canary_percent is not None and not serverless:
            problems.append(("canary_percent", self.canary_percent, CANARY_NEEDS_KNATIVE))
        return problems


class DeploymentServing(ServingBase):
    """A Deployment + Service + HorizontalPodAutoscaler running ``image`` (kind deployment).

    The server gets the version as env MODEL_URI, MODEL_DIGEST, MODEL_NAME, MODEL_VERSION. The HPA
    scales on cpu or memory, and never below one pod.
    """

    kind: Literal["deployment"] = Field(description=KIND_HELP)
    image: ServerImage | None = Field(
        default=None, validate_default=True, json_schema_extra={"pattern": IMAGE_DIGEST_RE.pattern},
        description="model server image pinned by digest, name@sha256:<64 hex> (kind deployment, required "
        "there). It gets the version as env MODEL_URI, MODEL_DIGEST, MODEL_NAME, MODEL_VERSION")
    args: list[str] = Field(default=[], description="arguments of the model server (kind deployment); "
                            "$(MODEL_URI) and the other variables above are expanded by Kubernetes, e.g. "
                            "[mlflow, models, serve, -m, $(MODEL_URI), -h, 0.0.0.0, -p, '8080']")
    port: int | None = Field(default=None, ge=1, le=65535, description="port the model server listens on "
                             "(kind deployment; default 8080); the Service exposes it as port 80")

    other_kind_settings: ClassVar[Refusals] = {
        "deployment_mode": ((), ("deployment_mode is a KServe setting and kind is deployment: remove it, or "
                                 "set kind: inferenceservice")),
        "model_format": ((), _kserve_only("model_format")),
        "protocol_version": ((), _kserve_only("protocol_version")),
        "runtime": ((None,), _kserve_only("runtime")),
        "canary_percent": ((None,), CANARY_NEEDS_KNATIVE),
        "logging": ((None,), ("logging is KServe's payload logger and kind is deployment (your image is the "
                              "server; log requests there): remove it, or set kind: inferenceservice")),
    }

    @field_validator("image")
    @classmethod
    def _image_is_required(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("kind deployment needs image: the model server image pinned by digest, "
                             "e.g. ghcr.io/acme/model-server@sha256:<64 hex digits>")
        return value

    @field_validator("min_replicas")
    @classmethod
    def _no_scale_to_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("min_replicas 0 (scale to zero) is not possible with kind deployment: a "
                             "HorizontalPodAutoscaler never scales below 1; use min_replicas 1, or kind "
                             "inferenceservice with deployment_mode: Serverless")
        return value

    @field_validator("autoscaling")
    @classmethod
    def _metric_of_an_hpa(cls, value: Autoscaling | None) -> Autoscaling | None:
        if value is not None and value.metric not in HPA_METRICS:
            raise ValueError(_needs_knative(value.metric, "kind deployment"))
        return value


DEFAULT_KIND = "inferenceservice"
SERVING_KINDS: dict[str, type[ServingBase]] = {"inferenceservice": InferenceServiceServing,
                                               "deployment": DeploymentServing}


def _kind_of(value: Any) -> str | None:
    """The union's tag: ``kind``, inferenceservice where a section leaves it out."""
    if isinstance(value, dict):
        return value.get("kind", DEFAULT_KIND)
    return getattr(value, "kind", None)


def _by_kind(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    """A section (a mapping) validated by the class its kind names, its errors located as in the file;
    an instance of either class goes through the tagged union as it is."""
    if not isinstance(value, dict):
        return handler(value)
    kind = _kind_of(value)
    model = SERVING_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        names = [repr(name) for name in SERVING_KINDS]
        expected = f"{', '.join(names[:-1])} or {names[-1]}"
        raise ValidationError.from_exception_data("ServingConfig", [
            {"type": "literal_error", "loc": ("kind",), "input": kind, "ctx": {"expected": expected}}])
    return model.model_validate(value, context=info.context)


ServingConfig = Annotated[
    Annotated[InferenceServiceServing, Tag("inferenceservice")] | Annotated[DeploymentServing, Tag("deployment")],
    Discriminator(_kind_of),
    WrapValidator(_by_kind),
]
"""How a promoted version is served: the union of the kinds on ``kind`` (default inferenceservice)."""
