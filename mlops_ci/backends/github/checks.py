"""A check run on a commit, or a commit status where check runs are not allowed.

The check run is created with the first 50 annotations and updated with the rest, 50 at a time
(the Checks API takes no more per request, and appends). A write that got a 5xx is looked up
(by a random ``external_id``, and the annotation count) before it is sent again.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

from mlops_ci.backends.github.client import write_once

if TYPE_CHECKING:
    from github.CheckRun import CheckRun
    from github.Repository import Repository


class CheckPost(Protocol):
    """What a check run (or its fallback status) carries; annotations in requests of at most 50."""

    name: str
    head_sha: str
    conclusion: str
    annotation_batches: list[list[dict[str, Any]]]
    state: str | None  # the commit status's state (None: post no status)
    description: str

    def output(self, annotations: list[dict[str, Any]]) -> dict[str, Any]: ...


def _find_run(repo: Repository, name: str, sha: str, external_id: str) -> CheckRun | None:
    runs = repo.get_commit(sha).get_check_runs(check_name=name, filter="all")
    return next((r for r in runs if r.external_id == external_id), None)


def _create_run(repo: Repository, pub: CheckPost, first: list, external_id: str,
                details_url: str | None) -> CheckRun:
    extra = {"details_url": details_url} if details_url else {}

    def create() -> CheckRun:
        return repo.create_check_run(pub.name, pub.head_sha, external_id=external_id, status="completed",
                                     conclusion=pub.conclusion, output=pub.output(first), **extra)

    return write_once(create, lambda: _find_run(repo, pub.name, pub.head_sha, external_id))


def _add_annotations(repo: Repository, run: CheckRun, pub: CheckPost, batches: list[list],
                     sent: int, external_id: str) -> None:
    for batch in batches:
        expected = sent + len(batch)

        def applied(expected: int = expected) -> CheckRun | None:
            found = _find_run(repo, pub.name, pub.head_sha, external_id)
            count = found.output.annotations_count if found is not None and found.output else 0
            return found if count >= expected else None

        write_once(lambda batch=batch: run.edit(output=pub.output(batch)), applied)
        sent = expected


def post_status(repo: Repository, pub: CheckPost, *, target_url: str | None) -> str:
    """The fallback: a commit status with the check's name as its context; returns its target URL (or "").
    None for a pull request's own record: a status has no neutral state, so none is posted."""
    if pub.state is None:
        return ""
    commit = repo.get_commit(pub.head_sha)
    extra = {"target_url": target_url} if target_url else {}
    # a status sent twice only repeats itself: the latest one per context counts
    write_once(lambda: commit.create_status(pub.state, description=pub.description, context=pub.name, **extra),
               lambda: None)
    return target_url or ""


def post_check(repo: Repository, pub: CheckPost, *, details_url: str | None) -> tuple[str, str]:
    """The completed check run with every annotation, or a commit status when the token may not
    create check runs. Returns ("check run", its URL) or ("commit status", the details URL)."""
    from github import GithubException, RateLimitExceededException

    external_id = uuid.uuid4().hex
    batches = pub.annotation_batches or [[]]
    try:
        run = _create_run(repo, pub, batches[0], external_id, details_url)
    except GithubException as err:
        if isinstance(err, RateLimitExceededException) or err.status != 403:
            raise
        return "commit status", post_status(repo, pub, target_url=details_url)
    _add_annotations(repo, run, pub, batches[1:], len(batches[0]), external_id)
    return "check run", run.html_url
