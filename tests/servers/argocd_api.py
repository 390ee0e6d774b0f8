"""A local Argo CD API server for tests. It is a test fixture, not Argo CD: it serves the one
operation mlops-ci reads (``GET /api/v1/applications/{name}``, ApplicationService_Get) from an
in-memory set of Applications whose sync and health a test sets, on a free port of ``127.0.0.1``::

    with ArgoCDServer(token="argocd-token") as srv:
        srv.set_app("tiny-prod", revision=sha, sync_status="OutOfSync")
        ArgoCD(srv.url, token="argocd-token").application("tiny-prod")

Its worth is that it holds the client to the upstream contract, ``argo-cd/swagger.json`` in
``../shared/contracts/`` (read at run time, never copied): every request is matched to a swagger
operation and its path and query parameters are checked against the operation's declared ones
(an unknown parameter, or a value of the wrong type, is a 400), and every answer, success or
error, is validated against the operation's response schema (``v1alpha1Application`` or
``runtimeError``, ``$ref``s resolved, unknown fields refused as argo_contract.py does). What breaks
the contract is recorded in ``srv.violations`` (a handler crash in ``srv.errors``); leaving the
``with`` block raises if either is non-empty, unless ``strict=False``.

Errors are shaped as Argo CD's grpc-gateway sends them (``{"code", "error", "message"}``): 401
without a token or with a wrong one, 403 for an application in ``forbidden``, 404 for an unknown
one (or one outside the ``projects`` asked for, as Argo CD answers). ``fail_next`` answers the next
requests with a status (429, 503, ...) without looking at them.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
import traceback
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from jsonschema import Draft4Validator, FormatChecker
from manifest_support import CONTRACTS

from mlops_ci.serving.crds import closed

from .argo_contract import Problem
from .argo_contract import _problems as problems_in

SWAGGER = CONTRACTS / "argo-cd" / "swagger.json"
OPERATIONS = ("ApplicationService_Get",)  # the operations served (operationId)
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}
WHEN = "2025-01-01T00:00:00Z"
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if isinstance(value, str):
        if "T" not in value.upper():
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.fromisoformat(value)
    return True


# -- the contract ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    op_id: str
    method: str
    regex: re.Pattern[str]
    params: dict[str, dict[str, Any]]  # query and path parameters by name, as the swagger declares them
    responses: dict[str, str]  # HTTP status ("200", "default") -> "#/definitions/..."


@functools.cache
def swagger() -> dict[str, Any]:
    if not SWAGGER.is_file():
        raise AssertionError(f"the upstream contract {SWAGGER} is missing: the Argo CD tests validate against "
                             "the swagger in ../shared/contracts/ beside the repository")
    return json.loads(SWAGGER.read_text(encoding="utf-8"))


@functools.cache
def operations() -> tuple[Operation, ...]:
    ops = []
    for template, item in swagger()["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or op.get("operationId") not in OPERATIONS:
                continue
            regex = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")
            params = {p["name"]: p for p in op.get("parameters", []) if p["in"] in ("query", "path")}
            responses = {code: r["schema"]["$ref"] for code, r in op["responses"].items()
                         if "$ref" in (r.get("schema") or {})}
            ops.append(Operation(op["operationId"], method.upper(), regex, params, responses))
    missing = set(OPERATIONS) - {o.op_id for o in ops}
    assert not missing, f"{SWAGGER} lacks {sorted(missing)}"
    return tuple(ops)


@functools.cache
def _validator(ref: str) -> Draft4Validator:
    definitions = copy.deepcopy(swagger()["definitions"])
    for definition in definitions.values():
        closed(definition)
    return Draft4Validator({"definitions": definitions, "$ref": ref}, format_checker=FORMATS)


def answer_problems(ref: str, body: Any) -> list[Problem]:
    """Why ``body`` is not a ``ref`` (``#/definitions/...``) of the swagger; [] when it is one."""
    return problems_in(_validator(ref), body)


def _value_problem(spec: dict[str, Any], values: list[str]) -> str | None:
    kind = spec.get("type", "string")
    if kind != "array" and len(values) > 1:
        return f"given {len(values)} times, but it is a single {kind}"
    item = spec.get("items", {}) if kind == "array" else spec
    for value in values:
        item_kind = item.get("type", "string")
        ok = {"integer": lambda v: re.fullmatch(r"-?\d+", v) is not None,
              "number": lambda v: re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", v) is not None,
              "boolean": lambda v: v in ("true", "false")}.get(item_kind, lambda v: True)(value)
        if not ok:
            return f"{value!r} is not a {item_kind}"
        if "enum" in item and value not in item["enum"]:
            return f"{value!r} is not one of {item['enum']}"
    return None


def request_problems(op: Operation, path_params: dict[str, str], query: dict[str, list[str]]) -> list[str]:
    """Why a request breaks ``op``'s declared parameters: unknown ones, wrong types, missing ones."""
    found = [f"query parameter {name!r} is not a parameter of {op.op_id}"
             for name in sorted(query) if op.params.get(name, {}).get("in") != "query"]
    for name, spec in op.params.items():
        values = [path_params[name]] if name in path_params else None
        if spec["in"] == "query":
            values = query.get(name)
        if not values or not any(values):
            if spec.get("required"):
                found.append(f"{spec['in']} parameter {name!r} of {op.op_id} is required")
            continue
        problem = _value_problem(spec, values)
        if problem:
            found.append(f"{spec['in']} parameter {name!r} of {op.op_id}: {problem}")
    return found


# -- the state ------------------------------------------------------------------------------------
@dataclass
class App:
    """One Application as a test sets it. ``extra`` is deep-merged into the answer last: the way to
    serve a field the contract forbids, to prove the check catches it."""

    name: str
    namespace: str = "argocd"
    project: str = "default"
    sync_status: str = "Synced"
    revision: str | None = None
    revisions: list[str] | None = None  # a multi-source Application's (then revision is left out)
    health_status: str = "Healthy"
    health_message: str | None = None
    operation_phase: str | None = None  # None: no operation ever ran
    operation_finished_at: str | None = WHEN
    reconciled_at: str | None = WHEN
    extra: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        source = {"repoURL": "https://git.example/acme/gitops.git", "path": f"serving/{self.name}",
                  "targetRevision": "main"}
        destination = {"server": "https://kubernetes.default.svc", "namespace": "serving"}
        sync: dict[str, Any] = {"status": self.sync_status, "comparedTo": {"source": source,
                                                                          "destination": destination}}
        if self.revisions is not None:
            sync["revisions"] = list(self.revisions)
        elif self.revision is not None:
            sync["revision"] = self.revision
        health: dict[str, Any] = {"status": self.health_status}
        if self.health_message is not None:
            health["message"] = self.health_message
        status: dict[str, Any] = {"sync": sync, "health": health, "sourceType": "Kustomize"}
        if self.reconciled_at is not None:
            status["reconciledAt"] = self.reconciled_at
        if self.operation_phase is not None:
            state: dict[str, Any] = {"phase": self.operation_phase, "startedAt": WHEN,
                                     "operation": {"sync": {"revision": self.revision or ""}}}
            if self.operation_phase != "Running" and self.operation_finished_at is not None:
                state["finishedAt"] = self.operation_finished_at
            status["operationState"] = state
        doc = {"metadata": {"name": self.name, "namespace": self.namespace, "resourceVersion": "1",
                            "creationTimestamp": WHEN},
               "spec": {"project": self.project, "source": source, "destination": destination},
               "status": status}
        return _merge(doc, copy.deepcopy(self.extra))


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    for key, value in top.items():
        base[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) \
            else value
    return base


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int


# -- the server -----------------------------------------------------------------------------------
class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: ArgoCDServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.app._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        return


class ArgoCDServer:
    """See the module docstring. ``token`` is the one bearer token accepted; Applications live in
    ``namespace`` (Argo CD's own) unless set elsewhere."""

    def __init__(self, *, token: str = "argocd-token", namespace: str = "argocd", strict: bool = True) -> None:
        self.token = token
        self.namespace = namespace
        self.strict = strict
        self.apps: dict[tuple[str, str], App] = {}
        self.forbidden: set[str] = set()
        self.violations: list[str] = []
        self.errors: list[str] = []
        self.log: list[Request] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> Self:
        operations()  # a missing or changed swagger fails here, not inside a request
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.app = self
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name="local-argocd").start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.stop()
        if self.strict and exc_type is None:
            self.assert_clean()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def assert_clean(self) -> None:
        if self.violations or self.errors:
            raise AssertionError("local Argo CD server problems:\n" + "\n".join(self.violations + self.errors))

    # -- what tests set and read ----------------------------------------------------------------------
    def set_app(self, name: str, *, namespace: str | None = None, **fields: Any) -> App:
        """Create or change Application ``name`` (fields of :class:`App`)."""
        with self._lock:
            key = (namespace or self.namespace, name)
            app = self.apps.get(key) or App(name=name, namespace=key[0])
            for attr, value in fields.items():
                if not hasattr(app, attr):
                    raise TypeError(f"App has no field {attr!r}")
                setattr(app, attr, value)
            self.apps[key] = app
            return app

    def fail_next(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    @property
    def request_count(self) -> int:
        return len(self.log)

    # -- serving --------------------------------------------------------------------------------------
    def _handle(self, req: _Handler) -> None:
        split = urllib.parse.urlsplit(req.path)
        path = split.path or "/"
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        try:
            status, body = self._answer(req.command.upper(), path, query, req.headers.get("Authorization") or "")
        except Exception:  # noqa: BLE001 (a bug in the fixture: make it loud)
            self.errors.append(f"{req.command} {path}: handler crashed:\n{traceback.format_exc()}")
            status, body = _error(500, "internal error in the local Argo CD server")
        self.log.append(Request(req.command.upper(), path, query, status))
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _answer(self, method: str, path: str, query: dict[str, list[str]], auth: str) -> tuple[int, Any]:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return _error(failure, {429: "too many requests", 503: "the server is shutting down"}.get(
                failure, "internal error"))
        found = next(((op, m.groupdict()) for op in operations() if op.method == method
                      for m in [op.regex.match(path)] if m), None)
        if found is None:
            self.violations.append(f"{method} {path}: no operation of the swagger that this server serves")
            return _error(404, "Not Found")
        op, path_params = found
        path_params = {k: urllib.parse.unquote(v) for k, v in path_params.items()}
        problems = request_problems(op, path_params, query)
        if problems:
            self.violations.extend(f"{method} {path}: {p}" for p in problems)
            status, body = _error(400, "; ".join(problems))
        else:
            status, body = self._application(path_params["name"], query, auth)
        ref = op.responses.get(str(status)) or op.responses["default"]
        self.violations.extend(f"{op.op_id} {status} answer: {p}" for p in answer_problems(ref, body))
        return status, body

    def _application(self, name: str, query: dict[str, list[str]], auth: str) -> tuple[int, Any]:
        scheme, _, token = auth.partition(" ")
        if not auth:
            return _error(401, "no session information")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            return _error(401, "invalid session: token signature is invalid")
        namespace = (query.get("appNamespace") or [""])[0] or self.namespace
        projects = query.get("projects", []) + query.get("project", [])
        with self._lock:
            app = self.apps.get((namespace, name))
            if app is not None and name in self.forbidden:
                return _error(403, f"permission denied: applications, get, {app.project}/{name}, "
                                   "sub: mlops-ci, iat: 2025-01-01T00:00:00Z")
            if app is None or (projects and app.project not in projects):
                return _error(404, f'applications.argoproj.io "{name}" not found')
            if query.get("refresh"):
                app.reconciled_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return 200, app.document()


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    """An error answer as Argo CD's grpc-gateway writes it (runtimeError)."""
    return status, {"code": GRPC_CODES.get(status, 2), "error": message, "message": message}
