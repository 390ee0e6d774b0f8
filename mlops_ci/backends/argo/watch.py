"""Watch a Workflow to its end by polling: backoff, dropped connections, restarts, a deadline.

Polling (not the watch stream) because streams through ingresses and load balancers are cut
after a minute or so and resuming them needs resource versions that proxies lose; a GET with
the ``fields`` filter is small, and the interval grows while nothing changes. A poll that fails
for a reason worth riding out (a dropped connection, a 5xx, a server restart) is retried with
backoff until the deadline; anything else ends the watch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_ci.backends.argo.base import STATUS_FIELDS, ArgoTransport, TransportError

DONE = {"Succeeded", "Failed", "Error"}


@dataclass
class WatchResult:
    name: str
    phase: str  # Succeeded, Failed, Error, or Timeout when the deadline came first
    message: str = ""
    outputs: dict[str, str] = field(default_factory=dict)  # the Workflow's output parameters
    started_at: str | None = None
    finished_at: str | None = None
    polls: int = 0
    errors: int = 0  # polls that failed and were retried

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded"


def output_parameters(doc: dict[str, Any]) -> dict[str, str]:
    params = ((doc.get("status") or {}).get("outputs") or {}).get("parameters") or []
    return {p["name"]: str(p.get("value", "")) for p in params if isinstance(p, dict) and "name" in p}


def watch(transport: ArgoTransport, name: str, *, deadline_s: float, interval_s: float = 2.0,
          max_interval_s: float = 30.0, on_change: Callable[[str, str], None] | None = None,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> WatchResult:
    """Poll ``name`` until it ends or ``deadline_s`` passes; ``on_change(phase, message)`` on news."""
    result = WatchResult(name=name, phase="Pending")
    end = clock() + deadline_s
    wait = interval_s
    failures = 0
    last: tuple[str, str] | None = None
    while True:
        try:
            doc = transport.get(name, fields=STATUS_FIELDS)
            failures = 0
        except TransportError as err:
            if not err.retryable:
                raise
            failures += 1
            result.errors += 1
            left = end - clock()
            if left <= 0:
                raise TransportError(f"lost {name} after {failures} failed polls: {err.message}", retryable=True,
                                     hint=err.hint) from err
            sleep(min(max_interval_s, interval_s * 2 ** min(failures - 1, 6), left))
            continue
        result.polls += 1
        if doc is None:
            raise TransportError(f"Workflow {name} is gone (deleted while mlops-ci was watching it)")
        status = doc.get("status") or {}
        phase = status.get("phase") or "Pending"
        message = status.get("message") or ""
        result.phase, result.message = phase, message
        result.started_at, result.finished_at = status.get("startedAt"), status.get("finishedAt")
        if (phase, message) != last:
            last = (phase, message)
            wait = interval_s
            if on_change is not None:
                on_change(phase, message)
        else:
            wait = min(max_interval_s, wait * 1.5)
        if phase in DONE:
            result.outputs = output_parameters(doc)
            return result
        if clock() >= end:
            result.phase = "Timeout"
            return result
        sleep(min(wait, max(end - clock(), 0.0)))
