"""The Argo transport role: create, read, list, stop and read the logs of Workflows.

Two transports implement it: the Argo Server's REST API (``server``) and the Kubernetes API
(``kubernetes``, through the ``kubernetes`` client's CustomObjectsApi). Both speak plain JSON
documents (``dict``), never a typed SDK, so a newer Argo with new fields does not break us.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from mlops_ci.errors import BackendError

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
TOKEN_ENV = "ARGO_TOKEN"  # the bearer token of both transports (never in the config)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# what the watcher reads on every poll (the Argo Server returns only these with `fields`)
STATUS_FIELDS = ("metadata.name", "metadata.labels", "status.phase", "status.message", "status.startedAt",
                 "status.finishedAt", "status.outputs", "status.nodes", "status.progress")


class TransportError(BackendError):
    """A call to Argo or the Kubernetes API failed. ``retryable``: a dropped connection, a
    timeout, a 5xx or a 429, which the watcher rides out; anything else is final."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retryable = retryable


class AlreadyExists(TransportError):
    """A Workflow of that name exists (HTTP 409)."""


def bearer(token: str) -> str:
    """The Authorization header value for ``token`` (as `argo auth token` prints it, or bare)."""
    return token if token.lower().startswith("bearer ") else f"Bearer {token}"


def label_selector(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def pick(doc: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """Only ``fields`` (dotted paths) of ``doc``, as the Argo Server's ``fields`` parameter does."""
    out: dict[str, Any] = {}
    for path in fields:
        keys = path.split(".")
        src: Any = doc
        for key in keys:
            src = src.get(key) if isinstance(src, Mapping) else None
        if src is None:
            continue
        dst = out
        for key in keys[:-1]:
            dst = dst.setdefault(key, {})
        dst[keys[-1]] = src
    return out


class ArgoTransport(Protocol):
    name: str
    namespace: str

    def create(self, workflow: dict[str, Any]) -> dict[str, Any]:
        """Submit ``workflow``; raises :class:`AlreadyExists` when its name is taken."""

    def get(self, name: str, fields: Sequence[str] | None = None) -> dict[str, Any] | None:
        """The Workflow (only ``fields`` when given), or None when there is none."""

    def list(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Workflows whose labels include ``labels`` (metadata and status only)."""

    def stop(self, name: str, message: str | None = None) -> None:
        """Stop it: running steps are terminated, exit handlers run."""

    def logs(self, name: str) -> Iterator[str]:
        """The log lines of the Workflow's main containers (what has been written so far)."""
