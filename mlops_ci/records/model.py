"""A model's training, evaluation and registration results."""

from __future__ import annotations

from typing import Literal

from pydantic import field_serializer

from mlops_ci.checks.suites.models import SuiteResult
from mlops_ci.records.base import Record, Status, _float_out

class Fingerprint(Record):
    """What a trained model is a function of: sha256 per component and over all of them.

    Components: code (git blob ids of the model's files), data (content ids), params (the params
    file), settings (the training and evaluation settings of the config), image (the training
    image digest, or the trainer kind), read from ``source`` (the work tree, or a commit). No
    digest when a data file has no content id or git cannot list the files: such a model is
    always trained."""

    digest: str | None = None
    components: dict[str, str] = {}
    source: str | None = None  # "the work tree" or "commit <sha>": what was fingerprinted
    unavailable: str | None = None  # why there is no digest
    compared_with: str | None = None  # the model it was compared with ("champion v3", "v5")
    changed: list[str] = []  # components that differ from that model's
    note: str | None = None  # the comparison in one sentence, for the report


class TrainingRecord(Record):
    status: Literal["succeeded", "failed", "skipped"]
    backend: str
    skip_reason: str | None = None
    run_id: str | None = None
    experiment_id: str | None = None
    model_uri: str | None = None
    command: list[str] = []
    nproc_per_node: int | None = None
    duration_s: float = 0.0
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    run_url: str | None = None
    workflow: str | None = None  # the Argo Workflow that trained it (remote trainers)
    workflow_url: str | None = None  # its page in the Argo UI
    error: str | None = None
    history: list[dict[str, float]] = []  # the training curve from MLflow: one dict per logged step
    fingerprint: Fingerprint | None = None
    # skipped because a model was trained from identical inputs before: that model is reused
    reused: ReusedModel | None = None

    _ser = field_serializer("metrics")(lambda self, v: {k: _float_out(x) for k, x in v.items()})


class ReusedModel(Record):
    """A model trained earlier from exactly this candidate's inputs (same fingerprint), reused
    instead of training again: a registered version, or a finished run not registered (yet).
    Its lineage comes from the registry's tags, written by the job that trained it."""

    name: str
    run_id: str
    model_uri: str
    version: str | None = None
    champion: bool = False  # it is the champion itself
    alias: str | None = None  # the champion's alias, when it is the champion
    source_commit: str | None = None  # the commit it was trained at
    source_pr: int | None = None  # the pull request whose run trained it
    origin: Literal["pull_request", "trusted"] | None = None

    @property
    def label(self) -> str:
        return f"v{self.version}" if self.version else f"run {self.run_id}"


class ChampionRef(Record):
    name: str
    version: str
    alias: str
    run_id: str | None = None
    model_uri: str


class MetricComparison(Record):
    name: str
    higher_is_better: bool
    candidate: float | None = None
    champion: float | None = None

    _ser = field_serializer("candidate", "champion")(lambda self, v: _float_out(v))

    @property
    def delta(self) -> float | None:
        if self.candidate is None or self.champion is None:
            return None
        return self.candidate - self.champion


class GateResult(Record):
    metric: str
    kind: Literal["min", "max", "max_regression", "finite", "champion", "suite"]
    threshold: float | None = None
    value: float | None = None
    status: Literal["pass", "fail", "skipped"]
    message: str

    _ser = field_serializer("value")(lambda self, v: _float_out(v))


class ClaimedResult(Record):
    """What a pull request's own run (without registry access: a fork) reported for the same inputs.
    Its word only: shown beside the reproduction, never used to decide anything."""

    pr: int
    head_sha: str
    metrics: dict[str, float] = {}


class EvaluationRecord(Record):
    status: Status
    dataset: str
    dataset_md5: str | None = None
    rows: int = 0
    candidate_uri: str
    champion: ChampionRef | None = None
    champion_state: Literal["present", "none", "unusable"] = "none"
    no_champion_policy: Literal["pass", "fail"] = "pass"
    metrics: list[MetricComparison] = []
    gates: list[GateResult] = []
    suites: list[SuiteResult] = []
    duration_s: float = 0.0
    reused: ReusedModel | None = None  # the model evaluated was reused, not trained by this run
    recorded: bool = False  # the metrics are the ones recorded in the registry, not computed again
    claims: list[ClaimedResult] = []  # what pull requests reported for these inputs (the reproduction's reference)
    notes: list[str] = []  # what a reviewer should know about these numbers (e.g. labels scored as probabilities)


class RegistrationRecord(Record):
    name: str
    version: str
    source: str
    artifact_uri: str
    digest: str
    run_id: str | None = None
    reused: bool = False  # an existing version (trained from the same inputs): nothing new was registered
    override: str | None = None  # registered by promote --force --reason although its gates failed
