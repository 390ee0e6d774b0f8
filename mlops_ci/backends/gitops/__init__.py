"""GitOps remotes: where promotion commits the serving manifests."""

from __future__ import annotations

from mlops_ci.backends.gitops.base import GitOpsRemote
from mlops_ci.backends.gitops.git import GitRemote

GITOPS: dict[str, type] = {
    "git": GitRemote,
}


def gitops_for(ws) -> GitOpsRemote:
    """A local bare repository under .mlops-ci/ by default, else the configured git remote."""
    cfg = ws.config.gitops
    return GITOPS["git"](url=ws.gitops_remote, branch=cfg.branch, author=(cfg.author_name, cfg.author_email),
                         create_if_missing=ws.uses_default_gitops)


__all__ = ["GITOPS", "GitOpsRemote", "gitops_for"]
