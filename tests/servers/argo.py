"""A local Argo Workflows server for tests: the Argo Server REST API and the Kubernetes API
faces, on two ports of ``127.0.0.1``, over one in-memory cluster state and a local "controller"
that runs Workflows and JobSets as processes on this machine. It is not Argo: it implements the
endpoints mlops-ci uses, keeps state, and rejects what the upstream contracts in
``../shared/contracts/`` reject (argo_contract.py)::

    with ArgoServer(token="argo-token", repos={"https://git.example/acme/churn.git": repo},
                    namespace="ml") as srv:
        srv.add_template(template_doc)          # or srv.load_templates(ROOT / "argo")
        requests.post(f"{srv.url}/api/v1/workflows/ml", json={"workflow": wf},
                      headers={"Authorization": "Bearer argo-token"})
        done = srv.wait("ml", "train-1", phase="Succeeded")

Point ``requests`` at ``srv.url`` (paths ``/api/v1/workflows/...``) and the ``kubernetes``
client at ``srv.k8s_url`` (``Configuration(host=srv.k8s_url, api_key={"authorization":
"Bearer argo-token"})``).

Faults (``srv.inject``) hit the next requests whose ``"METHOD /path"`` matches ``match`` (a
regular expression searched in it; every request when None): ``drop`` (the request is applied,
then the connection closes halfway through the response), ``restart`` (the face that got the
request closes every connection, stops listening for ``down`` seconds and comes back on the same
port; state and running Workflows are kept), ``slow`` (sleep ``delay`` seconds, then answer) and
``status`` (answer ``status``, e.g. 500/503/504, with that face's error body, without applying).
Problems found (a handler crash, a response that breaks the contract, an unimplemented feature
a Workflow used) are collected in ``srv.errors``; leaving the ``with`` block raises if any.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import subprocess
import tempfile
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import yaml

from .argo_api import ArgoRestApi
from .argo_controller import Controller
from .argo_objects import ApiFailure, ObjectOps
from .argo_state import Store
from .k8s_api import KubernetesApi

__all__ = ["FAULTS", "ArgoServer", "Fault", "LoggedRequest"]

FAULTS = ("drop", "restart", "slow", "status")
DONE = ("Succeeded", "Failed", "Error")
KUBECTL = "/usr/bin/kubectl"


@dataclass
class Fault:
    kind: str
    match: str | None = None
    times: int = 1
    status: int = 503
    delay: float = 1.0
    down: float = 1.0
    hits: int = 0

    def applies(self, method: str, path: str) -> bool:
        return self.hits < self.times and (self.match is None or re.search(self.match, f"{method} {path}") is not None)


@dataclass
class LoggedRequest:
    face: str  # "argo" or "k8s"
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    fault: str | None = None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: ArgoServer
    face: str


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.app._connections[self.server.face].add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._connections[self.server.face].discard(self.connection)

    def do_GET(self) -> None:
        self.server.app._handle(self.server.face, self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        return


class ArgoServer(ObjectOps, ArgoRestApi, KubernetesApi):
    """See the module docstring. ``token`` is accepted on both faces for every namespace in
    ``namespaces`` (``namespace`` plus any given); ``read_only_token`` may only read (403 on
    writes). ``repos`` maps git URLs that Workflows' git artifacts name to local repositories."""

    def __init__(self, *, token: str = "argo-token", repos: dict[str, Path | str] | None = None,
                 namespace: str = "argo", namespaces: tuple[str, ...] = (), read_only_token: str | None = None,
                 strict: bool = True) -> None:
        self.token, self.read_only_token = token, read_only_token
        self.namespace = namespace
        self.namespaces = {namespace, *namespaces}
        self.repos = {url: Path(path) for url, path in (repos or {}).items()}
        self.strict = strict
        self.errors: list[str] = []
        self.store = Store()
        self.controller = Controller(self)
        self._tmp = tempfile.TemporaryDirectory(prefix="argo-server-")
        self.workdir = Path(self._tmp.name)
        self._faults: list[Fault] = []
        self._log: list[LoggedRequest] = []
        self._httpd: dict[str, _HTTPServer | None] = {"argo": None, "k8s": None}
        self._ports: dict[str, int] = {}
        self._connections: dict[str, set[socket.socket]] = {"argo": set(), "k8s": set()}
        self._serving = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------------
    def _serve(self, face: str, port: int = 0) -> None:
        for attempt in range(50):
            try:
                httpd = _HTTPServer(("127.0.0.1", port), _Handler)
                break
            except OSError:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        httpd.app, httpd.face = self, face
        self._httpd[face] = httpd
        self._ports[face] = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name=f"local-argo-{face}").start()

    def start(self) -> Self:
        self._serve("argo")
        self._serve("k8s")
        return self

    def stop(self) -> None:
        for face, httpd in self._httpd.items():
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
                self._httpd[face] = None
            self._close_connections(face)
        self.controller.close()
        self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type, *_: object) -> None:
        self.stop()
        if self.strict and exc_type is None:
            self.assert_no_errors()

    @property
    def url(self) -> str:
        """The Argo Server REST base URL (paths /api/v1/...)."""
        return f"http://127.0.0.1:{self._ports['argo']}"

    @property
    def k8s_url(self) -> str:
        """The Kubernetes API base URL (paths /apis/..., /api/v1/...)."""
        return f"http://127.0.0.1:{self._ports['k8s']}"

    def assert_no_errors(self) -> None:
        if self.errors:
            raise AssertionError("local Argo server errors:\n" + "\n".join(self.errors))

    # -- seeding and inspection -------------------------------------------------------------------
    def add_template(self, doc: dict, namespace: str | None = None) -> dict:
        """Store a WorkflowTemplate (validated against its CRD and schema.json)."""
        ns = namespace or (doc.get("metadata") or {}).get("namespace") or self.namespace
        self.namespaces.add(ns)
        try:
            with self.store.lock:
                return self.create_object("workflowtemplates", ns, doc)
        except ApiFailure as err:
            raise AssertionError(f"WorkflowTemplate refused: {err.message}") from None

    def load_templates(self, path: Path, namespace: str | None = None) -> list[str]:
        """`kubectl kustomize PATH` and add every WorkflowTemplate it renders; their names."""
        proc = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"kubectl kustomize {path} failed: {proc.stderr}")
        names = []
        for doc in yaml.safe_load_all(proc.stdout):
            if isinstance(doc, dict) and doc.get("kind") == "WorkflowTemplate":
                names.append(self.add_template(doc, namespace)["metadata"]["name"])
        return names

    def workflow(self, namespace: str, name: str) -> dict | None:
        with self.store.lock:
            return copy.deepcopy(self.store.get("workflows", namespace, name))

    def workflows(self, namespace: str) -> list[dict]:
        with self.store.lock:
            return copy.deepcopy(self.store.list("workflows", namespace))

    def jobsets(self, namespace: str) -> list[dict]:
        with self.store.lock:
            return copy.deepcopy(self.store.list("jobsets", namespace))

    def pods(self, namespace: str) -> dict[str, str]:
        """Pod name -> phase."""
        with self.store.lock:
            return {p.name: p.phase for p in self.store.pods.values() if p.namespace == namespace}

    def pod_log(self, namespace: str, pod: str) -> str:
        with self.store.lock:
            found = self.store.pods.get((namespace, pod))
            return "\n".join(found.log) if found else ""

    def processes(self) -> list[int]:
        """PIDs of the containers still running."""
        return self.controller.live_processes()

    def wait(self, namespace: str, name: str, phase: str | tuple[str, ...] = DONE, timeout: float = 60) -> dict:
        """Block until the Workflow's phase is ``phase`` (any end phase by default)."""
        wanted = (phase,) if isinstance(phase, str) else tuple(phase)
        deadline = time.monotonic() + timeout
        with self.store.changed:
            while True:
                wf = self.store.get("workflows", namespace, name)
                current = ((wf or {}).get("status") or {}).get("phase")
                if current in wanted:
                    return copy.deepcopy(wf)
                left = deadline - time.monotonic()
                if left <= 0 or current in DONE:  # an end phase other than the one wanted
                    logs = {p.name: p.log[-20:] for p in self.store.pods.values() if p.workflow == name}
                    raise AssertionError(f"Workflow {namespace}/{name} is {current!r}, not {wanted}: "
                                         f"{json.dumps((wf or {}).get('status'), indent=1)[:3000]}\nlogs: {logs}")
                self.store.changed.wait(min(left, 0.2))

    def requests(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        return [r for r in list(self._log) if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))]

    # -- faults -----------------------------------------------------------------------------------
    def inject(self, fault: str, *, match: str | None = None, times: int = 1, status: int = 503,
               delay: float = 1.0, down: float = 1.0) -> Fault:
        """Queue a fault for the next ``times`` requests matching ``match`` (see module docstring)."""
        assert fault in FAULTS, f"unknown fault {fault!r}; one of {FAULTS}"
        entry = Fault(fault, match, times, status, delay, down)
        with self.store.lock:
            self._faults.append(entry)
        return entry

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.store.lock:
            for fault in self._faults:
                if fault.applies(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _close_connections(self, face: str) -> None:
        for conn in list(self._connections[face]):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _restart(self, face: str, down: float) -> None:
        def cycle() -> None:
            with self._serving:
                httpd = self._httpd[face]
                if httpd is None:
                    return
                httpd.shutdown()
                httpd.server_close()
                self._httpd[face] = None
                self._close_connections(face)
                time.sleep(down)
                self._serve(face, self._ports[face])
        threading.Thread(target=cycle, daemon=True, name=f"restart-{face}").start()

    # -- HTTP -------------------------------------------------------------------------------------
    def _handle(self, face: str, req: _Handler) -> None:
        method = req.command.upper()
        split = urllib.parse.urlsplit(req.path)
        path = urllib.parse.unquote(split.path) or "/"
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        raw = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        text = raw.decode("utf-8", "replace")
        try:
            body: Any = json.loads(text) if text.strip() else None
        except ValueError:
            body = text
        entry = LoggedRequest(face, method, path, query, body)
        self._log.append(entry)
        fault = self._take_fault(method, path)
        if fault is not None:
            entry.fault = fault.kind
            if fault.kind == "restart":
                req.close_connection = True
                self._restart(face, fault.down)
                self._close_connections(face)
                return
            if fault.kind == "slow":
                time.sleep(fault.delay)
            if fault.kind == "status":
                status, payload, headers = self._fault_reply(face, fault.status)
                entry.status = status
                self._send(req, status, payload, headers)
                return
        try:
            if face == "argo":
                status, payload, headers = self.rest(method, path, query, text, body, req.headers)
            else:
                status, payload, headers = self.k8s(method, path, query, text, body, req.headers)
        except Exception:  # noqa: BLE001 (a bug in the local server: make it loud)
            self.errors.append(f"{face} {method} {path}: handler crashed:\n{traceback.format_exc()}")
            status, payload, headers = self._fault_reply(face, 500)
        entry.status = status
        self._send(req, status, payload, headers, drop=fault is not None and fault.kind == "drop")

    @staticmethod
    def _fault_reply(face: str, status: int) -> tuple[int, Any, dict]:
        reason = {500: "InternalError", 502: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
                  429: "TooManyRequests"}.get(status, "InternalError")
        text = {503: "the server is currently unable to handle the request",
                504: "the server was unable to return a response in the time allotted, but may still be "
                     "processing the request", 429: "the server has received too many requests and has asked "
                     "us to try again later"}.get(status, "an error on the server has prevented the request "
                                                          "from succeeding")
        if face == "argo":
            code = {503: 14, 504: 4, 429: 8}.get(status, 13)
            return status, {"code": code, "message": text}, {}
        return status, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": text, "reason": reason, "code": status}, {}

    def _send(self, req: _Handler, status: int, payload: Any, headers: dict[str, str], *, drop: bool = False) -> None:
        headers = dict(headers)
        try:
            if hasattr(payload, "__next__"):  # a stream (logs): chunked transfer encoding
                req.send_response(status)
                headers.setdefault("Content-Type", "application/json")
                for key, value in headers.items():
                    req.send_header(key, value)
                req.send_header("Transfer-Encoding", "chunked")
                req.end_headers()
                for sent, chunk in enumerate(payload):
                    data = chunk.encode()
                    req.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    req.wfile.flush()
                    if drop and sent >= 0:
                        payload.close()
                        req.close_connection = True
                        req.connection.shutdown(socket.SHUT_RDWR)
                        return
                req.wfile.write(b"0\r\n\r\n")
                req.wfile.flush()
                return
            if isinstance(payload, str):
                data = payload.encode()
                headers.setdefault("Content-Type", "text/plain")
            else:
                data = json.dumps(payload).encode()
                headers.setdefault("Content-Type", "application/json")
            req.send_response(status)
            for key, value in headers.items():
                req.send_header(key, value)
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            if drop:
                req.wfile.write(data[: len(data) // 2])
                req.wfile.flush()
                req.close_connection = True
                req.connection.shutdown(socket.SHUT_RDWR)
                return
            req.wfile.write(data)
            req.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client went away
