"""A model's training, evaluation and registration results."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_serializer

from mlops_ci.records.base import (ContentId, Digest, Ident, Message, ModelName, PathText, PrNumber, Record, RunId,
                                   Sha, Status, UriText, Version, float_out)
from mlops_ci.records.suites import SuiteResult

MAX_HISTORY = 500
MAX_METRICS = 1000

class Fingerprint(Record):
    """What a trained model is a function of: sha256 per component and over all of them.

    Components: code (git blob ids of the model's files), data (content ids), params (the params
    file), settings (the training and evaluation settings of the config), image (the training
    image digest, or the trainer kind), read from ``source`` (the work tree, or a commit). No
    digest when a data file has no content id or git cannot list the files: such a model is
    always trained."""

    digest: Digest | None = None
    components: dict[Literal["code", "data", "params", "settings", "image"], Digest] = {}
    source: Ident | None = None  # "the work tree" or "commit <sha>": what was fingerprinted
    unavailable: Message | None = None  # why there is no digest
    compared_with: Ident | None = None  # the model it was compared with ("champion v3", "v5")
    changed: list[Literal["code", "data", "params", "settings", "image"]] = Field(default=[], max_length=5)
    note: Message | None = None  # the comparison in one sentence, for the report


class TrainingRecord(Record):
    """The train stage's result."""

    kind: Literal["training"] = "training"
    status: Literal["succeeded", "failed", "skipped"]
    backend: Ident
    skip_reason: Message | None = None
    run_id: RunId | None = None
    experiment_id: RunId | None = None
    model_uri: UriText | None = None
    command: list[Message] = Field(default=[], max_length=500)
    nproc_per_node: int | None = None
    duration_s: float = 0.0
    params: dict[Ident, Message] = Field(default={}, max_length=MAX_METRICS)
    metrics: dict[Ident, float] = Field(default={}, max_length=MAX_METRICS)
    run_url: UriText | None = None
    workflow: Ident | None = None  # the Argo Workflow that trained it (remote trainers)
    workflow_url: UriText | None = None  # its page in the Argo UI
    error: Message | None = None
    # the training curve from MLflow: one dict per logged step
    history: list[dict[Ident, float]] = Field(default=[], max_length=MAX_HISTORY)
    fingerprint: Fingerprint | None = None
    # skipped because a model was trained from identical inputs before: that model is reused
    reused: ReusedModel | None = None

    _ser = field_serializer("metrics")(lambda self, v: {k: float_out(x) for k, x in v.items()})

    @property
    def verdict(self) -> Status:
        return {"succeeded": "pass", "failed": "fail", "skipped": "skipped"}[self.status]


class ReusedModel(Record):
    """A model trained earlier from exactly this candidate's inputs (same fingerprint), reused
    instead of training again: a registered version, or a finished run not registered (yet).
    Its lineage comes from the registry's tags, written by the job that trained it."""

    name: ModelName
    run_id: RunId
    model_uri: UriText
    version: Version | None = None
    champion: bool = False  # it is the champion itself
    alias: Ident | None = None  # the champion's alias, when it is the champion
    source_commit: Sha | None = None  # the commit it was trained at
    source_pr: PrNumber | None = None  # the pull request whose run trained it
    origin: Literal["pull_request", "trusted"] | None = None

    @property
    def label(self) -> str:
        return f"v{self.version}" if self.version else f"run {self.run_id}"


class ChampionRef(Record):
    name: ModelName
    version: Version
    alias: Ident
    run_id: RunId | None = None
    model_uri: UriText


class MetricComparison(Record):
    name: Ident
    higher_is_better: bool
    candidate: float | None = None
    champion: float | None = None

    _ser = field_serializer("candidate", "champion")(lambda self, v: float_out(v))

    @property
    def delta(self) -> float | None:
        if self.candidate is None or self.champion is None:
            return None
        return self.candidate - self.champion


class GateResult(Record):
    metric: Ident
    kind: Literal["min", "max", "max_regression", "finite", "champion", "suite"]
    threshold: float | None = None
    value: float | None = None
    status: Literal["pass", "fail", "skipped"]
    message: Message

    _ser = field_serializer("value")(lambda self, v: float_out(v))


class ClaimedResult(Record):
    """What a pull request's own run (without registry access: a fork) reported for the same inputs.
    Its word only: shown beside the reproduction, never used to decide anything."""

    pr: PrNumber
    head_sha: Sha
    metrics: dict[Ident, float] = Field(default={}, max_length=MAX_METRICS)


class EvaluationRecord(Record):
    """The evaluate stage's result."""

    kind: Literal["evaluation"] = "evaluation"
    status: Status
    dataset: PathText
    dataset_md5: ContentId | None = None
    rows: int = 0
    candidate_uri: UriText
    champion: ChampionRef | None = None
    champion_state: Literal["present", "none", "unusable"] = "none"
    no_champion_policy: Literal["pass", "fail"] = "pass"
    metrics: list[MetricComparison] = Field(default=[], max_length=100)
    gates: list[GateResult] = Field(default=[], max_length=1000)
    suites: list[SuiteResult] = Field(default=[], max_length=3)
    duration_s: float = 0.0
    reused: ReusedModel | None = None  # the model evaluated was reused, not trained by this run
    recorded: bool = False  # the metrics are the ones recorded in the registry, not computed again
    # what pull requests reported for these inputs (the reproduction's reference)
    claims: list[ClaimedResult] = Field(default=[], max_length=5)
    # what a reviewer should know about these numbers (e.g. labels scored as probabilities)
    notes: list[Message] = Field(default=[], max_length=10)

    @property
    def verdict(self) -> Status:
        return self.status


class RegistrationRecord(Record):
    """The register stage's result: the version a passing candidate is (no verdict of its own)."""

    kind: Literal["registration"] = "registration"
    name: ModelName
    version: Version
    source: UriText
    artifact_uri: UriText
    digest: Digest
    run_id: RunId | None = None
    reused: bool = False  # an existing version (trained from the same inputs): nothing new was registered
    override: Message | None = None  # registered by promote --force --reason although its gates failed
    reference: PathText | None = None  # its run's artifact with the profiles monitoring compares with

    @property
    def verdict(self) -> None:
        return None
