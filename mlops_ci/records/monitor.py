"""What `mlops-ci monitor` found: the served version's traffic, window by window, against its
reference; the issue it keeps and the retraining it asked for. Versioned and validated like the
RunRecord (a record read back is untrusted input)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_serializer

from mlops_ci.records.base import (
    Ident,
    Message,
    ModelName,
    PathText,
    Record,
    RunId,
    Status,
    UriText,
    Version,
    float_out,
    utc_now,
)
from mlops_ci.records.checks import MAX_COLUMNS, ColumnSummary, Finding

MONITOR_SCHEMA_VERSION = 1
MAX_MONITOR_BYTES = 16 << 20
INSUFFICIENT = "insufficient data"
WindowStatus = Literal["pass", "warn", "fail", "insufficient data"]
_SEVERITY = {"pass": 0, "insufficient data": 1, "warn": 2, "fail": 3}


def worst_window(statuses) -> WindowStatus:
    """The worst of windows' statuses: no window, or only thin ones, is never ``pass``."""
    statuses = list(statuses)
    return max(statuses, key=_SEVERITY.__getitem__) if statuses else INSUFFICIENT


class LiveMetric(Record):
    name: Ident
    value: float | None
    gate_min: float | None = None
    gate_max: float | None = None
    status: Status = "pass"

    _ser = field_serializer("value", "gate_min", "gate_max")(lambda self, v: float_out(v))


class WindowResult(Record):
    start: Ident  # ISO 8601, UTC
    end: Ident
    rows: int = Field(ge=0)  # predicted rows (a request may hold several)
    requests: int = Field(ge=0)
    status: WindowStatus
    columns: list[ColumnSummary] = Field(default=[], max_length=MAX_COLUMNS)
    findings: list[Finding] = Field(default=[], max_length=2000)
    labelled: int = Field(default=0, ge=0)  # rows with a label joined
    metrics: list[LiveMetric] = Field(default=[], max_length=100)

    def drift_at_fail(self) -> bool:
        """A feature or the predictions drifted at fail (a schema, null or range finding included)."""
        return self.status == "fail" and (any(c.status == "fail" for c in self.columns) or any(
            f.status == "fail" for f in self.findings))

    def top_scores(self, n: int = 5) -> list[tuple[str, float]]:
        """The largest effect sizes of the window (column, max of PSI/JS/W), largest first."""
        scores = []
        for c in self.columns:
            values = [v for v in (c.psi, c.js, c.wasserstein) if isinstance(v, float)]
            if values:
                scores.append((c.column, max(values)))
        return sorted(scores, key=lambda kv: -kv[1])[:n]


class TrafficCounts(Record):
    objects: int = Field(default=0, ge=0)  # log objects read
    corrupt: int = Field(default=0, ge=0)  # skipped, each with a finding below
    requests: int = Field(default=0, ge=0)
    unanswered: int = Field(default=0, ge=0)
    orphans: int = Field(default=0, ge=0)
    undecodable: int = Field(default=0, ge=0)


class SkippedObject(Record):
    path: PathText
    reason: Message


class IssueAction(Record):
    action: Literal["created", "updated", "reopened", "closed", "unchanged", "written", "none"]
    number: int | None = Field(default=None, ge=1)
    url: UriText | None = None
    path: PathText | None = None  # the local publisher's file


class RetrainAction(Record):
    action: Literal["opened", "updated", "unchanged", "snoozed", "not needed", "not opened", "disabled", "failed"]
    reason: Message
    branch: Ident | None = None
    number: int | None = Field(default=None, ge=1)
    url: UriText | None = None
    commit: Ident | None = None


class MonitorRecord(Record):
    kind: Literal["monitor"] = "monitor"
    schema_version: Literal[1] = MONITOR_SCHEMA_VERSION
    created_at: Ident = Field(default_factory=utc_now)
    model: ModelName
    env: Ident
    version: Version
    run_id: RunId
    reference: Literal["stored", "computed"]  # computed: a version registered before references were kept
    logs: UriText
    window: Ident
    until: Ident
    status: WindowStatus
    windows: list[WindowResult] = Field(max_length=366)
    traffic: TrafficCounts = TrafficCounts()
    skipped: list[SkippedObject] = Field(default=[], max_length=50)
    problems: list[Message] = Field(default=[], max_length=5)
    issue: IssueAction | None = None
    retrain: RetrainAction | None = None

    def latest(self) -> WindowResult | None:
        """The last window with enough traffic to grade (a quiet or partial last window neither
        breaks nor continues what the ones before it say)."""
        return next((w for w in reversed(self.windows) if w.status != INSUFFICIENT), None)

    def streak(self) -> int:
        """Consecutive graded windows at the end whose drift is at fail (trailing windows with
        too little traffic skipped)."""
        count = 0
        graded = list(self.windows)
        while graded and graded[-1].status == INSUFFICIENT:
            graded.pop()
        for w in reversed(graded):
            if not w.drift_at_fail():
                break
            count += 1
        return count


class MonitorRecordError(ValueError):
    pass


def save_monitor_record(record: MonitorRecord, path: Path) -> None:
    from mlops_ci.records.run import write_text_atomic

    write_text_atomic(Path(path), record.model_dump_json(indent=2, by_alias=True) + "\n")


def load_monitor_record(path: Path) -> MonitorRecord:
    """Read a monitor record as untrusted input: capped in size, validated against the schema."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_MONITOR_BYTES:
        raise MonitorRecordError(f"{path}: {size} bytes is over the {MAX_MONITOR_BYTES}-byte limit for a "
                                 "monitor record")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise MonitorRecordError(f"{path}: not a JSON monitor record ({str(err)[:200]})") from err
    if not isinstance(data, dict) or data.get("schema_version") != MONITOR_SCHEMA_VERSION:
        raise MonitorRecordError(f"{path}: not a monitor record of schema_version {MONITOR_SCHEMA_VERSION}")
    try:
        return MonitorRecord.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MonitorRecordError(f"{path}: invalid monitor record at {where}: {first['msg']}") from None


__all__ = [
    "INSUFFICIENT", "IssueAction", "LiveMetric", "MonitorRecord", "MonitorRecordError", "RetrainAction",
    "SkippedObject", "TrafficCounts", "WindowResult", "load_monitor_record", "save_monitor_record",
    "worst_window",
]
