"""The facts of this checkout that a training Workflow needs: clone URL, commit, PR, owner/name.

Reads git and the GitHub Actions environment (through :func:`mlops_ci.context.detect_context`);
:mod:`mlops_ci.argo.workflow` then builds the Workflow from them without any I/O.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mlops_ci import gitutil
from mlops_ci.argo.workflow import MlflowRun, build_workflow



def repository_label(ctx, top: Path) -> str:
    """The repository a training Workflow is labelled with: the event's owner/name, else the
    checkout's folder name (local runs)."""
    return ctx.repository or top.name

def public_clone_url(url: str) -> str | None:
    """``url`` without user info: a token GitHub Actions or a user put in a remote never reaches Argo."""
    url = url.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and (parts.username or parts.password):
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def clone_url(root: Path, repository: str | None, env: Mapping[str, str]) -> str | None:
    """The origin remote of the checkout, else ``$GITHUB_SERVER_URL/<repository>.git``."""
    remote = gitutil.git(["remote", "get-url", "origin"], root, check=False).stdout
    url = public_clone_url(remote)
    if url:
        return url
    if repository and env.get("GITHUB_ACTIONS") == "true":
        return f"{env.get('GITHUB_SERVER_URL', 'https://github.com').rstrip('/')}/{repository}.git"
    return None


def workflow_for_checkout(
    loaded,
    model: str,
    *,
    nodes: int | None = None,
    gpus_per_node: int | None = None,
    pr: int | None = None,
    head_sha: str | None = None,
    mlflow: MlflowRun | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Workflow that would train ``model`` of the loaded config at this checkout's commit.

    ``pr`` and ``head_sha`` default to the context's (the pull request of the GitHub event, or
    none locally; HEAD).
    """
    from mlops_ci.context import detect_context

    env = os.environ if env is None else env
    config = loaded.config
    top = gitutil.toplevel(loaded.root)
    ctx = detect_context(loaded.root, config.default_branch, env=env)
    repository = repository_label(ctx, top)
    argo = config.models[model].train.argo if model in config.models else None
    repo = (argo.repo if argo is not None else None) or clone_url(top, ctx.repository, env)
    config_path = Path(os.path.relpath(Path(loaded.path).resolve(), top.resolve())).as_posix()
    return build_workflow(
        config, model,
        repo=repo, head_sha=head_sha or ctx.head_sha, pr=ctx.pr_number if pr is None else pr,
        repository=repository, nodes=nodes, gpus_per_node=gpus_per_node, mlflow=mlflow,
        config_path=config_path,
    )
