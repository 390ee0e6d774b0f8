"""Promotion via pull request: the commit goes to its own branch and a pull request proposes it.

The GitOps repository is reached with git, as for a direct push (same clone, same rendering,
same validation); only the last step differs: instead of pushing to ``gitops.branch`` the
commit is pushed to ``mlops-ci/promote/<env>/<model>-v<version>`` and a pull request from that
branch to ``gitops.branch`` is opened through GitHub's REST API. ``gitops.branch`` does not move
until someone merges it (Argo CD syncs only then); the MLflow alias moves when a later promote
finds the version served (`promote --declared` after the merge, or the same promote again).

Running the same promotion again finds the branch and its open pull request: identical
content is a no-op; different content (the base branch moved) replaces the branch's commit
(``--force-with-lease``, on this tool's own branch only) and updates the pull request's text.

The pull request's body ends with the commit's trailers, so a squash merge (GitHub's default
message is the title and body) keeps the lineage on ``gitops.branch`` for rollback.

Where the environment lists ``policy.approvers``, the body says who must approve, and
:meth:`PullRequestRemote.approval` reads the merged pull request's reviews when the promote runs
again: the alias moves only after an approver approved it (mlops_ci.stages.promotion). A branch
protection rule on ``gitops.branch`` (required reviews from code owners) makes GitHub enforce the
same before the merge; mlops-ci checks it either way, since the GitOps repository may not have one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mlops_ci import gitutil
from mlops_ci.backends.gitops.base import HistoryEntry
from mlops_ci.backends.gitops.changeset import diff
from mlops_ci.backends.gitops.git import GitCheckout, GitRemote
from mlops_ci.errors import BackendError, PromotionError, UsageError

if TYPE_CHECKING:
    from github import Github

    from mlops_ci.backends.github.approvals import Approval

TOKEN_ENV = "MLOPS_CI_GITOPS_TOKEN"  # may open pull requests in the GitOps repository; else GITHUB_TOKEN
MARKER = "<!-- mlops-ci:promotion -->"
BODY_LIMIT = 60_000  # GitHub refuses bodies over 65,536 characters
_GITHUB_URL = re.compile(r"^(?:https://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)"
                         r"([A-Za-z0-9-]+/[A-Za-z0-9._-]+?)(?:\.git)?/?$")


def promotion_branch(env: str, model: str, version: str) -> str:
    """The branch a promotion is proposed on (env and model are validated names, version digits)."""
    return f"mlops-ci/promote/{env}/{model}-v{version}"


def github_slug(url: str | None) -> str | None:
    """owner/name of a github.com clone URL (https, ssh or scp-like); None for any other URL or path."""
    match = _GITHUB_URL.match(url or "")
    return match.group(1) if match else None


def github_repository(configured: str | None, url: str) -> str:
    """owner/name of the GitOps repository on GitHub: configured, else read from a github.com URL."""
    found = configured or github_slug(url)
    if found:
        return found
    raise UsageError("a promotion via pull request needs the GitOps repository on GitHub, but gitops.remote "
                     "is not a github.com URL", hint="set gitops.github_repository: owner/name in .mlops-ci.yaml, "
                     "or promote with --push")


def _subject_and_trailers(message: str) -> tuple[str, list[tuple[str, str]]]:
    subject = message.split("\n", 1)[0]
    last = message.strip().rsplit("\n\n", 1)[-1]
    trailers = [(k.strip(), v.strip()) for k, sep, v in (line.partition(":") for line in last.splitlines()) if sep]
    return subject, trailers


def pull_request_body(message: str, diffs: Sequence[str], branch: str, approvers: Sequence[str] = ()) -> str:
    subject, trailers = _subject_and_trailers(message)
    lineage = ["| | |", "|---|---|", *(f"| {k} | `{v}` |" for k, v in trailers)]
    diff = "\n".join(d.rstrip("\n") for d in diffs).replace("```", "`\u200b``")
    room = BODY_LIMIT - 2000
    if len(diff) > room:
        diff = diff[:room].rsplit("\n", 1)[0] + "\n... (diff trimmed: see the Files tab)"
    trailer_block = "\n".join(f"{k}: {v}" for k, v in trailers)
    return (f"{MARKER}\n**{subject}**, proposed by mlops-ci from `{branch}`. Merging this pull request makes "
            "Argo CD serve it; the MLflow alias moves at the next `mlops-ci promote --declared` (or the same "
            "promote again) once it is merged.\n\n" + _approvers_note(approvers) +
            f"### Manifest diff\n\n```diff\n{diff}\n```\n\n### Lineage\n\n" + "\n".join(lineage)
            + f"\n\n{trailer_block}\n")


def _approvers_note(approvers: Sequence[str]) -> str:
    if not approvers:
        return ""
    from mlops_ci.backends.github.approvals import describe

    return (f"Needs an approving review from one of {describe(approvers)} (`policy.approvers`) on its latest "
            "commit: mlops-ci moves the alias only then.\n\n")


class PullRequestCheckout:
    """A checkout of the base branch whose commit lands on the promotion branch, in a pull request."""

    def __init__(self, remote: PullRequestRemote, inner: GitCheckout) -> None:
        self.remote = remote
        self.inner = inner
        self.head = inner.head  # the base branch's tip: what the promotion is planned against
        self.proposal: str | None = None  # the pull request, once the commit is proposed

    @property
    def workdir(self):  # the working copy (manifest validation builds it with kustomize)
        return self.inner.path

    @property
    def branch(self) -> str:  # the promotion's own branch, proposed into the GitOps branch
        return self.remote.head_branch

    def read(self, path: str) -> bytes | None:
        return self.inner.read(path)

    def write(self, files: dict[str, bytes | None]) -> None:
        self.inner.write(files)

    def show(self, rev: str, path: str) -> bytes | None:
        return self.inner.show(rev, path)

    def log(self, paths: Sequence[str], *, exclude: Sequence[str] = ()) -> list[HistoryEntry]:
        return self.inner.log(paths, exclude=exclude)

    def commit_and_push(self, files: dict[str, bytes | None], message: str) -> str:
        remote, work = self.remote, self.inner.path
        if self.head is None:
            raise PromotionError(f"{remote.url} has no branch {remote.branch!r} yet, so a pull request has no base",
                                 hint="make the first promotion with --push, or create the branch")
        env = remote.git.identity_env()
        ref = f"refs/heads/{remote.head_branch}"
        diffs = [diff(p, self.inner.read(p), data) for p, data in files.items()]
        listed = gitutil.git(["ls-remote", "origin", "--", ref], work, env=env).stdout.split()
        old = listed[0] if listed else None
        if old is not None:
            gitutil.git(["fetch", "--quiet", "origin", "--", ref], work, env=env)
        if old is not None and all(gitutil.show_file(old, p, work) == data for p, data in files.items()):
            sha = old  # the open proposal already holds exactly this change
        else:
            self.inner.write(files)  # refuses paths outside the checkout
            gitutil.git(["add", "--all", "--", *files], work)
            gitutil.git(["commit", "--quiet", "--no-verify", "-F", "-"], work, env=env, input_text=message)
            proc = gitutil.git(["push", "--quiet", f"--force-with-lease={ref}:{old or ''}", "origin",
                                f"HEAD:{ref}"], work, check=False, env=env)
            if proc.returncode != 0:
                lines = (proc.stderr or proc.stdout).strip().splitlines()
                raise BackendError(f"push of {remote.head_branch} to {remote.url} failed: "
                                   f"{lines[-1] if lines else 'no output'}",
                                   hint="another run is proposing the same promotion; re-run it when that is done")
            sha = gitutil.rev_parse("HEAD", work) or ""
        subject = message.split("\n", 1)[0]
        self.proposal = remote.open_pull_request(subject, pull_request_body(message, diffs, remote.head_branch,
                                                                            remote.approvers))
        return sha


class PullRequestRemote:
    """The GitOps remote ``git``, where a promotion is proposed as a pull request on GitHub."""

    def __init__(self, git: GitRemote, *, repository: str, head_branch: str,
                 client: Callable[[], Github], approvers: Sequence[str] = (),
                 teams: Callable[[], Github] | None = None) -> None:
        self.git = git
        self.url = git.url
        self.branch = git.branch  # the pull request's base
        self.repository = repository
        self.head_branch = head_branch
        self._client = client
        self.approvers = tuple(approvers)  # the environment's policy.approvers: one must approve
        self._teams = teams or client  # reads team memberships (MLOPS_CI_TEAMS_TOKEN)
        self.pull_request: str | None = None

    def check(self) -> None:
        self.git.check()

    @contextmanager
    def checkout(self) -> Iterator[PullRequestCheckout]:
        with self.git.checkout() as co:
            yield self.adopt(co)

    def adopt(self, co: GitCheckout) -> PullRequestCheckout:
        """``co`` (a checkout of the GitOps branch), with its commit proposed here instead of pushed."""
        return PullRequestCheckout(self, co)

    def open_pull_request(self, title: str, body: str) -> str:
        """The open pull request from the promotion branch (created, or its text brought up to date)."""
        from mlops_ci.backends.github.pulls import open_or_update

        self.pull_request = open_or_update(self._client(), self.repository, base=self.branch, head=self.head_branch,
                                           title=title, body=body)
        return self.pull_request


    def approval(self) -> Approval | None:
        """Whether the pull request that merged this promotion was approved by an approver; None
        when the environment lists none (nothing to check)."""
        if not self.approvers:
            return None
        from mlops_ci.backends.github.approvals import Approval, Teams, approval_of, describe
        from mlops_ci.backends.github.pulls import merged_from

        merged = merged_from(self._client(), self.repository, base=self.branch, head=self.head_branch)
        if merged is None:
            return Approval(None, why_not=f"no pull request from {self.head_branch} was merged into {self.branch} "
                                          f"in {self.repository}, so none was approved by one of "
                                          f"{describe(self.approvers)}")
        return approval_of(merged, self.approvers, Teams(self._teams).is_member)


def client_from_env(env: Mapping[str, str]) -> Callable[[], Github]:
    """A client factory: the token is MLOPS_CI_GITOPS_TOKEN, else GITHUB_TOKEN (never logged)."""
    def make() -> Github:
        from mlops_ci.backends.github.client import make_client

        return make_client(env, token=env.get(TOKEN_ENV) or None)
    return make


__all__ = ["PullRequestRemote", "client_from_env", "github_repository", "github_slug", "promotion_branch", "pull_request_body"]
