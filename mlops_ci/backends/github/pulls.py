"""Pull requests: what GitHub says of one (its state and head, pinned when read), open one from a
branch, or bring the open one's text up to date.

Used by promotion via pull request (mlops_ci.backends.gitops.github_pr); the retrain pull
requests of monitoring will open theirs the same way. A create that got a 5xx is looked up before
it is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_ci.backends.github.client import api_call, write_once

if TYPE_CHECKING:
    from github import Github
    from github.PullRequest import PullRequest
    from github.Repository import Repository


@dataclass(frozen=True)
class PullFacts:
    """The pull request as GitHub reports it when it is read."""

    number: int
    state: str  # open or closed
    merged: bool
    head_sha: str
    head_repository: str | None  # None when the fork was deleted
    base_repository: str

    @property
    def fork(self) -> bool:
        return self.head_repository is None or self.head_repository.lower() != self.base_repository.lower()


def read_pull(repo: Repository, number: int, repository: str) -> PullFacts:
    """Pull request ``number`` of ``repo`` (``repository``: its owner/name, the base when GitHub
    reports none)."""
    pull = repo.get_pull(number)
    head_repo, base_repo = pull.head.repo, pull.base.repo
    return PullFacts(number=number, state=pull.state, merged=bool(pull.merged), head_sha=pull.head.sha,
                     head_repository=head_repo.full_name if head_repo is not None else None,
                     base_repository=base_repo.full_name if base_repo is not None else repository)


def open_or_update(client: Github, repository: str, *, base: str, head: str, title: str, body: str) -> str:
    """The URL of the open pull request from ``head`` into ``base`` in ``repository`` (owner/name):
    created, or its title and body brought up to date."""
    repo = client.get_repo(repository, lazy=True)
    owner = repository.split("/")[0]
    api = f"/repos/{repository}/pulls"

    def find():
        with api_call("GET", api):
            return next(iter(repo.get_pulls(state="open", head=f"{owner}:{head}", base=base)), None)

    pr = find()
    if pr is None:
        with api_call("POST", api):
            pr = write_once(lambda: repo.create_pull(base=base, head=head, title=title, body=body), find)
    elif pr.title != title or (pr.body or "") != body:
        with api_call("PATCH", f"{api}/{pr.number}"):
            pr.edit(title=title, body=body)
    return pr.html_url


def merged_from(client: Github, repository: str, *, base: str, head: str) -> PullRequest | None:
    """The pull request from branch ``head`` (in ``repository`` itself) most recently merged into
    ``base``, or None: what a promotion proposed on that branch shipped through."""
    repo = client.get_repo(repository, lazy=True)
    owner = repository.split("/")[0]
    with api_call("GET", f"/repos/{repository}/pulls"):
        closed = repo.get_pulls(state="closed", head=f"{owner}:{head}", base=base, sort="updated", direction="desc")
        merged = [pr for pr in closed if pr.merged_at is not None]
    return max(merged, key=lambda pr: pr.merged_at, default=None)


def pulls_from(client: Github, repository: str, prefix: str, *, limit: int = 200) -> list[dict]:
    """Pull requests of ``repository`` whose head branch (in the repository itself) starts with
    ``prefix``, open and closed, newest first: ``branch``, ``state``, ``merged``, ``closed_at``,
    ``number``, ``url``."""
    repo = client.get_repo(repository, lazy=True)
    out = []
    with api_call("GET", f"/repos/{repository}/pulls"):
        for i, pr in enumerate(repo.get_pulls(state="all", sort="created", direction="desc")):
            if i >= limit:
                break
            head = pr.head
            if head.ref.startswith(prefix) and head.repo is not None and head.repo.full_name == repository:
                out.append({"branch": head.ref, "state": pr.state, "merged": pr.merged_at is not None,
                            "closed_at": pr.closed_at, "number": pr.number, "url": pr.html_url})
    return out


__all__ = ["PullFacts", "merged_from", "open_or_update", "pulls_from", "read_pull"]
