"""The GitHub publisher: the pull-request comment, the check run, the job summary and outputs.

Where it posts comes from the context of the job that publishes (the GitHub event), not from
the record, which may come from a fork's artifact and is untrusted:

- ``pull_request`` from a fork (read-only token): nothing is posted; the job summary and
  the outputs are written, and a note says that a ``workflow_run`` job posts the report;
- ``workflow_run`` (the base repository's context, after the checks workflow): the PR is the
  open one whose head is the run's head SHA and head repository (``pull_requests`` in the
  payload is empty for forks), and the record must report that same head SHA;
- anything else: the PR of the event, or of ``--pr``; no PR (a push) means a check run only.

A PR whose head is no longer the record's head SHA gets nothing: a newer run reports there.
PyGithub is imported only inside functions (``mlops-ci --help`` stays light).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_ci.backends.publishers.github_plan import Publication, describe, plan_publication
from mlops_ci.github_actions import append_summary, set_outputs
from mlops_ci.records import Context, RunRecord

if TYPE_CHECKING:
    from github import Github
    from github.PullRequest import PullRequest
    from github.Repository import Repository

ACTIONS_LOGIN = "github-actions[bot]"  # the login of the workflow's GITHUB_TOKEN, which cannot GET /user
LOGIN_ENV = "MLOPS_CI_GITHUB_LOGIN"  # whose comments are ours, when it is not the token's own login


@dataclass
class Target:
    """Where a report goes: ``pr_number`` None with ``head_repo`` set means "find the PR by head"."""

    repository: str | None
    head_sha: str
    pr_number: int | None = None
    head_repo: str | None = None
    skip: str | None = None  # why nothing is posted

    def where(self) -> str:
        if self.skip:
            return f"nothing ({self.skip})"
        pr = (f"PR #{self.pr_number}" if self.pr_number else
              f"the open PR with head {self.head_sha[:12]} from {self.head_repo}" if self.head_repo else "no PR")
        return f"{self.repository} {pr}, head {self.head_sha[:12]}"


def runtime_context(env: Mapping[str, str], default_branch: str) -> tuple[Context | None, str | None]:
    """The context of the publishing job in GitHub Actions (None outside it), and for a
    ``workflow_run`` event the run's head repository (which the Context does not keep)."""
    if env.get("GITHUB_ACTIONS") != "true" or not env.get("GITHUB_EVENT_PATH"):
        return None, None
    from mlops_ci.context.github import dig, github_context, load_event

    context = github_context(env, default_branch=default_branch)
    head_repo = None
    if context.event == "workflow_run":
        head_repo = dig(load_event(env["GITHUB_EVENT_PATH"]), "workflow_run", "head_repository", "full_name")
    return context, head_repo


def resolve_target(record: RunRecord, context: Context | None, *, repository: str | None = None,
                   pr: int | None = None, head_sha: str | None = None, head_repo: str | None = None) -> Target:
    """Where ``record``'s report goes from the job whose context is ``context`` (None: local)."""
    sha = head_sha or record.context.head_sha
    if context is None:
        return Target(repository or record.context.repository, sha, pr or record.context.pr_number)
    repository = context.repository or repository
    if context.event == "pull_request" and context.fork:
        return Target(repository, sha, context.pr_number, skip=(
            "a pull request from a fork runs with a read-only token: the report is in the job summary, "
            "and a workflow_run job in the base repository posts it"))
    if context.event == "workflow_run":
        if head_sha is None and record.context.head_sha != context.head_sha:
            return Target(repository, sha, skip=(
                f"the record reports head {record.context.head_sha[:12]}, but the workflow run is for "
                f"{context.head_sha[:12]}"))
        if pr is None and context.pr_number is None:
            return Target(repository, sha, head_repo=head_repo or repository)
    if context.event in ("pull_request", "pull_request_target", "workflow_run", "issue_comment"):
        return Target(repository, sha, pr or context.pr_number)
    return Target(repository, sha, pr)


class GitHubPublisher:
    """Publishes a report to GitHub through an injected ``github.Github`` client."""

    name = "github"

    def __init__(self, client: Github | None, *, context: Context | None = None,
                 env: Mapping[str, str] | None = None, login: str | None = None,
                 repository: str | None = None, pr: int | None = None, head_sha: str | None = None,
                 head_repo: str | None = None, record_path: Path | None = None, report_path: Path | None = None,
                 on_note: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.context = context
        self.env = os.environ if env is None else env
        self.login = login or self.env.get(LOGIN_ENV) or None
        self.repository = repository or self.env.get("GITHUB_REPOSITORY") or None
        self.pr, self.head_sha, self.head_repo = pr, head_sha, head_repo
        self.record_path, self.report_path = record_path, report_path
        self.on_note = on_note
        self.notes: list[str] = []
        self.comment_url: str | None = None
        self.check_url: str | None = None
        self.posted_to: tuple[int, str] | None = None  # (pull request, head SHA) the comment was posted for

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, default_branch: str = "main",
                 client_options: Mapping[str, Any] | None = None, **kwargs: Any) -> GitHubPublisher:
        """Client from ``GITHUB_TOKEN``/``GITHUB_API_URL`` (if a token is set), context from the event."""
        env = os.environ if env is None else env
        client = None
        if env.get("GITHUB_TOKEN") or env.get("GH_TOKEN"):
            from mlops_ci.backends.github.client import make_client

            client = make_client(env, **dict(client_options or {}))
        context, head_repo = runtime_context(env, default_branch)
        kwargs.setdefault("head_repo", head_repo)
        return cls(client, context=context, env=env, **kwargs)

    # -- what and where ------------------------------------------------------------------------
    def target(self, record: RunRecord) -> Target:
        return resolve_target(record, self.context, repository=self.repository, pr=self.pr,
                              head_sha=self.head_sha, head_repo=self.head_repo)

    def plan(self, record: RunRecord, markdown: str, target: Target | None = None) -> Publication:
        target = target or self.target(record)
        run_url = self.context.run_url if self.context else None  # this job's run, never the record's
        return plan_publication(record, markdown, head_sha=target.head_sha, run_url=run_url)

    def preview(self, record: RunRecord, markdown: str) -> str:
        """What :meth:`publish` would send; sends nothing (``--dry-run``)."""
        target = self.target(record)
        pub = self.plan(record, markdown, target)
        if target.skip:
            return (f"would post nothing to GitHub: {target.skip}\n"
                    f"job summary: {len(pub.job_summary):,} characters; outputs: verdict={pub.verdict}")
        return describe(pub, target.where())

    def note(self, text: str) -> None:
        self.notes.append(text)
        if self.on_note is not None:
            self.on_note(text)

    # -- publish -------------------------------------------------------------------------------
    def publish(self, record: RunRecord, markdown: str) -> str:
        target = self.target(record)
        pub = self.plan(record, markdown, target)
        summary = append_summary(pub.job_summary, env=self.env, pointer=pub.pointer)
        try:
            if target.skip:
                self.note(f"posting nothing: {target.skip}")
            else:
                self._post(target, pub)
        finally:
            set_outputs({"verdict": record.verdict, "report-path": self.report_path or "",
                         "record-path": self.record_path or "", "comment-url": self.comment_url or ""},
                        env=self.env)
        return self.comment_url or self.check_url or (str(summary) if summary else "")

    def _api(self, method: str, path: str):
        from mlops_ci.backends.github.client import DEFAULT_API_URL, api_call

        base = self.client.requester.base_url if self.client is not None else DEFAULT_API_URL
        return api_call(method, f"{base}{path}")

    def _post(self, target: Target, pub: Publication) -> None:
        from mlops_ci.backends.github.checks import post_check
        from mlops_ci.backends.github.client import GitHubError

        if self.client is None:
            raise GitHubError("GITHUB_TOKEN is not set, so mlops-ci cannot post to GitHub",
                              hint="pass `env: GITHUB_TOKEN: ${{ github.token }}` to the step, or use --to local")
        if not target.repository:
            raise GitHubError("no repository to post to: the record has none and GITHUB_REPOSITORY is not set",
                              hint="set GITHUB_REPOSITORY=owner/name")
        with self._api("GET", f"/repos/{target.repository}"):
            repo = self.client.get_repo(target.repository)
        pull = self._pull(repo, target)
        if pull is None and (target.pr_number or target.head_repo):
            return
        if pull is not None and not self._comment(repo, pull, target, pub):
            return  # the PR moved on: a newer run reports there
        if pull is not None:
            self.posted_to = (pull.number, pub.head_sha)
        with self._api("POST", f"/repos/{target.repository}/check-runs"):
            kind, url = post_check(repo, pub, details_url=self.context.run_url if self.context else None)
        if kind == "commit status":
            self.note("this token may not create check runs: posted a commit status 'mlops-ci' instead"
                      if pub.state else "this token may not create check runs, and a pull request's own record "
                      "gets no commit status (a status has no neutral state): posted none")
        self.check_url = url or None

    def _pull(self, repo: Repository, target: Target) -> PullRequest | None:
        if target.pr_number:
            with self._api("GET", f"/repos/{target.repository}/pulls/{target.pr_number}"):
                return repo.get_pull(target.pr_number)
        if not target.head_repo:
            return None
        with self._api("GET", f"/repos/{target.repository}/pulls?state=open"):
            found = [p for p in repo.get_pulls(state="open") if p.head.sha == target.head_sha
                     and p.head.repo is not None and p.head.repo.full_name.lower() == target.head_repo.lower()]
        if not found:
            self.note(f"posting nothing: no open pull request in {target.repository} has head "
                      f"{target.head_sha[:12]} from {target.head_repo}")
            return None
        if len(found) > 1:
            self.note(f"{len(found)} open pull requests have head {target.head_sha[:12]}: "
                      f"posting to #{found[0].number}")
        return found[0]

    def _whoami(self) -> str:
        from github import GithubException

        if self.login is None:
            with self._api("GET", "/user"):
                try:
                    self.login = self.client.get_user().login
                except GithubException as err:
                    if err.status != 403:  # the Actions token may not read /user: it is the bot
                        raise
                    self.login = ACTIONS_LOGIN
        return self.login

    def _comment(self, repo: Repository, pull: PullRequest, target: Target, pub: Publication) -> bool:
        from mlops_ci.backends.github.comments import StaleHead, upsert_comment

        path = f"/repos/{target.repository}"

        def still_head() -> bool:
            with self._api("GET", f"{path}/pulls/{pull.number}"):
                return repo.get_pull(pull.number).head.sha == pub.head_sha

        if pull.head.sha != pub.head_sha:
            self.note(f"posting nothing: PR #{pull.number} is now at {pull.head.sha[:12]}, this record reports "
                      f"{pub.head_sha[:12]}; the run for the newer head reports there")
            return False
        login = self._whoami()
        with self._api("POST/PATCH", f"{path}/issues/{pull.number}/comments"):
            try:
                comment, action = upsert_comment(pull, pub.comment, login=login, head_sha=pub.head_sha,
                                                 still_head=still_head)
            except StaleHead as err:
                self.note(f"posting nothing: {err}")
                return False
        self.comment_url = comment.html_url
        self.note(f"comment {action}: {comment.html_url}")
        return True
