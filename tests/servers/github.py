"""A local GitHub REST API server for tests.

It serves the operations of ``../shared/contracts/github/rest-api.json`` (the OpenAPI 3
description of what a PR bot uses; any in it without a handler, ``NOT_SERVED`` in
:mod:`github_api`, get 501) from in-memory state, enforces that
contract on every request (422 for an invalid one) and checks every response it sends against
the operation's response schema (problems are collected in ``server.errors``; leaving the
``with`` block raises if there are any). Point PyGithub at it with ``base_url=server.url``::

    with GitHubServer() as server:
        server.add_user("github-actions[bot]", token="ghs_bot", type="Bot", can_get_user=False)
        server.add_repo("acme/models")
        server.add_collaborator("acme/models", "github-actions[bot]", "write")
        pr = server.add_pull("acme/models", user="alice", head_ref="feature")
        gh = github.Github(auth=github.Auth.Token("ghs_bot"), base_url=server.url, retry=None,
                           seconds_between_requests=0, seconds_between_writes=0)
        gh.get_repo("acme/models").get_pull(pr.number).create_issue_comment("hi")
        assert [c.body for c in server.comments("acme/models", pr.number)] == ["hi"]

(PyGithub waits 1 s between writes unless ``seconds_between_writes=0``.)

Faults (``server.inject(...)``) make the next matching requests fail the way GitHub does:
``bad_gateway`` (502, HTML body), ``secondary_rate_limit`` (403/429 with ``Retry-After``),
``primary_rate_limit`` (403/429 with ``x-ratelimit-remaining: 0``), ``slow`` (sleep, then answer)
and ``fail_after_commit`` (apply the write, then answer 502).
"""

from __future__ import annotations

import collections
import functools
import json
import re
import threading
import time
import traceback
import urllib.parse
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from .github_api import (
    NOT_SERVED,
    ROUTES,
    WRITE_ROLE,
    ApiError,
    Ctx,
    Reply,
    accepted_permissions,
)
from .github_api_git import GitHandlers
from .github_api_issues import IssueHandlers
from .github_api_pr import PullRequestHandlers
from .github_api_teams import TeamHandlers
from .github_contract import SPEC_PATH, Contract, Operation, ValidationFailed
from .github_state import Token, rank

__all__ = ["FAULT_KINDS", "Fault", "GitHubServer", "LoggedRequest"]

FAULT_KINDS = ("bad_gateway", "secondary_rate_limit", "primary_rate_limit", "slow",
               "fail_after_commit")
RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
BAD_GATEWAY_HTML = (
    "<!DOCTYPE html>\n<html>\n  <head>\n    <meta http-equiv=\"Content-type\" "
    "content=\"text/html; charset=utf-8\">\n    <title>Unicorn! &middot; GitHub</title>\n  </head>\n"
    "  <body>\n    <h1>502 Bad Gateway</h1>\n    <p>We had issues producing the response to your "
    "request. Sorry about that. Please try resubmitting your request and contact us if the "
    "problem persists.</p>\n  </body>\n</html>\n")


@dataclass
class Fault:
    """Applies to matching requests after the first ``skip`` of them, ``times`` times."""

    kind: str
    method: str | None = None
    path: str | None = None  # regular expression, searched in the URL path
    times: int = 1
    skip: int = 0
    status: int | None = None  # 403 or 429 for the rate limits
    retry_after: int = 1
    reset_in: int = 60
    delay: float = 1.0
    hits: int = 0  # how often it was applied

    @property
    def remaining(self) -> int:
        return self.times - self.hits

    def matches(self, method: str, path: str) -> bool:
        return ((self.method is None or self.method.upper() == method)
                and (self.path is None or re.search(self.path, path) is not None))


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON, or the raw text if it was not JSON
    status: int = 0
    operation: str | None = None
    login: str | None = None
    fault: str | None = None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: GitHubServer


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.app.handle(self)

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        return


@functools.lru_cache(maxsize=4)
def _contract(path: str) -> Contract:
    return Contract(Path(path))


class GitHubServer(PullRequestHandlers, IssueHandlers, GitHandlers, TeamHandlers):
    """A GitHub REST API on ``127.0.0.1`` (a free port); see the module docstring.

    ``html_url`` is the web host used in ``html_url`` fields. With ``strict`` (the default)
    leaving the ``with`` block raises AssertionError if any response broke the contract or a
    handler crashed."""

    def __init__(self, *, html_url: str = "https://github.com", strict: bool = True,
                 spec_path: Path = SPEC_PATH):
        super().__init__(html_url)
        self.contract = _contract(str(spec_path))
        operations, routed = set(self.contract.by_id), set(ROUTES)
        missing = operations - routed - NOT_SERVED
        assert not missing, f"operations neither routed nor in NOT_SERVED: {sorted(missing)}"
        unknown = (routed | NOT_SERVED) - operations
        assert not unknown, f"routed or NOT_SERVED but not in the contract: {sorted(unknown)}"
        assert not routed & NOT_SERVED, f"both routed and NOT_SERVED: {sorted(routed & NOT_SERVED)}"
        unhandled = sorted(n for n in ROUTES.values() if not callable(getattr(self, n, None)))
        assert not unhandled, f"routes to missing handler methods: {unhandled}"
        self.strict = strict
        self.errors: list[str] = []
        self._log: list[LoggedRequest] = []
        self._faults: list[Fault] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> GitHubServer:
        assert self._httpd is None, "already started"
        self._httpd = _HTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._httpd.app = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-github",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.stop()
        if self.strict and exc_type is None:
            self.assert_no_errors()

    @property
    def url(self) -> str:
        """Base URL for PyGithub's ``base_url`` (no trailing slash)."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def assert_no_errors(self) -> None:
        """Raise if any response broke its schema or a handler crashed."""
        if self.errors:
            raise AssertionError("fake GitHub server errors:\n" + "\n".join(self.errors))

    # -- faults ---------------------------------------------------------------------------------
    def inject(self, kind: str, *, method: str | None = None, path: str | None = None,
               times: int = 1, skip: int = 0, status: int | None = None, retry_after: int = 1,
               reset_in: int = 60, delay: float = 1.0) -> Fault:
        """Queue a fault for requests matching ``method`` (any if None) and the ``path`` regex.

        kinds: ``bad_gateway``, ``secondary_rate_limit`` (``status`` 403 or 429,
        ``retry_after`` seconds), ``primary_rate_limit`` (``status`` 403 or 429, reset in
        ``reset_in`` seconds), ``slow`` (sleep ``delay`` seconds, then answer normally) and
        ``fail_after_commit`` (apply the request, answer 502)."""
        assert kind in FAULT_KINDS, f"unknown fault {kind!r}; one of {FAULT_KINDS}"
        assert status in (None, 403, 429), status
        fault = Fault(kind, method, path, times, skip, status, retry_after, reset_in, delay)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.hits += 1
                    return fault
        return None

    # -- request log ----------------------------------------------------------------------------
    def requests(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally by method and a regex searched in the path."""
        with self._lock:
            return [r for r in self._log if (method is None or r.method == method.upper())
                    and (path is None or re.search(path, r.path))]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return len(self.requests(method, path))

    def post_counts(self) -> collections.Counter[str]:
        """How many POSTs each path received."""
        return collections.Counter(r.path for r in self.requests("POST"))

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- auth, roles, rate limits ---------------------------------------------------------------
    def _rate_headers(self, token: Token | None) -> dict[str, str]:
        if token is None:
            return {}
        status = self.rate_status(token)
        return {"X-RateLimit-Limit": str(status["limit"]),
                "X-RateLimit-Remaining": str(status["remaining"]),
                "X-RateLimit-Reset": str(status["reset"]), "X-RateLimit-Used": str(status["used"]),
                "X-RateLimit-Resource": "core"}

    # -- HTTP -----------------------------------------------------------------------------------
    def handle(self, req: BaseHTTPRequestHandler) -> None:
        method = req.command.upper()
        split = urllib.parse.urlsplit(req.path)
        path = split.path or "/"
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        raw = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        text = raw.decode("utf-8", "replace")
        try:
            logged_body: Any = json.loads(text) if text else None
        except ValueError:
            logged_body = text
        entry = LoggedRequest(method, path, query, logged_body)
        with self._lock:
            self._log.append(entry)

        fault = self._take_fault(method, path)
        if fault is not None:
            entry.fault = fault.kind
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault and fault.kind not in ("slow", "fail_after_commit"):
            status, body, headers = self._fault_reply(fault, req)
        else:
            with self._lock:
                status, body, headers = self._process(req, method, path, query, text, entry)
            if fault and fault.kind == "fail_after_commit":
                status, body, headers = 502, BAD_GATEWAY_HTML, {"Content-Type": "text/html; charset=utf-8"}
        entry.status = status
        self._send(req, status, body, headers)

    def _fault_reply(self, fault: Fault, req: BaseHTTPRequestHandler) -> tuple[int, Any, dict]:
        html = {"Content-Type": "text/html; charset=utf-8"}
        if fault.kind == "bad_gateway":
            return 502, BAD_GATEWAY_HTML, html
        request_id = uuid.uuid4().hex[:20].upper()
        status = fault.status or 403
        with self._lock:
            token = self._token(req)
            headers = self._rate_headers(token)
        if fault.kind == "secondary_rate_limit":
            headers["Retry-After"] = str(fault.retry_after)
            message = ("You have exceeded a secondary rate limit. Please wait a few minutes before "
                       "you try again. If you reach out to GitHub Support for help, please include "
                       f"the request ID {request_id}.")
            docs = f"{RATE_LIMIT_DOCS}#about-secondary-rate-limits"
        else:
            reset = int(self.now().timestamp()) + fault.reset_in
            headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
            user = self._users.get(token.login.lower()) if token else None
            message = (f"API rate limit exceeded for user ID {user.id if user else 0}. If you reach "
                       "out to GitHub Support for help, please include the request ID "
                       f"{request_id}.")
            docs = f"{RATE_LIMIT_DOCS}#about-the-primary-rate-limit"
        return status, {"message": message, "documentation_url": docs, "status": str(status)}, headers

    def _token(self, req: BaseHTTPRequestHandler) -> Token | None:
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            return self._tokens.get(value.strip())
        return None

    def _error(self, op: Operation | None, status: int, message: str,
               errors: list | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"message": message}
        if errors is not None:
            body["errors"] = errors
        body["documentation_url"] = op.docs_url if op else "https://docs.github.com/rest"
        body["status"] = str(status)
        return body

    def _process(self, req: BaseHTTPRequestHandler, method: str, path: str,
                 query: dict[str, str], text: str, entry: LoggedRequest) -> tuple[int, Any, dict]:
        """Auth, contract, permissions, handler, response check. Runs under the lock."""
        match = self.contract.match(method, path)
        op = match[0] if match else None
        entry.operation = op.op_id if op else None
        scheme = (req.headers.get("Authorization") or "").partition(" ")[0].lower()
        token = self._token(req)
        if token is None:
            message = "Bad credentials" if scheme in ("token", "bearer") else "Requires authentication"
            return self._checked(op, 401, self._error(op, 401, message), {})
        entry.login = token.login
        headers = self._rate_headers(token)
        if op is None:
            return self._checked(None, 404, self._error(None, 404, "Not Found"), headers)
        if op.op_id != "rate-limit/get":
            token.used += 1
            headers = self._rate_headers(token)
            if token.used > token.rate_limit:
                user = self._users[token.login.lower()]
                body = self._error(op, 403, f"API rate limit exceeded for user ID {user.id}.")
                body["documentation_url"] = f"{RATE_LIMIT_DOCS}#about-the-primary-rate-limit"
                return 403, body, headers  # a documented GitHub error, not in every operation
        try:
            status, body, extra = self._dispatch(op, match[1], query, text, token, path)
        except ApiError as exc:
            status, extra = exc.status, exc.headers
            body = self._error(op, exc.status, exc.message, exc.errors)
        except Exception:  # noqa: BLE001 (a bug in the fake server: make it loud)
            self.errors.append(f"{method} {path}: handler crashed:\n{traceback.format_exc()}")
            status, body, extra = 500, self._error(op, 500, "Server Error"), {}
        return self._checked(op, status, body, {**headers, **extra})

    def _checked(self, op: Operation | None, status: int, body: Any,
                 headers: dict[str, str]) -> tuple[int, Any, dict]:
        if status not in (400, 500):  # 400 (bad JSON) and 500 (crash) are never in the contract
            self.errors.extend(self.contract.check_response(op, status, body))
        return status, body, headers

    def _dispatch(self, op: Operation, path_params: dict[str, str], query: dict[str, str],
                  text: str, token: Token, path: str) -> tuple[int, Any, dict]:
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            raise ApiError(400, "Problems parsing JSON") from None
        # GitHub (and PyGithub's add_to_labels) also accept a bare array of label names.
        checked = ({"labels": body} if op.op_id == "issues/add-labels" and isinstance(body, list)
                   else body)
        try:
            params = self.contract.check_request(op, path_params, query, checked, bool(text.strip()))
        except ValidationFailed as exc:
            raise ApiError(422, exc.message, exc.errors) from None
        if op.op_id in NOT_SERVED:
            self.errors.append(f"{op.method} {path}: {op.op_id} is in NOT_SERVED (no handler)")
            raise ApiError(501, f"{op.op_id} is not served by the local GitHub server")
        user = self._users[token.login.lower()]
        repo, role = None, "none"
        if "owner" in params and "repo" in params:
            repo = self._repos.get(f"{params['owner']}/{params['repo']}".lower())
            role = self.role_of(repo, user.login) if repo else "none"
            if repo is None or rank(role) < rank("read"):
                raise ApiError(404, "Not Found")
        if op.method != "GET":
            if token.read_only or (token.checks_forbidden and op.op_id.startswith("checks/")):
                raise ApiError(403, "Resource not accessible by integration",
                               headers={"X-Accepted-GitHub-Permissions": accepted_permissions(op.op_id)})
            if rank(role) < rank(WRITE_ROLE.get(op.op_id, "read")):
                raise ApiError(403, self.forbidden_message(user))
        ctx = Ctx(op, params, query, body, token, user, repo, role, path)
        reply: Reply = getattr(self, ROUTES[op.op_id])(ctx)
        return reply.status, reply.body, reply.headers

    def _send(self, req: BaseHTTPRequestHandler, status: int, body: Any,
              headers: dict[str, str]) -> None:
        headers = {"X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(), **headers}
        if isinstance(body, str):
            payload = body.encode()
        elif body is None:
            payload = b""
        else:
            payload = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
            headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        try:
            req.send_response(status)
            for key, value in headers.items():
                req.send_header(key, value)
            req.send_header("Content-Length", str(len(payload)))
            req.end_headers()
            req.wfile.write(payload)
            req.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout on a slow reply)
