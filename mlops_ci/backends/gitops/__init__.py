"""GitOps remotes: where promotion commits the serving manifests."""

from __future__ import annotations

from mlops_ci.backends.gitops.base import GitOpsRemote
from mlops_ci.backends.gitops.git import GitRemote
from mlops_ci.backends.gitops.github_pr import PullRequestRemote

GITOPS: dict[str, type] = {
    "git": GitRemote,
    "pull_request": PullRequestRemote,
}


def gitops_for(ws) -> GitOpsRemote:
    """A local bare repository under .mlops-ci/ by default, else the configured git remote."""
    cfg = ws.config.gitops
    return GITOPS["git"](url=ws.gitops_remote, branch=cfg.branch, author=(cfg.author_name, cfg.author_email),
                         create_if_missing=ws.uses_default_gitops)


def proposal_for(ws, base: GitRemote, env: str, model: str, version: str, *, client=None) -> GitOpsRemote:
    """Where a promotion to ``env`` is proposed as a pull request (promote --via-pr) instead of pushed.

    ``client`` is a factory of ``github.Github`` clients (default: from the environment)."""
    from mlops_ci.backends.gitops.github_pr import client_from_env, github_repository, promotion_branch

    return GITOPS["pull_request"](base, repository=github_repository(ws.config.gitops.github_repository, base.url),
                                  head_branch=promotion_branch(env, model, version),
                                  client=client or client_from_env(ws.env))


__all__ = ["GITOPS", "GitOpsRemote", "gitops_for", "proposal_for"]
