"""Issues and the conversation of a pull request: who may write in the repository, a reaction on
a comment, and a reply found by what marks it before it is sent again.

Slash commands (mlops_ci.slash.handle) answer through it. Reads retry through the client; the two
writes go through :func:`~mlops_ci.backends.github.client.write_once`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from mlops_ci.backends.github.client import api_call, write_once
from mlops_ci.backends.github.pulls import PullFacts, read_pull

if TYPE_CHECKING:
    from github import Github
    from github.Issue import Issue
    from github.IssueComment import IssueComment
    from github.Repository import Repository


class Conversation:
    """One repository's issues and pull-request conversations, on a lazy ``Repository`` (no
    ``GET /repos/...`` before the first real call)."""

    def __init__(self, client: Github, repository: str) -> None:
        self.repository = repository
        self.base = client.requester.base_url.rstrip("/")
        self.repo: Repository = client.withLazy(True).get_repo(repository)

    def _api(self, method: str, path: str) -> AbstractContextManager[None]:
        return api_call(method, f"{self.base}/repos/{self.repository}{path}")

    def permission(self, login: str) -> str:
        """GitHub's permission of ``login``: admin, write, read or none (404: not a user, none)."""
        from github import GithubException

        with self._api("GET", f"/collaborators/{login}/permission"):
            try:
                return self.repo.get_collaborator_permission(login)
            except GithubException as err:
                if err.status != 404:
                    raise
                return "none"

    def pull(self, number: int) -> PullFacts:
        with self._api("GET", f"/pulls/{number}"):
            return read_pull(self.repo, number, self.repository)

    def _issue(self, number: int) -> Issue:
        return self.repo.get_issue(number)

    def react(self, number: int, comment_id: int, content: str) -> None:
        comment: IssueComment = self._issue(number).get_comment(comment_id)
        with self._api("POST", f"/issues/comments/{comment_id}/reactions"):
            # GitHub keeps one reaction per user and content: sending it again is harmless
            write_once(lambda: comment.create_reaction(content), lambda: None)

    def reply(self, number: int, body: str, *, is_this_reply: Callable[[str | None], bool]) -> str:
        """Post ``body`` on issue or pull request ``number``; a reply already there (one
        ``is_this_reply`` recognizes) is not sent again. Returns its URL."""
        issue = self._issue(number)

        def applied() -> IssueComment | None:
            return next((c for c in issue.get_comments() if is_this_reply(c.body)), None)

        with self._api("POST", f"/issues/{number}/comments"):
            created = write_once(lambda: issue.create_comment(body), applied)
        return created.html_url


__all__ = ["Conversation"]
