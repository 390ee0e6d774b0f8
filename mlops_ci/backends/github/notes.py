"""A note on a pull request of the ML repository (an aborted rollout's, on the pull request that
shipped the version): one comment, posted once per note (a re-run finds it by its first line)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_ci.backends.github.client import api_call, write_once

if TYPE_CHECKING:
    from github import Github


def note_on_pull_request(client: Github, repository: str, number: int, body: str) -> str:
    """Comment ``body`` (rendered and escaped by the caller) on pull request ``number``; its URL.
    The same body posted before (a re-run after a timeout) is found, not posted twice."""
    issue = client.get_repo(repository, lazy=True).get_issue(number)
    api = f"/repos/{repository}/issues/{number}/comments"

    def posted():
        return next((c for c in issue.get_comments() if (c.body or "") == body), None)

    with api_call("GET", api):
        existing = posted()
    if existing is not None:
        return existing.html_url
    with api_call("POST", api):
        comment = write_once(lambda: issue.create_comment(body), posted)
    return comment.html_url


__all__ = ["note_on_pull_request"]
