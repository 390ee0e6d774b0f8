"""The `.mlops-ci.yaml` schema: pydantic models, also exported as a JSON Schema for editors.

Validation happens in two steps (see :mod:`mlops_ci.config.loader`): the models below check
shapes and types; :func:`mlops_ci.config.semantics.problems` then checks what spans fields
(a gate on a metric that is not computed, an environment that does not exist).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

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


class Resources(Strict):
    cpu: str = "1"
    memory: str = "2Gi"


class ServingConfig(Strict):
    model_format: str = "mlflow"
    protocol_version: Literal["v1", "v2"] = "v2"
    runtime: str | None = None
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    requests: Resources = Resources()
    limits: Resources = Resources(cpu="2", memory="4Gi")


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
