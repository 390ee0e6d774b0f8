"""The `.mlops-ci.yaml` schema: pydantic models, also exported as a JSON Schema for editors.

Validation happens in two steps (see :mod:`mlops_ci.config.loader`): the models check shapes
and types; :func:`mlops_ci.config.semantics.problems` then checks what spans fields (a gate on a
metric that is not computed, an environment that does not exist). This module holds the root
and the small sections; the large ones have their own modules (``base``: names, paths,
``Threshold``; ``checks``; ``training``; ``serving``; ``tracking``: tracking and GitOps) and every name is re-exported here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlops_ci.config.base import IMAGE_DIGEST_RE, NAME_RE, Action, Name, RelPath, Strict, Threshold
from mlops_ci.config.checks import (
    ChecksConfig,
    ColumnChecks,
    DriftChecks,
    LabelChecks,
    NullChecks,
    RowChecks,
    SchemaChecks,
)
from mlops_ci.config.features import FeatureEnvironment, FeaturesConfig, ModelFeatures, SkewCheck
from mlops_ci.config.monitoring import MonitoringConfig
from mlops_ci.config.policy import EnvironmentPolicy, FreezeWindow
from mlops_ci.config.rollout import ArgoCDConfig, RolloutConfig, RolloutStep
from mlops_ci.config.serving import (
    HPA_METRICS,
    KNATIVE_METRICS,
    QUANTITY_RE,
    SERVING_KINDS,
    Autoscaling,
    DeploymentServing,
    InferenceServiceServing,
    Quantity,
    Resources,
    ServerImage,
    ServingBase,
    ServingConfig,
    quantity_value,
)
from mlops_ci.config.serving_check import ServingCheck
from mlops_ci.config.tracking import GitOpsConfig, TrackingConfig
from mlops_ci.config.training import (
    ARGO_TEMPLATES,
    DNS_LABEL_RE,
    DNS_SUBDOMAIN_RE,
    UNSAFE_CHARS,
    ArgoConfig,
    CloneUrl,
    HttpsUrl,
    ImageDigest,
    Namespace,
    StorageUri,
    TemplateName,
    TrainConfig,
)

SCHEMA_VERSION = 1


class DataConfig(Strict):
    train: RelPath = Field(description="training data (CSV, JSON lines or Parquet), usually DVC-tracked")
    eval: RelPath = Field(description="evaluation data, same columns as train")
    label: str = Field(min_length=1, description="the target column")
    format: Literal["auto", "csv", "jsonl", "parquet"] = "auto"


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


class ModelConfig(Strict):
    paths: list[RelPath] = Field(
        default=["."], description="files and folders whose change affects this model"
    )
    params: RelPath = "params.yaml"
    data: DataConfig
    checks: ChecksConfig = ChecksConfig()
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    serving: ServingConfig = InferenceServiceServing()
    monitoring: MonitoringConfig = Field(default=MonitoringConfig(), description="served traffic against the "
                                         "served version's reference (`mlops-ci monitor`), and retraining")
    features: ModelFeatures | None = Field(default=None, description="the feature service it reads (needs the "
                                           "top-level `features` section)")


class EnvironmentConfig(Strict):
    namespace: Name
    alias: Name | None = Field(default=None, description="MLflow alias for this environment (default: its name)")
    promote_via: Literal["push", "pull_request"] | None = Field(
        default=None, description="'push': a promotion commits to gitops.branch; 'pull_request': it commits to "
        "its own branch and opens a pull request in the GitOps repository (needs gitops.github_repository "
        "or a github.com remote). Default: pull_request for an environment named prod or production when "
        "the GitOps repository is on GitHub, push otherwise")
    policy: EnvironmentPolicy = Field(default_factory=EnvironmentPolicy,
                                      description="what a promotion into this environment must respect (freeze windows)")
    rollout: RolloutConfig | None = Field(default=None, description="canary steps a new version goes through "
                                          "before it serves all traffic (default: one commit swaps it whole)")


class PromotionConfig(Strict):
    on_merge: Name | None = Field(default=None, description="environment promoted when a change merges")
    require_reviewed: bool = Field(
        default=False, description="after a merge, ship only a model a pull request run trained from the same "
        "inputs (same training fingerprint): when none exists, stop with 'not reviewed' instead of training")


class Config(Strict):
    """Root of `.mlops-ci.yaml`."""

    version: Literal[1] = Field(description="schema version of this file; write 1")
    default_branch: str = "main"
    tracking: TrackingConfig = TrackingConfig()
    gitops: GitOpsConfig = GitOpsConfig()
    environments: dict[Name, EnvironmentConfig] = Field(min_length=1)
    promotion: PromotionConfig = PromotionConfig()
    features: FeaturesConfig | None = Field(default=None, description="the Feast feature repository, planned in "
                                            "pull requests and applied before promotions")
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


__all__ = [
    "FeatureEnvironment",
    "FeaturesConfig",
    "FreezeWindow",
    "ModelFeatures",
    "SkewCheck",
    "ArgoCDConfig",
    "RolloutConfig",
    "RolloutStep",
    "ARGO_TEMPLATES",
    "DNS_LABEL_RE",
    "DNS_SUBDOMAIN_RE",
    "HPA_METRICS",
    "IMAGE_DIGEST_RE",
    "KNATIVE_METRICS",
    "NAME_RE",
    "QUANTITY_RE",
    "SCHEMA_VERSION",
    "SERVING_KINDS",
    "UNSAFE_CHARS",
    "Action",
    "ArgoConfig",
    "Autoscaling",
    "ChecksConfig",
    "CloneUrl",
    "ColumnChecks",
    "Config",
    "DataConfig",
    "DeploymentServing",
    "DriftChecks",
    "EnvironmentConfig",
    "EnvironmentPolicy",
    "EvaluationConfig",
    "Gate",
    "GitOpsConfig",
    "HttpsUrl",
    "ImageDigest",
    "InferenceServiceServing",
    "LabelChecks",
    "ModelConfig",
    "Name",
    "Namespace",
    "NullChecks",
    "PromotionConfig",
    "Quantity",
    "RelPath",
    "Resources",
    "RowChecks",
    "SchemaChecks",
    "ServerImage",
    "ServingBase",
    "ServingCheck",
    "ServingConfig",
    "StorageUri",
    "Strict",
    "Task",
    "TemplateName",
    "Threshold",
    "TrackingConfig",
    "TrainConfig",
    "json_schema",
    "quantity_value",
]
