"""When an environment served a version, read from the GitOps repository's history.

A workload manifest we write pins its version (``mlops-ci.dev/model-version``); each commit on
the GitOps branch's mainline that changed it starts what it pins. The spans in which ``version``
was pinned are the policy's evidence that a version was served in an environment, and for how
long (``environments.<env>.policy.after`` / ``soak``). The commit's time stands for the time it
was served: Argo CD syncs it moments later. During a rollout the version rolled out is only a canary:
its span starts with the commit that completes the rollout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from mlops_ci.serving import canary

MAX_COMMITS = 500  # of the manifest's history, newest first


def served_spans(log: Callable[[Sequence[str]], list[Any]], show: Callable[[str, str], bytes | None], path: str,
                 version: str) -> tuple[tuple[datetime, datetime | None, bool], ...]:
    """(from, until, rolled back) for each span in which ``path`` pinned ``version``, oldest first
    (until None: it still does; rolled back: a rollback away from it ended the span). ``log`` and
    ``show``: a GitOps checkout's (its mainline's commits, newest first, each with ``sha``,
    ``committed`` and its trailers; a file at a commit)."""
    spans: list[tuple[datetime, datetime | None, bool]] = []
    since: datetime | None = None
    for entry in reversed(log([path])[:MAX_COMMITS]):
        at = datetime.fromtimestamp(entry.committed, UTC)
        serves = canary.serving_version(show(entry.sha, path)) == version  # a canary does not count yet
        if since is not None and not serves:
            spans.append((since, at, entry.trailer("Rollback-Of") == version))
            since = None
        elif since is None and serves:
            since = at
    if since is not None:
        spans.append((since, None, False))
    return tuple(spans)


__all__ = ["served_spans"]
