"""Freezes of an environment: its policy's windows, and a ``FREEZE`` file in its GitOps folder.

    <gitops.path>/<env>/FREEZE

Anyone who can push to the GitOps repository can stop the line: while the file exists, promotions
into the environment are refused (its first line is shown as the reason); rollbacks go on. Delete
it to lift the freeze. Kustomize only builds what a kustomization lists, so it never reaches a
cluster. The policy's windows are in ``.mlops-ci.yaml`` (:mod:`mlops_ci.config.policy`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from datetime import datetime

from mlops_ci.config.schema import Config

FILENAME = "FREEZE"


def path(root: str, env: str) -> str:
    return posixpath.join(root, env, FILENAME)


def active(config: Config, env: str, read: Callable[[str], bytes | None], now: datetime) -> tuple[tuple[str, datetime | None], ...]:
    """Each freeze holding ``env`` at ``now`` (aware): (what it is, when it ends; None: until removed)."""
    found: list[tuple[str, datetime | None]] = []
    for window in config.environments[env].policy.freeze:
        until = window.holds_until(now)
        if until is not None:
            found.append((window.describe(), until))
    marker = path(config.gitops.path, env)
    data = read(marker)
    if data is not None:
        first = next((line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()), "")
        shown = " ".join(first.split())[:200]
        found.append((f"{marker} exists in the GitOps repository" + (f" ({shown!r})" if shown else ""), None))
    return tuple(found)


__all__ = ["FILENAME", "active", "path"]
