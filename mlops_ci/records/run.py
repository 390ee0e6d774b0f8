"""The RunRecord document: one versioned JSON per run, written atomically with secrets masked, read
back as untrusted input (size-capped, validated against these models, unknown keys refused)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from mlops_ci import __version__
from mlops_ci.errors import RecordError
from mlops_ci.masking import mask
from mlops_ci.records.base import MAX_RECORD_BYTES, RECORD_SCHEMA_VERSION, Record, Status, _now, worst
from mlops_ci.records.checks import ChecksRecord
from mlops_ci.records.context import Context, ModelPlan
from mlops_ci.records.model import EvaluationRecord, RegistrationRecord, TrainingRecord
from mlops_ci.records.promotion import PromotionRecord, PromotionRequest

class StageFailure(Record):
    """Why a run stopped: the stage, the model (if any) and the one-line error."""

    stage: str
    model: str | None = None
    message: str
    exit_code: int


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
    failure: StageFailure | None = None  # the run stopped with an error: nothing will be deployed
    # where the registry lives: "shared" (a tracking server) or "embedded" (SQLite in this checkout,
    # gone with the job: a pull request run without the registry's secret evaluates without the champion)
    registry: Literal["shared", "embedded"] = "embedded"

    @property
    def verdict(self) -> Status:
        if self.failure is not None:
            return "fail"
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
