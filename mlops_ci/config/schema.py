"""The `.mlops-ci.yaml` schema: pydantic models, also exported as a JSON Schema for editors.

Validation happens in two steps (see :mod:`mlops_ci.config.loader`): the models below check
shapes and types; :func:`mlops_ci.config.semantics.problems` then checks what spans fields
(a gate on a metric that is not computed, an environment that does not exist).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo,
                      field_validator, model_validator)

from mlops_ci.checks.suites.models import SuitesConfig

SCHEMA_VERSION = 1

# Names end up in Kubernetes object names, MLflow registry names, git paths and labels.
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


def _name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use 1-40 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _relative_path(value: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if value.startswith("/") or ".." in parts or not value.strip():
        raise ValueError(
            f"{value!r} must be a path inside the repository, relative to .mlops-ci.yaml "
            "(no leading '/', no '..')"
        )
    return value


Name = Annotated[str, AfterValidator(_name)]
RelPath = Annotated[str, AfterValidator(_relative_path)]
Action = Literal["fail", "warn", "ignore"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Threshold(Strict):
    """A score at or above ``warn`` warns; at or above ``fail`` fails the check."""

    warn: float | None = Field(default=None, ge=0)
    fail: float | None = Field(default=None, ge=0)


class DriftChecks(Strict):
    """Drift of each feature column, as effect sizes (no p-values: at large n everything is "significant")."""

    psi: Threshold = Threshold(warn=0.1, fail=0.25)
    js: Threshold = Field(default=Threshold(warn=0.1, fail=0.2), description="Jensen–Shannon distance, base 2")
    wasserstein: Threshold = Field(
        default=Threshold(warn=0.1, fail=0.25),
        description="numeric columns: Wasserstein (earth mover's) distance over the base's standard deviation",
    )
    new_categories: Action = Field(default="warn", description="categories the base never had")
    bins: int = Field(default=10, ge=2, le=100, description="histogram bins, edges from base quantiles")
    top_categories: int = Field(default=20, ge=1, le=1000, description="categories compared one by one; "
                                "the rest are summed as one")


class LabelChecks(Strict):
    """Drift of the label column (class balance or target distribution), graded on its own."""

    psi: Threshold = Threshold(warn=0.05, fail=0.2)
    js: Threshold = Threshold(warn=0.05, fail=0.15)
    wasserstein: Threshold = Threshold(warn=0.1, fail=0.25)
    new_classes: Action = Field(default="fail", description="label values the base never had")


class NullChecks(Strict):
    max_increase: Threshold = Field(
        default=Threshold(warn=0.02, fail=0.10),
        description="relative to base: increase of a column's null rate, head minus base",
    )
    max_rate: Threshold = Field(default=Threshold(), description="absolute: a column's null rate in the head")
    all_null: Action = Field(default="warn", description="a column with no values at all")


class RowChecks(Strict):
    min: int | None = Field(default=None, ge=0, description="absolute: fewer rows than this fails")
    max_change: Threshold = Field(
        default=Threshold(warn=0.5), description="relative to base: |head rows - base rows| / base rows"
    )


class SchemaChecks(Strict):
    added: Action = "warn"
    removed: Action = "fail"
    retyped: Action = "fail"
    mixed_types: Action = Field(default="warn", description="a CSV column holding numbers and text")


class ColumnChecks(Strict):
    """Overrides for one column; what is left out falls back to the defaults above."""

    psi: Threshold | None = None
    js: Threshold | None = None
    wasserstein: Threshold | None = None
    max_null_increase: Threshold | None = None
    max_null_rate: Threshold | None = None


class ChecksConfig(Strict):
    enabled: bool = True
    drift: DriftChecks = DriftChecks()
    label: LabelChecks = LabelChecks()
    nulls: NullChecks = NullChecks()
    rows: RowChecks = RowChecks()
    schema_: SchemaChecks = Field(default=SchemaChecks(), alias="schema")
    columns: dict[str, ColumnChecks] = Field(default={}, description="per-column overrides")
    ignore_columns: list[str] = []
    max_categories: int = Field(default=1000, ge=10, le=100_000,
                                description="distinct values counted exactly per column; beyond, approximate")
    sample_size: int = Field(default=16_384, ge=256, le=1_000_000,
                             description="rows kept for quantiles and Wasserstein distance")
    memory_limit_mb: int = Field(default=1024, ge=64, description="memory profiling may use; files stream")
    suites: SuitesConfig = Field(
        default=SuitesConfig(),
        description="deepchecks suites, run in their own environment: data_integrity and "
        "train_test_validation on the head's train and eval data, model_evaluation on the candidate",
    )


class DataConfig(Strict):
    train: RelPath = Field(description="training data (CSV or Parquet), usually DVC-tracked")
    eval: RelPath = Field(description="evaluation data, same columns as train")
    label: str = Field(min_length=1, description="the target column")
    format: Literal["auto", "csv", "parquet"] = "auto"


# An image pinned by digest: [registry[:port]/]path[:tag]@sha256:<64 hex>. A tag alone can
# move under a running training; a digest names one image for good.
IMAGE_DIGEST_RE = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$"
)
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Values that reach an Argo parameter are substituted into manifest text: keep them plain.
UNSAFE_CHARS = set("\"'\\{}`$ \t\r\n")


def _plain_value(value: str, what: str) -> str:
    bad = sorted(set(value) & UNSAFE_CHARS)
    if bad or not value:
        raise ValueError(f"{what} {value!r} is empty or holds {bad}: write it without spaces, quotes, "
                         "backslashes, braces, '$' or '`'")
    return value


def _image_digest(value: str) -> str:
    if not IMAGE_DIGEST_RE.match(value):
        raise ValueError(
            f"image {value!r} is not pinned by digest (a tag can move under a running training): "
            "write name@sha256:<64 hex digits>, "
            "e.g. ghcr.io/acme/churn-train@sha256:...; `docker buildx imagetools inspect <image>` "
            "prints the digest of a pushed tag"
        )
    return value


def _namespace(value: str) -> str:
    if not DNS_LABEL_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes namespace: 1-63 lowercase letters, digits and '-'")
    return value


def _template_name(value: str) -> str:
    if len(value) > 253 or not DNS_SUBDOMAIN_RE.match(value):
        raise ValueError(f"{value!r} is not a WorkflowTemplate name: lowercase letters, digits, '-' and '.'")
    return value


def _https_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    local = parts.scheme == "http" and (parts.hostname or "") in ("localhost", "127.0.0.1", "::1")
    if not parts.netloc or (parts.scheme != "https" and not local):
        raise ValueError(f"{value!r} is not an https:// URL (plain http is accepted for localhost only)")
    if parts.username or parts.password:
        raise ValueError(f"{value!r} holds credentials: remove them; the token comes from ARGO_TOKEN")
    return value.rstrip("/")


def _clone_url(value: str) -> str:
    from urllib.parse import urlsplit

    _plain_value(value, "repo")
    if value.startswith("-"):
        raise ValueError(f"repo {value!r} must not start with '-'")
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.password is not None:
        raise ValueError(
            f"repo {value!r} holds a password or token: remove it from the URL; give private "
            "repositories' credentials to the templates through a Secret (argo/README.md)"
        )
    if parts.scheme not in ("https", "http", "ssh", "git", "file") and not re.match(r"^[\w.-]+@[\w.-]+:", value):
        raise ValueError(f"repo {value!r} is not a git clone URL: use https://..., ssh://... or git@host:path")
    return value


def _storage_uri(value: str) -> str:
    _plain_value(value, "checkpoint_uri")
    if not re.match(r"^[a-z][a-z0-9+.-]*://.", value):
        raise ValueError(
            f"checkpoint_uri {value!r} has no scheme: use a location every training pod reaches, "
            "e.g. s3://bucket/checkpoints or gs://bucket/checkpoints"
        )
    return value.rstrip("/")


ImageDigest = Annotated[str, AfterValidator(_image_digest)]
Namespace = Annotated[str, AfterValidator(_namespace)]
HttpsUrl = Annotated[str, AfterValidator(_https_url)]
CloneUrl = Annotated[str, AfterValidator(_clone_url)]
StorageUri = Annotated[str, AfterValidator(_storage_uri)]
TemplateName = Annotated[str, AfterValidator(_template_name)]


# The WorkflowTemplates in argo/: one pod with torchrun, or a JobSet across nodes.
ARGO_TEMPLATES = {"torchrun": "mlops-ci-train-torchrun", "jobset": "mlops-ci-train-jobset"}


class ArgoConfig(Strict):
    """Training as an Argo Workflow on Kubernetes (train.backend: argo), from the templates in argo/.

    The Argo token is read from the environment variable ARGO_TOKEN, never from this file.
    """

    transport: Literal["server", "kubernetes"] = Field(
        default="server", description="'server': the Argo Server's REST API at server_url; "
        "'kubernetes': the Kubernetes API (kubeconfig or in-cluster service account)")
    server_url: HttpsUrl | None = Field(default=None, description="Argo Server base URL (https://...), "
                                        "needed by transport 'server'")
    namespace: Namespace = Field(default="mlops-ci", description="namespace of the Workflows and templates")
    context: str | None = Field(default=None, description="kubeconfig context (transport 'kubernetes')")
    template: TemplateName | None = Field(
        default=None, description="WorkflowTemplate to run; default: mlops-ci-train-torchrun when nodes "
        "is 1, else mlops-ci-train-jobset")
    image: ImageDigest = Field(description="training image pinned by digest: name@sha256:<64 hex>",
                               json_schema_extra={"pattern": IMAGE_DIGEST_RE.pattern})
    repo: CloneUrl | None = Field(default=None, description="clone URL of this repository; default: "
                                  "the origin remote (or the GitHub repository in Actions)")
    nodes: int = Field(default=1, ge=1, le=64, description="pods (nodes) per training run")
    gpus_per_node: int = Field(default=1, ge=0, le=16, description="nvidia.com/gpu per pod; 0 trains on CPU")
    checkpoint_uri: StorageUri | None = Field(
        default=None, description="where runs save checkpoints (s3://, gs://, ...); each run uses "
        "<checkpoint_uri>/<model>/<workflow name>. Needed when nodes > 1")
    ui_url: HttpsUrl | None = Field(default=None, description="Argo UI base URL for links in the report; "
                                    "default: server_url")
    insecure_skip_tls_verify: bool = Field(default=False, description="do not verify the server's TLS "
                                           "certificate (a port-forward to a self-signed server only)")
    ca_file: str | None = Field(default=None, description="CA bundle that signed the server's certificate")
    timeout_minutes: float | None = Field(
        default=None, gt=0, le=10080, description="the Workflow's activeDeadlineSeconds, in minutes; "
        "default: train.timeout_minutes")

    @model_validator(mode="before")
    @classmethod
    def _no_token(cls, data):
        if isinstance(data, dict) and any(k in data for k in ("token", "argo_token", "bearer_token")):
            raise ValueError("a token does not belong in .mlops-ci.yaml: remove it and set the "
                             "environment variable ARGO_TOKEN (a repository secret in GitHub Actions)")
        return data


class TrainConfig(Strict):
    backend: Literal["torchrun", "argo"] = Field(
        default="torchrun", description="'torchrun' on this machine, or 'argo': a Workflow on Kubernetes "
        "(needs the argo section)")
    script: RelPath = "train.py"
    args: list[str] = []
    nproc_per_node: int = Field(default=2, ge=1, le=64)
    timeout_minutes: float = Field(default=60, gt=0)
    env: dict[str, str] = Field(default={}, description="extra environment for the training processes")
    argo: ArgoConfig | None = Field(default=None, description="where and how to train on Argo Workflows")


class Gate(Strict):
    min: float | None = Field(default=None, description="the candidate's metric must be >= min")
    max: float | None = Field(default=None, description="the candidate's metric must be <= max")
    max_regression: float | None = Field(
        default=None,
        ge=0,
        description="how much worse than the champion the candidate may be, in the metric's "
        "own direction (higher-is-better metrics may drop by at most this much)",
    )


Task = Literal["binary_classification", "regression"]


class EvaluationConfig(Strict):
    task: Task = "binary_classification"
    metrics: list[str] | None = Field(default=None, description="default: every metric of the task")
    threshold: float = Field(default=0.5, gt=0, lt=1, description="decision threshold for class metrics")
    gates: dict[str, Gate] = {}
    champion_env: Name | None = Field(
        default=None, description="environment whose alias holds the champion (default: promotion.on_merge)"
    )
    no_champion: Literal["pass", "fail"] = Field(
        default="pass",
        description="bootstrap policy when no champion exists: 'pass' lets the first model through",
    )


# A Kubernetes resource quantity: a plain or decimal number with an optional suffix
# (binary Ki..Ei, decimal n, u, m, k, M..E, or an exponent), as the API server parses it.
QUANTITY_RE = re.compile(r"^(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_QUANTITY_SCALE = {"": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
                   "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity_value(text: str) -> float | None:
    """The number a Kubernetes quantity stands for (1Gi -> 1073741824.0); None if it is not one."""
    match = QUANTITY_RE.match(text)
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
    if not IMAGE_DIGEST_RE.match(value):
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


class ModelConfig(Strict):
    paths: list[RelPath] = Field(
        default=["."], description="files and folders whose change affects this model"
    )
    params: RelPath = "params.yaml"
    data: DataConfig
    checks: ChecksConfig = ChecksConfig()
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    serving: ServingConfig = ServingConfig()


class EnvironmentConfig(Strict):
    namespace: Name
    alias: Name | None = Field(default=None, description="MLflow alias for this environment (default: its name)")
    promote_via: Literal["push", "pull_request"] | None = Field(
        default=None, description="'push': a promotion commits to gitops.branch; 'pull_request': it commits to "
        "its own branch and opens a pull request in the GitOps repository (needs gitops.github_repository "
        "or a github.com remote). Default: pull_request for an environment named prod or production when "
        "the GitOps repository is on GitHub, push otherwise")


class TrackingConfig(Strict):
    uri: str | None = Field(
        default=None,
        description="MLflow tracking URI; default: SQLite under .mlops-ci/ (MLFLOW_TRACKING_URI overrides)",
    )


class GitOpsConfig(Strict):
    remote: str | None = Field(
        default=None, description="git URL or path of the GitOps repository; default: .mlops-ci/gitops.git"
    )
    branch: str = "main"
    path: RelPath = Field(default="environments", description="folder holding one kustomize overlay per environment")
    author_name: str = "mlops-ci"
    author_email: str = "mlops-ci@users.noreply.github.com"
    github_repository: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$",
        description="owner/name of the GitOps repository on GitHub, where promotions via pull request "
        "open them (default: taken from a github.com remote); the token comes from MLOPS_CI_GITOPS_TOKEN, "
        "else GITHUB_TOKEN")


class PromotionConfig(Strict):
    on_merge: Name | None = Field(default=None, description="environment promoted when a change merges")


class Config(Strict):
    """Root of `.mlops-ci.yaml`."""

    version: Literal[1] = Field(description="schema version of this file; write 1")
    default_branch: str = "main"
    tracking: TrackingConfig = TrackingConfig()
    gitops: GitOpsConfig = GitOpsConfig()
    environments: dict[Name, EnvironmentConfig] = Field(min_length=1)
    promotion: PromotionConfig = PromotionConfig()
    models: dict[Name, ModelConfig] = Field(min_length=1)

    def alias_for(self, env: str) -> str:
        return self.environments[env].alias or env

    def champion_env(self, model: str) -> str | None:
        return self.models[model].evaluation.champion_env or self.promotion.on_merge


def json_schema() -> dict:
    schema = Config.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = ".mlops-ci.yaml"
    return schema
