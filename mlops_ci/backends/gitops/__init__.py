"""GitOps remotes: where promotion commits the serving manifests.

A promotion routed to a pull request (``promote_via``, ``--via-pr``) is proposed through
:class:`~mlops_ci.backends.gitops.github_pr.PullRequestRemote`, which wraps the configured remote's
checkout (mlops_ci.policy decides the route); it is not a remote of its own to configure.
"""

from __future__ import annotations

from mlops_ci.backends.gitops.base import GitOpsRemote
from mlops_ci.backends.gitops.git import GitRemote
from mlops_ci.backends.gitops.github_pr import PullRequestRemote

GITOPS: dict[str, type] = {
    "git": GitRemote,  # any git URL or path; by default a bare repository under .mlops-ci/
}


def gitops_for(ws) -> GitOpsRemote:
    """The configured GitOps remote (``gitops.backend``, default git): ``gitops.remote``, else a local
    bare repository under .mlops-ci/."""
    from mlops_ci.backends.naming import choose

    cfg = ws.config.gitops
    remote = choose(GITOPS, cfg.backend, role="GitOps remote", setting="gitops.backend")
    return remote(url=ws.gitops_remote, branch=cfg.branch, author=(cfg.author_name, cfg.author_email),
                  create_if_missing=ws.uses_default_gitops)


def proposal_for(ws, base: GitRemote, env: str, model: str, version: str, *, client=None) -> PullRequestRemote:
    """Where a promotion to ``env`` is proposed as a pull request (promote --via-pr) instead of pushed.

    ``client`` is a factory of ``github.Github`` clients (default: from the environment). The
    environment's ``policy.approvers`` travel with it: one of them must approve the pull request."""
    from mlops_ci.backends.github.approvals import teams_client
    from mlops_ci.backends.gitops.github_pr import (
        client_from_env,
        github_repository,
        promotion_branch,
    )

    client = client or client_from_env(ws.env)
    return PullRequestRemote(base, repository=github_repository(ws.config.gitops.github_repository, base.url),
                             head_branch=promotion_branch(env, model, version), client=client,
                             approvers=ws.config.environments[env].policy.approvers,
                             teams=teams_client(ws.env, client))


__all__ = ["GITOPS", "GitOpsRemote", "gitops_for", "proposal_for"]
