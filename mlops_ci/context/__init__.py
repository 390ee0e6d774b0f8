"""Context: where and why mlops-ci runs — a GitHub Actions event or the local git checkout."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mlops_ci.context.github import github_context
from mlops_ci.context.local import local_context
from mlops_ci.records import Context


def detect_context(root: Path, default_branch: str, env: Mapping[str, str] | None = None) -> Context:
    """GitHub Actions when ``GITHUB_ACTIONS=true`` (and an event payload exists), else local git."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_EVENT_PATH"):
        return github_context(env, default_branch=default_branch, root=root)
    return local_context(root, default_branch=default_branch)


__all__ = ["detect_context", "github_context", "local_context"]
