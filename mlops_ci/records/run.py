"""The RunRecord document: one versioned JSON per run, written atomically with secrets masked, read
back as untrusted input (size-capped, validated against these models, unknown keys refused)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from mlops_ci import __version__
from mlops_ci.errors import RecordError
from mlops_ci.masking import mask, masker
from mlops_ci.records.base import (MAX_RECORD_BYTES, RECORD_SCHEMA_VERSION, Ident, Message, ModelName, Record, Status,
                                   utc_now, worst)
from mlops_ci.records.checks import ChecksRecord
from mlops_ci.records.context import Context, ModelPlan
from mlops_ci.records.features import FeaturesRecord
from mlops_ci.records.model import EvaluationRecord, RegistrationRecord, TrainingRecord
from mlops_ci.records.promotion import PromotionRecord, PromotionRequest
from mlops_ci.records.serving import ServingCheckRecord

Provenance = Literal["trusted", "pull_request"]


class StageFailure(Record):
    """Why a run stopped: the stage, the model (if any) and the one-line error."""

    stage: Ident
    model: ModelName | None = None
    message: Message
    exit_code: int


# the stages a model's results are keyed by, in the order they run (mlops_ci.pipeline.STAGES follows it:
# a new stage adds its name here and its result type below)
STAGE_NAMES = ("check", "train", "evaluate", "serve", "register", "deployment")
# every stage's result type, told apart by ``kind``
StageResult = Annotated[ChecksRecord | TrainingRecord | EvaluationRecord | ServingCheckRecord | RegistrationRecord
                        | PromotionRecord,
                        Field(discriminator="kind")]


class ModelRecord(Record):
    """A model's plan and its stages' results, keyed by stage name (mlops_ci.pipeline.STAGES), in the
    order the stages ran; the promotions made since. The verdict is the worst result's."""

    model: ModelName
    plan: ModelPlan
    results: dict[Ident, StageResult] = Field(default={}, max_length=50)
    promotions: list[PromotionRecord] = Field(default=[], max_length=20)

    def result(self, stage: str) -> StageResult | None:
        return self.results.get(stage)

    def ordered_results(self) -> list[tuple[str, StageResult]]:
        """The results in stage order (:data:`STAGE_NAMES`), whatever order the stages ran in."""
        rank = {name: i for i, name in enumerate(STAGE_NAMES)}
        return sorted(self.results.items(), key=lambda item: rank.get(item[0], len(rank)))

    def set_result(self, stage: str, value: StageResult | None) -> None:
        """Record (or, with None, forget) ``stage``'s result."""
        if value is None:
            self.results.pop(stage, None)
        else:
            self.results[stage] = value

    # the results of the stages every run knows, by name
    checks = property(lambda self: self.results.get("check"), lambda self, v: self.set_result("check", v))
    training = property(lambda self: self.results.get("train"), lambda self, v: self.set_result("train", v))
    evaluation = property(lambda self: self.results.get("evaluate"), lambda self, v: self.set_result("evaluate", v))
    serving = property(lambda self: self.results.get("serve"), lambda self, v: self.set_result("serve", v))
    registration = property(lambda self: self.results.get("register"), lambda self, v: self.set_result("register", v))
    deployment_plan = property(lambda self: self.results.get("deployment"),
                               lambda self, v: self.set_result("deployment", v))

    @property
    def verdict(self) -> Status:
        return worst(v for r in self.results.values() if (v := r.verdict) is not None)

    @model_validator(mode="before")
    @classmethod
    def _by_stage(cls, data):
        """Schema 1 kept one field per stage (``checks=``, ``training=``, ...; also what a caller may
        pass by name): moved into ``results``, keyed by stage, in stage order."""
        if isinstance(data, dict) and any(f in data for f in _V1_FIELDS):
            data = dict(data)
            results = dict(data.get("results") or {})
            for field, stage in _V1_FIELDS.items():
                value = data.pop(field, None)
                if value is not None:
                    results[stage] = value
            data["results"] = results
        return data


# schema 1 kept one field per stage; schema 2 keys them by stage
_V1_FIELDS = {"checks": "check", "training": "train", "evaluation": "evaluate", "registration": "register",
              "deployment_plan": "deployment"}
_V1_KINDS = {"check": "checks", "train": "training", "evaluate": "evaluation", "register": "registration",
             "deployment": "promotion"}


def _upgrade_v1(data: dict) -> dict:
    """A schema-1 record's data as schema 2: each result gets its ``kind`` (ModelRecord moves them
    under ``results``)."""
    for entry in (data.get("models") or {}).values() if isinstance(data.get("models"), dict) else ():
        if isinstance(entry, dict):
            for field, stage in _V1_FIELDS.items():
                if isinstance(entry.get(field), dict):
                    entry[field] = {"kind": _V1_KINDS[stage], **entry[field]}
    return {**data, "schema_version": RECORD_SCHEMA_VERSION}


class RunRecord(Record):
    """One run's document. Its provenance is not part of it: the loader sets it from where the file
    came from (an artifact of a pull request's run is "pull_request"), never from its content."""

    schema_version: Literal[2] = RECORD_SCHEMA_VERSION
    tool_version: Ident = __version__
    created_at: Ident = Field(default_factory=utc_now)
    updated_at: Ident = Field(default_factory=utc_now)
    context: Context
    models: dict[ModelName, ModelRecord] = Field(default={}, max_length=200)
    promotion_requests: list[PromotionRequest] = Field(default=[], max_length=200)
    features: FeaturesRecord | None = None  # the feature repository's plan (one per run, shared by the models)
    failure: StageFailure | None = None  # the run stopped with an error: nothing will be deployed
    # where the registry lives: "shared" (a tracking server) or "embedded" (SQLite in this checkout,
    # gone with the job: a pull request run without the registry's secret evaluates without the champion)
    registry: Literal["shared", "embedded"] = "embedded"
    _provenance: Provenance = PrivateAttr(default="trusted")

    @property
    def provenance(self) -> Provenance:
        """"trusted" (made by mlops-ci in a trusted job, or on this machine) or "pull_request" (made
        where a pull request's code ran: its verdict is the pull request's word)."""
        return self._provenance

    @property
    def verdict(self) -> Status:
        if self.failure is not None:
            return "fail"
        return worst([*(m.verdict for m in self.models.values()), *(r.status for r in self.promotion_requests),
                      *([self.features.status] if self.features is not None else [])])

    def model(self, name: str) -> ModelRecord:
        try:
            return self.models[name]
        except KeyError:
            if self.failure is not None:
                raise RecordError(f"the run record has no entry for model {name!r}: its run stopped at "
                                  f"{self.failure.stage}: {self.failure.message}",
                                  hint="fix that, then run `mlops-ci run` again") from None
            raise RecordError(
                f"the run record has no entry for model {name!r} (it has: {sorted(self.models) or 'none'})",
                hint="run `mlops-ci check` or `mlops-ci train` for that model first",
            ) from None


def _masked(value, mask_text):
    """Every string of a JSON tree masked before it is encoded (a secret with a quote, a backslash
    or a non-ASCII character would be escaped out of the masker's sight by json.dumps)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {_masked(k, mask_text): _masked(v, mask_text) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, mask_text) for v in value]
    return value


def save_record(record: RunRecord, path: Path) -> Path:
    """Write the record atomically, with secrets masked."""
    record.updated_at = utc_now()
    tree = _masked(record.model_dump(mode="json"), masker())
    return write_text_atomic(path, json.dumps(tree, indent=2, sort_keys=False) + "\n")


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


def load_record(path: Path, *, max_bytes: int = MAX_RECORD_BYTES, provenance: Provenance = "trusted") -> RunRecord:
    """Read a record as untrusted input: capped in size and validated against the schema.
    ``provenance`` says where it came from (the caller knows; the file never says)."""
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
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError, and integers over 4300 digits
        raise RecordError(f"{path}: not a JSON run record ({str(err)[:200]})") from err
    except RecursionError as err:
        raise RecordError(f"{path}: not a run record: nested too deeply") from err
    if not isinstance(data, dict):
        raise RecordError(f"{path}: a run record is a JSON object, got {type(data).__name__}")
    if data.get("schema_version") == 1:
        data = _upgrade_v1(data)
    if data.get("schema_version") != RECORD_SCHEMA_VERSION:
        raise RecordError(
            f"{path}: run record schema_version {data.get('schema_version')!r} is not supported "
            f"(this mlops-ci reads versions 1 and {RECORD_SCHEMA_VERSION})",
            hint="produce the record with the same mlops-ci version that reports it",
        )
    try:
        record = RunRecord.model_validate(data)
    except RecursionError as err:
        raise RecordError(f"{path}: not a run record: nested too deeply") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RecordError(f"{path}: invalid run record at {where}: {first['msg']} "
                          f"({err.error_count()} problem(s))") from None
    record._provenance = provenance
    return record
