"""Whether a rollout step is live, as the Argo CD API reports it.

A canary step is a commit in the GitOps repository, and its soak may start only once the cluster
runs it: Argo CD must report the Application Synced to a revision that contains the step's commit
(that commit or a descendant: later commits may have landed on the branch since) and Healthy, with
no sync still running. Anything less is "not yet", with one line saying why, because the person
watching a stuck rollout needs to know whether to wait, to look at Argo CD, or to fix the config.

Only ``GET /api/v1/applications/{name}`` is read, as plain JSON parsed defensively: a newer Argo CD
with new or missing fields gives "Unknown", never a crash. The bearer token comes from
``ARGOCD_TOKEN`` (never from the config) and never appears in a message, an exception or a repr;
text the server sends back is cut to one short line and is plain text, not Markdown, for the
renderers to escape. Failures worth riding out (dropped connections, timeouts, 5xx, 429) are
:class:`ArgoCDError` with ``retryable`` set, as in the Argo Server transport.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from mlops_ci.errors import BackendError
from mlops_ci.masking import mask, strip_credentials

TOKEN_ENV = "ARGOCD_TOKEN"
TIMEOUT = (10.0, 30.0)  # connect, read (seconds)
MAX_SERVER_TEXT = 200  # characters of the server's own words kept in a message
REFRESH = ("normal", "hard")
RUNNING = frozenset({"Running", "Terminating"})  # operationState.phase of a sync not yet done
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class ArgoCDError(BackendError):
    """The Argo CD API could not answer. ``retryable``: a dropped connection, a timeout, a 5xx or a
    429, which a rollout waiting for a step rides out; anything else (a refused token, an unknown
    application) needs a person, so it is final."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True)
class AppStatus:
    """What Argo CD says about one Application, reduced to what decides whether a step is live.
    Fields Argo CD left out are None (or "Unknown" for the two statuses), so that a partial answer
    reads as "not live yet" rather than failing the rollout."""

    name: str
    sync_status: str  # Synced, OutOfSync, Unknown
    revision: str | None  # status.sync.revision (revisions[0] for a multi-source Application)
    health_status: str  # Healthy, Progressing, Degraded, Suspended, Missing, Unknown
    health_message: str | None
    operation_phase: str | None  # status.operationState.phase: Running, Succeeded, Failed, ...
    operation_finished_at: datetime | None
    reconciled_at: datetime | None


class ArgoCD:
    """A client of the Argo CD API server (``url``: where the UI and API answer, e.g.
    ``https://argocd.example.com``). TLS is verified against the system store, ``ca_file``, or not
    at all with ``insecure_skip_tls_verify`` (a port-forward to a self-signed server)."""

    def __init__(self, url: str, *, token: str | None = None, ca_file: str | None = None,
                 insecure_skip_tls_verify: bool = False, env: Mapping[str, str] | None = None,
                 timeout: tuple[float, float] = TIMEOUT) -> None:
        import requests

        env = os.environ if env is None else env
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.session.verify = False if insecure_skip_tls_verify else (ca_file or True)
        token = token if token is not None else env.get(TOKEN_ENV, "")
        token = token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        self._secrets = tuple(v for v in (token,) if v)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"ArgoCD({strip_credentials(self.url)!r})"

    def application(self, name: str, *, app_namespace: str | None = None, project: str | None = None,
                    refresh: str | None = None) -> AppStatus:
        """The status of Application ``name`` (``app_namespace``: where it lives when not in Argo
        CD's own namespace; ``project``: refuse it unless it belongs to that project; ``refresh``:
        "normal" or "hard" to make Argo CD compare with git now instead of at its next poll)."""
        if refresh is not None and refresh not in REFRESH:
            raise ValueError(f"refresh must be one of {REFRESH}, not {refresh!r}")
        params = {key: value for key, value in (("appNamespace", app_namespace), ("projects", project),
                                                ("refresh", refresh)) if value}
        where = f" in namespace {app_namespace}" if app_namespace else ""
        doc = self._get(f"/api/v1/applications/{quote(name, safe='')}", params, what=f"{name}{where}")
        return parse_application(doc, name)

    # -- plumbing ----------------------------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, str], *, what: str) -> Any:
        import requests

        where = strip_credentials(self.url)
        try:
            resp = self.session.get(self.url + path, params=params, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
            raise ArgoCDError(f"Argo CD at {where} did not answer for application {what}: {type(err).__name__}",
                              retryable=True, hint="check the Argo CD URL and that the API server is reachable "
                                                   "from here") from err
        except requests.RequestException as err:
            raise ArgoCDError(f"Argo CD at {where}: {type(err).__name__}: {self._clean(str(err))}") from err
        status = resp.status_code
        if status in (401, 403):
            refused = "refused the token in" if self._secrets else "wants a token: none is set in"
            raise ArgoCDError(f"Argo CD at {where} {refused} {TOKEN_ENV} (HTTP {status}: {self._server_text(resp)})",
                              status=status, hint=f"set {TOKEN_ENV} to a token of an Argo CD account allowed to "
                                                  f"get the application (argocd account generate-token)")
        if status == 404:
            raise ArgoCDError(f"Argo CD has no application {what}", status=404,
                              hint="set the Argo CD application name of this environment in .mlops-ci.yaml "
                                   "(as `argocd app list` shows it, with its namespace and project)")
        if status >= 400:
            retryable = status == 429 or status >= 500
            raise ArgoCDError(f"Argo CD at {where} answered {status} for application {what}: "
                              f"{self._server_text(resp)}", status=status, retryable=retryable,
                              hint="Argo CD is busy or failing; this is retried" if retryable else None)
        try:
            return resp.json()
        except ValueError as err:
            raise ArgoCDError(f"Argo CD at {where} answered with something that is not JSON for application {what}",
                              retryable=True, hint="check that the URL is the Argo CD API server, not a proxy's "
                                                   "login page") from err

    def _clean(self, text: str) -> str:
        """Server or library text fit for a message: the token masked, one short line."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return one_line(mask(text))

    def _server_text(self, resp: Any) -> str:
        try:
            body = resp.json()
        except ValueError:
            return self._clean(resp.text or resp.reason or "")
        if isinstance(body, dict):
            return self._clean(str(body.get("message") or body.get("error") or resp.reason or ""))
        return self._clean(str(body))


def one_line(text: str | None, limit: int = MAX_SERVER_TEXT) -> str:
    """``text`` on one line without control characters, cut to ``limit`` characters: plain text."""
    flat = " ".join(_CONTROL.sub(" ", text or "").split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _field(doc: Any, *keys: str) -> Any:
    for key in keys:
        doc = doc.get(key) if isinstance(doc, Mapping) else None
    return doc


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_application(doc: Any, name: str) -> AppStatus:
    """An :class:`AppStatus` from an Application document; nothing in it is trusted to be there."""
    status = _field(doc, "status")
    revision = _text(_field(status, "sync", "revision"))
    revisions = _field(status, "sync", "revisions")
    if revision is None and isinstance(revisions, list) and revisions:
        revision = _text(revisions[0])
    return AppStatus(
        name=_text(_field(doc, "metadata", "name")) or name,
        sync_status=_text(_field(status, "sync", "status")) or "Unknown",
        revision=revision,
        health_status=_text(_field(status, "health", "status")) or "Unknown",
        health_message=_text(_field(status, "health", "message")),
        operation_phase=_text(_field(status, "operationState", "phase")),
        operation_finished_at=_time(_field(status, "operationState", "finishedAt")),
        reconciled_at=_time(_field(status, "reconciledAt")),
    )


def short(revision: str | None) -> str:
    return revision[:12] if revision else "no revision"


def live(status: AppStatus, commit: str, contains: Callable[[str, str], bool]) -> tuple[bool, str]:
    """Whether the step's ``commit`` is live, and the line that says why (or why not yet).

    ``contains(descendant, ancestor)`` answers from git whether the synced revision holds the
    commit. The checks run from the most to the least telling: a running sync explains any other
    state; then whether Argo CD synced at all, to what, and only then whether that is healthy
    (the health of an older revision says nothing about the step's).
    """
    app = f"Argo CD application {status.name}"
    if status.operation_phase in RUNNING:
        return False, f"{app}: a sync is running (phase {status.operation_phase})"
    if status.sync_status != "Synced":
        return False, (f"{app} is {one_line(status.sync_status, 40)} (synced to {short(status.revision)}, "
                       f"the step is {short(commit)})")
    if status.revision is None:
        return False, f"{app} is Synced but reports no revision"
    if not contains(status.revision, commit):
        return False, (f"{app} is synced to {short(status.revision)}, which does not contain the step's "
                       f"commit {short(commit)} yet")
    if status.health_status != "Healthy":
        reason = f"{app} is {one_line(status.health_status, 40)}"
        if status.health_message:
            reason += f": {one_line(status.health_message)}"
        return False, reason
    return True, f"{app} is Synced to {short(status.revision)} and Healthy"
