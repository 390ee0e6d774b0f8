"""The one report comment per pull request: found by its hidden marker, updated in place.

Ours means: written by the token's login and carrying ``MARKER``. Every page of the PR's
comments is searched. Two of ours (two jobs that raced) are collapsed into the oldest; a
comment that reports another head SHA is overwritten only while ours is still the PR's head.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlops_ci.backends.github.client import write_once
from mlops_ci.render.report import MARKER

if TYPE_CHECKING:
    from github.IssueComment import IssueComment
    from github.PullRequest import PullRequest


HEAD_MARKER = "<!-- mlops-ci:head-sha={sha} -->"
_HEAD_MARKER = re.compile(r"<!-- mlops-ci:head-sha=([0-9a-fA-F]{4,64}) -->")


def head_sha_of(body: str | None) -> str | None:
    """The head SHA a comment of ours reports (None for one without the marker)."""
    match = _HEAD_MARKER.search(body or "")
    return match.group(1).lower() if match else None


class StaleHead(Exception):
    """The pull request moved on while we were posting: a newer run reports there."""


def our_comments(pull: PullRequest, login: str) -> list[IssueComment]:
    """Our report comments on ``pull``, oldest first (every page is read)."""
    return sorted((c for c in pull.get_issue_comments()
                   if c.user is not None and c.user.login.lower() == login.lower() and MARKER in (c.body or "")),
                  key=lambda c: c.id)


def _delete(comment: IssueComment) -> None:
    from github import GithubException

    try:
        comment.delete()
    except GithubException as err:
        if err.status != 404:  # another job collapsing the same duplicates got there first
            raise


def upsert_comment(pull: PullRequest, body: str, *, login: str, head_sha: str,
                   still_head: Callable[[], bool]) -> tuple[IssueComment, str]:
    """Create or update our comment; returns it and what was done ("created", "updated", "unchanged").

    ``still_head()`` re-checks that ``head_sha`` is the PR's head; it is asked before a comment
    that reports another SHA is overwritten, and :class:`StaleHead` is raised when it is not."""
    mine = our_comments(pull, login)
    action = "updated"
    if not mine:
        created = write_once(lambda: pull.create_issue_comment(body),
                             lambda: next(iter(our_comments(pull, login)), None))
        mine = our_comments(pull, login) or [created]  # a job racing us may have posted too
        action = "created"
    keep, extra = mine[0], mine[1:]
    reported = head_sha_of(keep.body)
    if keep.body != body:
        if reported is not None and reported != head_sha.lower() and not still_head():
            raise StaleHead(f"the comment reports {reported[:12]}, and the PR is no longer at {head_sha[:12]}")
        write_once(lambda: keep.edit(body), lambda: None)
    elif action == "updated":
        action = "unchanged"
    for comment in extra:
        _delete(comment)
    return keep, action
