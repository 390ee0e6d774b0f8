"""The ``mlops-ci`` check run on the head commit, or a commit status where check runs are not allowed.

The check run is created with the first 50 annotations and updated with the rest, 50 at a time
(the Checks API takes no more per request, and appends). A write that got a 5xx is looked up
(by a random ``external_id``, and the annotation count) before it is sent again.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from mlops_ci.backends.publishers.github_client import write_once
from mlops_ci.backends.publishers.github_plan import CHECK_NAME, Publication

if TYPE_CHECKING:
    from github.CheckRun import CheckRun
    from github.Repository import Repository


def _find_run(repo: Repository, sha: str, external_id: str) -> CheckRun | None:
    runs = repo.get_commit(sha).get_check_runs(check_name=CHECK_NAME, filter="all")
    return next((r for r in runs if r.external_id == external_id), None)


def _create_run(repo: Repository, pub: Publication, first: list, external_id: str,
                details_url: str | None) -> CheckRun:
    extra = {"details_url": details_url} if details_url else {}

    def create() -> CheckRun:
        return repo.create_check_run(CHECK_NAME, pub.head_sha, external_id=external_id, status="completed",
                                     conclusion=pub.conclusion, output=pub.output(first), **extra)

    return write_once(create, lambda: _find_run(repo, pub.head_sha, external_id))


def _add_annotations(repo: Repository, run: CheckRun, pub: Publication, batches: list[list],
                     sent: int, external_id: str) -> None:
    for batch in batches:
        expected = sent + len(batch)

        def applied(expected: int = expected) -> CheckRun | None:
            found = _find_run(repo, pub.head_sha, external_id)
            count = found.output.annotations_count if found is not None and found.output else 0
            return found if count >= expected else None

        write_once(lambda batch=batch: run.edit(output=pub.output(batch)), applied)
        sent = expected


def post_status(repo: Repository, pub: Publication, *, target_url: str | None) -> str:
    """The fallback: a commit status with context ``mlops-ci``; returns its target URL (or "").
    None for a pull request's own record: a status has no neutral state, so none is posted."""
    if pub.state is None:
        return ""
    commit = repo.get_commit(pub.head_sha)
    extra = {"target_url": target_url} if target_url else {}
    # a status sent twice only repeats itself: the latest one per context counts
    write_once(lambda: commit.create_status(pub.state, description=pub.description, context=CHECK_NAME, **extra),
               lambda: None)
    return target_url or ""


def post_check(repo: Repository, pub: Publication, *, details_url: str | None) -> tuple[str, str]:
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
