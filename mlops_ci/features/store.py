"""The feature store, driven from the core: one function per operation of the Feast worker.

Each function (describe, plan, apply, historical, skew) makes sure the Feast environment exists
(:mod:`mlops_ci.features.env`), runs the worker (``feast_worker/mlops_ci_feast_worker.py``) there on
one request, keeping the request, the answer and the log in ``log_dir`` as ``feast-<op>.*``, and
returns its answer as frozen dataclasses, validated: the worker's output is untrusted. :func:`many`
runs several in one worker, importing Feast once:
    definitions, planned = many([("describe", {"repo": repo}), ("plan", {"repo": repo})], log_dir=logs)

``registry`` (a path or URI) and ``online_store`` (a SQLite path) replace feature_store.yaml's, so one
repository is planned and applied against each environment's. What the user can fix (a definition that
does not import, an unknown feature service, an entity table without its join keys) raises a
:class:`FeatureRepoError`, with the file and line when Python gives one; a worker that crashes, runs
past its timeout or answers garbage, a :class:`FeastError`. Nothing here imports Feast.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple, Required, TypedDict, Unpack

from mlops_ci.console import NullProgress, Progress
from mlops_ci.errors import BackendError, DataError, FatalError, InputError, NotFound
from mlops_ci.features import env as envs
from mlops_ci.features.feast_worker.mlops_ci_feast_common import EXIT_REQUEST, PROTOCOL
from mlops_ci.masking import mask
from mlops_ci.toolenv import ToolEnv, WorkerExited, WorkerFailed, call

WORKER = Path(__file__).with_name("feast_worker") / "mlops_ci_feast_worker.py"
TIMEOUT_S = 600.0
WORKER_ENV = {"PYTHONDONTWRITEBYTECODE": "1"}  # never a __pycache__ in the user's repository

Transition = Literal["CREATE", "DELETE", "UPDATE", "UNCHANGED"]


# --- errors ------------------------------------------------------------------------------------

class FeastError(BackendError):
    """The Feast worker gave no usable answer: it crashed, ran past its timeout, or wrote garbage."""


class FeatureRepoError(InputError):
    """The feature repository, its registry or an entity table cannot be used as it is.

    ``kind`` is the worker's (config, definitions, registry, data, not_found); ``file`` and ``line``
    point into the repository when Python or Feast gave them."""

    def __init__(self, message: str, *, kind: str = "definitions", file: str | None = None,
                 line: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind, self.file, self.line = kind, file, line


class FeatureNotFound(FeatureRepoError, NotFound):
    """A feature service (or view) the request named is not in the registry."""


class EntityTableError(FeatureRepoError, DataError):
    """An entity table cannot be read, or lacks the join keys or event_timestamp."""


_ERRORS: dict[str, type[FeatureRepoError]] = {"not_found": FeatureNotFound, "data": EntityTableError}


# --- what the worker answers -------------------------------------------------------------------

@dataclass(frozen=True)
class EntityDef:
    join_keys: tuple[str, ...]
    value_type: str  # Feast's ValueType name ("INT64"; "UNKNOWN" when the definition names none)


@dataclass(frozen=True)
class SourceDef:
    name: str
    path: str | None  # relative to the repository when inside it, else as written (a URI...)
    timestamp_field: str | None


@dataclass(frozen=True)
class ViewDef:
    kind: Literal["batch", "stream", "on_demand"]
    entities: tuple[str, ...]
    fields: dict[str, str]  # field -> Feast type ("Int64", "Float32", "Array(String)")
    ttl_s: float | None  # None: no TTL
    online: bool
    source: SourceDef | None  # None for on-demand views


@dataclass(frozen=True)
class ServiceDef:
    views: dict[str, tuple[str, ...]]  # view -> the fields the service reads from it


@dataclass(frozen=True)
class Definitions:
    """The repository's definitions as written (nothing inferred from the sources or a registry)."""

    project: str
    entities: dict[str, EntityDef]
    views: dict[str, ViewDef]
    services: dict[str, ServiceDef]
    source_files: dict[str, str]  # a local source's path (as in ViewDef.source.path) -> sha256
    warnings: tuple[str, ...] = ()  # "file:line: Category: message", from the definitions' files

    def as_json(self) -> dict[str, Any]:
        """The worker's ``describe`` answer, as :mod:`mlops_ci.features.diff` compares it."""
        data = dataclasses.asdict(self)
        del data["warnings"]
        return json.loads(json.dumps(data))


@dataclass(frozen=True)
class Change:
    property: str
    before: str
    after: str


@dataclass(frozen=True)
class ObjectChange:
    type: str  # Feast's words: "project", "data source", "entity", "feature view", "feature service"...
    name: str
    transition: Transition
    changes: tuple[Change, ...] = ()


def _transition(objects: tuple[ObjectChange, ...], name: str, type: str | None) -> Transition | None:
    return next((o.transition for o in objects if o.name == name and type in (None, o.type)), None)


@dataclass(frozen=True)
class Plan:
    """What `feast plan` shows: the registry's and the infrastructure's diff (plain text), and each object."""

    registry_diff: str
    infra_diff: str
    objects: tuple[ObjectChange, ...]
    warnings: tuple[str, ...] = ()

    @property
    def changed(self) -> tuple[ObjectChange, ...]:
        return tuple(o for o in self.objects if o.transition != "UNCHANGED")

    def transition(self, name: str, type: str | None = None) -> Transition | None:
        return _transition(self.objects, name, type)


@dataclass(frozen=True)
class ApplyResult:
    objects: tuple[ObjectChange, ...]
    materialized: tuple[str, ...]  # the feature views loaded into the online store
    warnings: tuple[str, ...] = ()
    refreshed: tuple[str, ...] = ()  # of those, loaded over their whole ttl (new, or their schema changed)

    def transition(self, name: str, type: str | None = None) -> Transition | None:
        return _transition(self.objects, name, type)


@dataclass(frozen=True)
class Materialize:
    """Load the online store up to ``end``: from ``start``, or incrementally (``start`` None: from
    each view's last load, the first time from ``end``'s run time less its TTL, as Feast does)."""

    end: dt.datetime
    start: dt.datetime | None = None


class HistoricalJob(NamedTuple):
    entities: Path  # Parquet: the join keys, event_timestamp, and any other columns (a label), kept
    out: Path  # Parquet: the entity table's rows in their order, then the service's features


@dataclass(frozen=True)
class HistoricalResult:
    out: Path
    rows: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Mismatch:
    entity: dict[str, Any]  # join key -> value
    feature: str  # "view:field"
    online: Any
    offline: Any


@dataclass(frozen=True)
class SkewReport:
    checked: int  # the entities compared
    at: dt.datetime  # the time the offline store was read at
    features: tuple[str, ...]
    mismatches: tuple[Mismatch, ...]  # the first 50
    mismatch_count: int


# --- the operations, and the worker call -----------------------------------------------------

class Run(TypedDict, total=False):
    """How a worker runs: ``log_dir`` (its files), ``timeout_s``, ``progress``, ``env`` (default: the
    Feast environment under ``cache_dir``, built first if missing)."""

    log_dir: Required[Path]
    timeout_s: float
    cache_dir: Path | None
    progress: Progress | None
    env: ToolEnv | None


def describe(repo: Path, *, registry: str | Path | None = None, online_store: str | Path | None = None,
             **run: Unpack[Run]) -> Definitions:
    """The entities, views, services and source files the repository defines; no registry or store touched."""
    return _one(_request("describe", repo, partial(_parse, Definitions, "describe"), registry, online_store), run)


def plan(repo: Path, *, registry: str | Path | None = None, online_store: str | Path | None = None,
         **run: Unpack[Run]) -> Plan:
    """`feast plan` against the registry: every object's transition and changes. Nothing is written:
    a registry that does not exist yet shows every object as CREATE and stays absent."""
    return _one(_request("plan", repo, partial(_parse, Plan, "plan"), registry, online_store), run)


def apply(repo: Path, *, registry: str | Path | None = None, online_store: str | Path | None = None,
          materialize: Materialize | Mapping[str, Any] | None = None, **run: Unpack[Run]) -> ApplyResult:
    """`feast apply` to the registry (and its online store's tables), then ``materialize``
    (a :class:`Materialize`, or a mapping with ``end`` and ``start``) when given."""
    return _one(_request("apply", repo, partial(_parse, ApplyResult, "apply"), registry, online_store,
                         materialize=_materialize(materialize)), run)


def historical(repo: Path, *, service: str, jobs: Iterable[HistoricalJob | tuple[Path | str, Path | str]],
               registry: str | Path | None = None, online_store: str | Path | None = None,
               **run: Unpack[Run]) -> list[HistoricalResult]:
    """get_historical_features of ``service`` (point in time) for each (entities, out) job, one
    worker for all. The service comes from ``registry`` when given, else from the definitions applied
    to a throwaway registry. Same inputs, same bytes."""
    listed = [{"entities": _path(e), "out": _path(o)} for e, o in jobs]
    read = partial(_parse, list[HistoricalResult], "historical", jobs=len(listed))
    return _one(_request("historical", repo, read, registry, online_store, service=service, jobs=listed), run)


def skew(repo: Path, *, service: str, entities: Path | str, sample: int = 50, seed: int = 0,
         at: dt.datetime | None = None, tolerance: float = 1e-6, scratch: Path | None = None,
         registry: str | Path | None = None, online_store: str | Path | None = None,
         **run: Unpack[Run]) -> SkewReport:
    """The online store's values of ``service`` against the offline store's at ``at`` (default: now)
    for a seeded sample of the distinct keys in ``entities``: nulls equal nulls, numbers within
    ``tolerance`` (relative and absolute). With ``scratch`` (a folder), the definitions are first
    applied to a registry and SQLite store there and each view materialised up to ``at`` (default: the
    entity table's latest event_timestamp): what serving would see, without an environment's stores."""
    if sample < 1:
        raise ValueError(f"sample must be at least 1, got {sample}")
    return _one(_request("skew", repo, partial(_parse, SkewReport, "skew"), registry, online_store, service=service,
                         entities=_path(entities), sample=sample, seed=seed, at=_iso(at) if at else None,
                         tolerance=tolerance, scratch=_path(scratch)), run)


def many(calls: Sequence[tuple[str, Mapping[str, Any]]], **run: Unpack[Run]) -> list[Any]:
    """Several operations in one worker, in order: each call is a function's name and its keyword arguments
    but ``run``'s; each item, what it returns or the exception it would raise (returned: the others still
    run; a failure of the whole worker is each call's). Its files in ``log_dir`` are ``feast-batch.*``."""
    built: list[Any] = []
    for op, kwargs in calls:
        if op not in _FUNCTIONS:
            raise ValueError(f"unknown feature store operation {op!r}; known: {', '.join(_FUNCTIONS)}")
        try:  # the function itself makes the request: given _BUILD_ONLY, it returns it
            built.append(_FUNCTIONS[op](**{**kwargs, "log_dir": _BUILD_ONLY}))
        except (TypeError, ValueError) as err:  # what it raises before it would start a worker
            built.append(err)
    todo = [i for i, b in enumerate(built) if isinstance(b, _Request)]
    if not todo:
        return built
    where = Path(run["log_dir"]) / "feast-batch.answer.json"
    try:
        answer, log = _send("batch", f"batch of {', '.join(f'{built[i].op} of {built[i].repo}' for i in todo)}",
                            {"ops": [built[i].body for i in todo]}, run)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(todo):
            raise FeastError(f"the Feast worker's answer {where} does not list {len(todo)} results")
    except FatalError as err:
        return [err if i in todo else b for i, b in enumerate(built)]
    for n, (i, one) in enumerate(zip(todo, results)):
        try:
            built[i] = _settle(built[i], one, log, run, f"{where} results[{n}]")
        except FatalError as err:  # the user's error, or an answer that cannot be read
            built[i] = err
    return built


_FUNCTIONS: dict[str, Any] = {f.__name__: f for f in (describe, plan, apply, historical, skew)}
_BUILD_ONLY = Path("<build only>")  # the log_dir many passes them: they return their _Request unsent


class _Request(NamedTuple):  # one operation as the worker takes it (op, repo, fields); how its result is read
    op: str
    repo: Path
    body: dict[str, Any]
    read: Callable[[dict[str, Any]], Any]


def _request(op: str, repo: Path, read: Callable[[dict[str, Any]], Any], registry: str | Path | None,
             online_store: str | Path | None, **fields: Any) -> _Request:
    fields.update(registry=_path(registry), online_store=_path(online_store))
    body = {"op": op, "repo": _path(repo), **{k: v for k, v in fields.items() if v is not None}}
    return _Request(op, Path(repo), body, read)


def _path(value: str | Path | None) -> str | None:  # as the worker takes it: a URI as written, a path absolute
    if value is None:
        return None
    return value if isinstance(value, str) and "://" in value else str(Path(value).absolute())


def _iso(value: dt.datetime | str) -> str:
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return (when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when).isoformat()


def _materialize(value: Materialize | Mapping[str, Any] | None) -> dict[str, str | None] | None:
    if isinstance(value, Mapping):
        value = Materialize(end=value["end"], start=value.get("start"))
    return None if value is None else {"end": _iso(value.end), "start": _iso(value.start) if value.start else None}


def _one(request: _Request, run: Run) -> Any:
    """Run the worker on one request: its typed result, or an error (for _build: the request)."""
    if run["log_dir"] is _BUILD_ONLY:
        return request
    answer, log = _send(request.op, f"{request.op} of {request.repo}", request.body, run)
    return _settle(request, answer, log, run, str(Path(run["log_dir"]) / f"feast-{request.op}.answer.json"))


def _send(op: str, what: str, body: Mapping[str, Any], run: Run) -> tuple[Any, Path]:
    """The worker's answer to ``op`` (one, or a batch; unchecked) and its log; :class:`FeastError` without one."""
    log_dir = Path(run["log_dir"])
    log_dir.mkdir(parents=True, exist_ok=True)
    env = run.get("env") or envs.ensure_env(cache_dir=run.get("cache_dir"), progress=run.get("progress"))
    log, answer_path = log_dir / f"feast-{op}.log", log_dir / f"feast-{op}.answer.json"
    request = {"protocol": PROTOCOL, "op": op, "response": str(answer_path), **body}
    try:
        answer = call(env.python, WORKER, request, log=log, timeout_s=run.get("timeout_s", TIMEOUT_S),
                      request_path=log_dir / f"feast-{op}.request.json", response_path=answer_path, env=WORKER_ENV)
    except WorkerExited as exited:
        verb = "refused the request" if exited.code == EXIT_REQUEST else "crashed"
        raise FeastError(f"the Feast worker {verb} ({what}): {exited}") from exited
    except WorkerFailed as bad:  # its timeout, or an answer that is not JSON
        raise FeastError(f"feast {what}: {bad}", hint=f"the worker's log: {log}") from bad
    return answer, log


def _settle(request: _Request, answer: Any, log: Path, run: Run, where: str) -> Any:
    """One operation's answer (at ``where``) read into its typed result, or its error raised."""
    op = request.op
    if not isinstance(answer, dict) or answer.get("protocol") != PROTOCOL or answer.get("op") != op:
        raise FeastError(f"the Feast worker's answer {where} is not a protocol {PROTOCOL} answer to {op}")
    warnings = [mask(str(w)) for w in answer.get("warnings") or []]
    for line in warnings:
        (run.get("progress") or NullProgress()).log(f"feast: {line}")
    error = answer.get("error")
    if answer.get("ok") is False and isinstance(error, dict) and isinstance(error.get("message"), str):
        if error.get("kind") in ("refused", "crashed"):  # a batch's op that alone would exit 3 or crash
            raise FeastError(f"the Feast worker {error['kind']} ({op} of {request.repo}): {mask(error['message'])}",
                             hint=f"the Feast worker's log: {log}")
        cls = _ERRORS.get(str(error.get("kind")), FeatureRepoError)
        file, line = error.get("file"), error.get("line")
        raise cls(mask(error["message"]), kind=str(error.get("kind")), hint=f"the Feast worker's log: {log}",
                  file=file if isinstance(file, str) else None, line=line if isinstance(line, int) else None)
    if answer.get("ok") is not True or not isinstance(answer.get("result"), dict):
        raise FeastError(f"the Feast worker's answer {where} has neither a result nor an error")
    return request.read({**answer["result"], "warnings": warnings})


def _parse(kind: Any, op: str, data: Any, *, jobs: int | None = None) -> Any:
    """``data`` validated into ``kind`` (a dataclass; with ``jobs``, its list of that many jobs)."""
    from pydantic import TypeAdapter, ValidationError

    if jobs is not None:
        data = data.get("jobs")
        if not isinstance(data, list) or len(data) != jobs:
            raise FeastError(f"the Feast worker's answer to {op} lists {len(data) if isinstance(data, list) else 0} "
                             f"jobs for the {jobs} it was given")
    try:
        return TypeAdapter(kind).validate_python(data)
    except ValidationError as err:
        raise FeastError(mask(f"the Feast worker's answer to {op} is not valid: {str(err)[:1000]}")) from err


__all__ = [
    "ApplyResult", "Change", "Definitions", "EntityDef", "EntityTableError", "FeastError", "FeatureNotFound",
    "FeatureRepoError", "HistoricalJob", "HistoricalResult", "Materialize", "Mismatch", "ObjectChange", "Plan",
    "Run", "ServiceDef", "SkewReport", "SourceDef", "ViewDef", "apply", "describe", "historical", "many", "plan",
    "skew",
]
