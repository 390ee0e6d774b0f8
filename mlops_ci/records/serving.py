"""The serving check's result: the candidate (and the champion) served in the runtime KServe runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_serializer

from mlops_ci.records.base import Ident, Message, Record, Status, Version, float_out

# the latency percentiles kept for the report's distribution chart
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 100)


class Latency(Record):
    """A closed-loop load: ``requests`` sent by ``concurrency`` clients, each answered before its next."""

    requests: int = Field(ge=0)
    concurrency: int = Field(ge=1)
    errors: int = Field(default=0, ge=0)
    wall_s: float = Field(ge=0)
    p50_ms: float | None = None  # None: no request was answered
    p95_ms: float | None = None
    p99_ms: float | None = None
    rps: float
    percentiles_ms: list[float] = Field(default=[], max_length=len(PERCENTILES))  # at PERCENTILES


class ServedModel(Record):
    """One model served: how long it took to be ready, its latency, its peak memory."""

    role: Literal["candidate", "champion"]
    label: Ident  # "v3", "the candidate (run 1a2b3c4d)"
    version: Version | None = None
    ready_s: float | None = None  # process start to /v2/health/ready and the model ready
    peak_memory_bytes: int | None = Field(default=None, ge=0)  # every process of the runtime, sampled
    latency: Latency | None = None
    error: Message | None = None  # why it could not be measured (one line)
    log_tail: Message | None = None  # the runtime's last log lines, when it failed


class ParityMismatch(Record):
    """The first sample row whose served output differs from the evaluation's."""

    row: int = Field(ge=0)  # its position in the eval set
    inputs: dict[Ident, Message] = Field(default={}, max_length=200)
    served: list[float] = Field(default=[], max_length=100)
    expected: list[float] = Field(default=[], max_length=100)

    _ser = field_serializer("served", "expected")(lambda self, v: [float_out(x) for x in v])


class Parity(Record):
    rows: int = Field(ge=0)  # sample rows compared
    tolerance: float = Field(ge=0)
    max_abs_diff: float | None = None
    mismatches: int = Field(default=0, ge=0)
    first: ParityMismatch | None = None

    _ser = field_serializer("max_abs_diff")(lambda self, v: float_out(v))


class ServingFinding(Record):
    """One gate of ``serving.check`` graded."""

    check: Literal["parity", "requests", "p99_ms", "latency_ratio", "memory_share", "cold_start_s", "runtime"]
    status: Status
    value: float | None = None
    warn: float | None = None
    fail: float | None = None
    message: Message

    _ser = field_serializer("value")(lambda self, v: float_out(v))


class ServingCheckRecord(Record):
    """The serving check stage's result."""

    kind: Literal["serving"] = "serving"
    status: Status
    runtime: Ident | None = None  # "mlserver 1.7.1 (mlserver_mlflow.MLflowRuntime)"
    skip_reason: Message | None = None
    memory_limit_bytes: int | None = Field(default=None, ge=0)  # serving.limits.memory
    memory_limit_default: bool = False  # the limit is the default (the config does not set it)
    candidate: ServedModel | None = None
    champion: ServedModel | None = None
    parity: Parity | None = None
    findings: list[ServingFinding] = Field(default=[], max_length=50)
    order: Literal["sequential"] = "sequential"  # one server at a time: neither competes for the cores
    duration_s: float = 0.0
    notes: list[Message] = Field(default=[], max_length=10)
    recorded: bool = False  # the result recorded for this version against the same champion, not served again

    @property
    def verdict(self) -> Status:
        return self.status

    def summary(self) -> str:
        """The failed gates in one line (what a refused promotion names)."""
        return "; ".join(f.message for f in self.findings if f.status == "fail")
