"""Typed records passed between stages, collected into one versioned RunRecord document.

The report is rendered only from a RunRecord, so `mlops-ci report` can run later and
elsewhere from an uploaded record. A record read from a file is untrusted input: it is
size-capped and validated against these models (unknown keys are refused).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import datetime, UTC
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from mlops_ci import __version__
from mlops_ci.checks.suites.models import SuiteResult
from mlops_ci.errors import RecordError
from mlops_ci.masking import mask

RECORD_SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 8 << 20

Status = Literal["pass", "warn", "fail", "skipped"]
_SEVERITY = {"skipped": 0, "pass": 1, "warn": 2, "fail": 3}


def worst(statuses) -> Status:
    statuses = list(statuses)
    if not statuses:
        return "skipped"
    return max(statuses, key=_SEVERITY.__getitem__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _float_out(value: float | None) -> float | str | None:
    # JSON has no NaN: keep it visible as a string instead of silently dropping it
    if value is not None and math.isnan(value):
        return "NaN"
    return value


class Context(Record):
    """Where and why we run: a local checkout or a GitHub Actions event."""

    source: Literal["local", "github"]
    event: str
    action: str | None = None  # the event's activity type (pull_request: opened, synchronize, closed, ...)
    repository: str | None = None
    default_branch: str
    base_sha: str | None = None
    head_sha: str
    ref: str | None = None
    pr_number: int | None = None
    pr_title: str | None = None  # untrusted text: escape before rendering
    actor: str | None = None
    fork: bool = False
    run_url: str | None = None
    comment: str | None = None  # issue_comment body, untrusted
    dirty: bool = False  # local only: uncommitted changes in the work tree


class DataVersion(Record):
    role: str  # "train" or "eval"
    path: str
    base_md5: str | None = None
    head_md5: str | None = None

    @property
    def changed(self) -> bool:
        return self.base_md5 != self.head_md5


class ModelPlan(Record):
    model: str
    stages: list[Literal["check", "train", "evaluate"]]
    reasons: list[str] = []
    skip_reason: str | None = None
    changed_paths: list[str] = []
    data: list[DataVersion] = []
    forced: bool = False  # --force: train even when nothing changed or the champion is identical


class Finding(Record):
    check: Literal["data", "rows", "schema", "types", "nulls", "drift", "label_drift", "suite"]
    dataset: str
    column: str | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    status: Status
    message: str

    _ser = field_serializer("value", "threshold")(lambda self, v: _float_out(v))


class ColumnSummary(Record):
    column: str
    kind: str
    base_type: str | None = None
    head_type: str | None = None
    base_null_rate: float | None = None
    head_null_rate: float | None = None
    psi: float | None = None
    js: float | None = None
    wasserstein: float | None = None  # over the base's standard deviation
    status: Status = "pass"


class DatasetCheck(Record):
    role: str
    path: str
    base_md5: str | None = None
    head_md5: str | None = None
    base_rows: int | None = None
    head_rows: int | None = None
    cached: list[str] = []  # sides whose profile came from the cache ("base", "head")
    columns: list[ColumnSummary] = []


class ChecksRecord(Record):
    status: Status
    skip_reason: str | None = None
    base_sha: str | None = None
    head_sha: str | None = None
    datasets: list[DatasetCheck] = []
    findings: list[Finding] = []
    suites: list[SuiteResult] = []
    duration_s: float = 0.0


class Fingerprint(Record):
    """What a trained model is a function of: sha256 per component and over all of them.

    Components: code (git blob ids of the model's paths), data (content hashes), params (the
    params file), settings (the training and evaluation settings of the config), image (the
    training image digest, or the trainer kind). No digest when the work tree differs from the
    commit or a data file has no content hash: such a model is always trained."""

    digest: str | None = None
    components: dict[str, str] = {}
    unavailable: str | None = None  # why there is no digest
    champion_version: str | None = None  # the champion it was compared with
    changed: list[str] = []  # components that differ from the champion's
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
    history: list[dict[str, float]] = []  # the training curve: one dict per logged step
    fingerprint: Fingerprint | None = None
    # skipped because the champion was trained from identical inputs: its model and metrics are reused
    reused_from: ChampionRef | None = None

    _ser = field_serializer("metrics")(lambda self, v: {k: _float_out(x) for k, x in v.items()})


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
    reused_from: ChampionRef | None = None  # the champion's recorded metrics, not a new evaluation


class RegistrationRecord(Record):
    name: str
    version: str
    source: str
    artifact_uri: str
    digest: str
    run_id: str | None = None
    reused: bool = False  # the champion's existing version: nothing new was registered


class FileChange(Record):
    path: str
    action: Literal["create", "modify", "delete", "unchanged"]
    diff: str = ""


class PromotionRecord(Record):
    model: str
    env: str
    alias: str
    version: str
    artifact_uri: str
    digest: str
    dry_run: bool
    noop: bool
    changes: list[FileChange] = []
    remote: str
    branch: str
    base_commit: str | None = None  # the GitOps commit the change was planned against
    commit_sha: str | None = None  # the commit that serves this version (new, or the existing one for a no-op)
    forced_reason: str | None = None
    # the rollback hold marker in place: a real promotion needs --force (recorded here) and leaves it there
    on_hold: str | None = None
    # promotion via pull request: the branch pushed and the pull request opened (or found) in the GitOps
    # repository; the alias moves only once that pull request is merged
    pull_request: str | None = None
    # the GitHub Deployment recorded for this promotion in the ML repository (its API URL)
    deployment: str | None = None


class PromotionRequest(Record):
    """A pull request that changes a desired version in the promotions file: the plan a merge applies."""

    env: str
    model: str
    version: str
    previous: str | None = None  # the desired version at the base revision (None: newly declared)
    source: str  # file:line of the entry
    reason: str | None = None  # the entry's reason: promote although the gates failed (recorded)
    status: Status  # fail: unknown version, or failed gates without a reason; warn: forced or on hold
    gates: Literal["pass", "fail"]
    gate_summary: str = ""
    metrics: dict[str, str] = {}  # the version's evaluation metrics (registry tags)
    lineage: dict[str, str] = {}
    error: str | None = None
    plan: PromotionRecord | None = None


class RollbackRecord(Record):
    """`mlops-ci rollback`: a version restored in an environment (and held there), or a hold released."""

    model: str
    env: str
    alias: str
    action: Literal["revert", "re-pin", "clear-hold"]
    version: str | None = None  # the version now served (None for clear-hold)
    rollback_of: str | None = None  # the version that was served before
    reverted_commits: list[str] = []  # revert: the GitOps commits whose manifest changes were undone
    artifact_uri: str | None = None
    digest: str | None = None
    gates_passed: bool | None = None  # whether the restored version carries a passing mlops-ci evaluation
    reason: str | None = None
    actor: str
    hold_path: str
    dry_run: bool
    noop: bool = False  # nothing to commit (the version and its hold are already in place)
    changes: list[FileChange] = []
    remote: str
    branch: str
    base_commit: str | None = None
    commit_sha: str | None = None


class ModelRecord(Record):
    model: str
    plan: ModelPlan
    checks: ChecksRecord | None = None
    training: TrainingRecord | None = None
    evaluation: EvaluationRecord | None = None
    registration: RegistrationRecord | None = None
    deployment_plan: PromotionRecord | None = None
    promotions: list[PromotionRecord] = []

    @property
    def verdict(self) -> Status:
        parts: list[Status] = []
        if self.checks is not None:
            parts.append(self.checks.status)
        if self.training is not None:
            parts.append({"succeeded": "pass", "failed": "fail", "skipped": "skipped"}[self.training.status])
        if self.evaluation is not None:
            parts.append(self.evaluation.status)
        return worst(parts)


class RunRecord(Record):
    schema_version: Literal[1] = RECORD_SCHEMA_VERSION
    tool_version: str = __version__
    created_at: str = Field(default_factory=_now)
    updated_at: str = Field(default_factory=_now)
    context: Context
    models: dict[str, ModelRecord] = {}
    promotion_requests: list[PromotionRequest] = []

    @property
    def verdict(self) -> Status:
        return worst([*(m.verdict for m in self.models.values()), *(r.status for r in self.promotion_requests)])

    def model(self, name: str) -> ModelRecord:
        try:
            return self.models[name]
        except KeyError:
            raise RecordError(
                f"the run record has no entry for model {name!r} (it has: {sorted(self.models) or 'none'})",
                hint="run `mlops-ci check` or `mlops-ci train` for that model first",
            ) from None


def save_record(record: RunRecord, path: Path) -> Path:
    """Write the record atomically, with secrets masked."""
    record.updated_at = _now()
    return write_text_atomic(path, json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=False) + "\n")


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (secrets masked) to ``path`` so that readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(mask(text))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_record(path: Path, *, max_bytes: int = MAX_RECORD_BYTES) -> RunRecord:
    """Read a record as untrusted input: capped in size and validated against the schema."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise RecordError(f"{path}: no run record here",
                          hint="run `mlops-ci check`/`train`/`evaluate` first, or pass --record PATH") from None
    if size > max_bytes:
        raise RecordError(f"{path}: {size} bytes is over the {max_bytes}-byte limit for a run record")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RecordError(f"{path}: not a JSON run record ({err})") from err
    if not isinstance(data, dict):
        raise RecordError(f"{path}: a run record is a JSON object, got {type(data).__name__}")
    if data.get("schema_version") != RECORD_SCHEMA_VERSION:
        raise RecordError(
            f"{path}: run record schema_version {data.get('schema_version')!r} is not supported "
            f"(this mlops-ci reads version {RECORD_SCHEMA_VERSION})",
            hint="produce the record with the same mlops-ci version that reports it",
        )
    try:
        return RunRecord.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RecordError(f"{path}: invalid run record at {where}: {first['msg']} "
                          f"({err.error_count()} problem(s))") from None
