"""Context from the GitHub Actions environment and its event payload.

Text from the payload (titles, branch names, comment bodies) is untrusted: it is stored as
data, escaped when rendered, and never reaches a shell or a file path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_ci.errors import InputError
from mlops_ci.records import Context

MAX_EVENT_BYTES = 25 << 20  # GitHub caps webhook payloads at 25 MB
_ZERO_SHA = "0" * 40
SUPPORTED_EVENTS = ("pull_request", "pull_request_target", "push", "issue_comment", "workflow_run",
                    "workflow_dispatch")


def load_event(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_EVENT_BYTES:
            raise InputError(f"{p}: event payload of {size} bytes is over the 25 MB GitHub allows")
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"GITHUB_EVENT_PATH points at {p}, which does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{p}: the event payload is not JSON ({err})") from err
    if not isinstance(data, dict):
        raise InputError(f"{p}: the event payload must be a JSON object")
    return data


def dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where a level is missing or not a mapping (event payloads vary)."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


def record_provenance(env: Mapping[str, str]) -> str:
    """Where a record this job reads came from, by the job's event (never by the record): a
    ``workflow_run`` of a pull request's run, a slash command's training (``issue_comment``) or a
    pull request's own job read a record that the pull request's code produced ("pull_request");
    anything else, and every run outside GitHub Actions, is "trusted"."""
    if env.get("GITHUB_ACTIONS") != "true":
        return "trusted"
    event = env.get("GITHUB_EVENT_NAME", "")
    if event in (*PULL_REQUEST_EVENTS, "issue_comment"):
        return "pull_request"
    if event == "workflow_run":
        try:
            payload = load_event(env.get("GITHUB_EVENT_PATH", ""))
        except InputError:
            return "pull_request"  # no payload to tell: assume the worst
        return "pull_request" if dig(payload, "workflow_run", "event") in (*PULL_REQUEST_EVENTS, None) else "trusted"
    return "trusted"


def _checked_out(root: Path | None, default_branch: str) -> tuple[str | None, str | None]:
    """HEAD of the checkout at ``root`` and its merge-base with the default branch, or Nones."""
    if root is None:
        return None, None
    from mlops_ci.context.local import local_context
    from mlops_ci.errors import GitError

    try:
        local = local_context(root, default_branch=default_branch)
    except GitError:
        return None, None
    return local.head_sha, local.base_sha


def github_context(env: Mapping[str, str], *, default_branch: str, root: Path | None = None) -> Context:
    event = env.get("GITHUB_EVENT_NAME", "")
    payload = load_event(env["GITHUB_EVENT_PATH"])
    repository = env.get("GITHUB_REPOSITORY") or dig(payload, "repository", "full_name")
    default_branch = dig(payload, "repository", "default_branch") or default_branch
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    run_url = None
    if repository and env.get("GITHUB_RUN_ID"):
        run_url = f"{server}/{repository}/actions/runs/{env['GITHUB_RUN_ID']}"
    common = dict(
        source="github",
        event=event,
        repository=repository,
        default_branch=default_branch,
        actor=env.get("GITHUB_ACTOR") or dig(payload, "sender", "login"),
        run_url=run_url,
        action=payload.get("action") if isinstance(payload.get("action"), str) else None,
    )
    sha = env.get("GITHUB_SHA", "")

    if event in ("pull_request", "pull_request_target"):
        pr = payload.get("pull_request") or {}
        base_repo = dig(pr, "base", "repo", "full_name")
        head_repo = dig(pr, "head", "repo", "full_name")
        return Context(
            **common,
            base_sha=dig(pr, "base", "sha"),
            head_sha=dig(pr, "head", "sha") or sha,
            ref=dig(pr, "head", "ref"),
            pr_number=pr.get("number") or payload.get("number"),
            pr_title=pr.get("title"),
            fork=bool(head_repo is None or head_repo != base_repo),
        )
    if event == "push":
        before = payload.get("before")
        ref = payload.get("ref") or env.get("GITHUB_REF", "")
        return Context(
            **common,
            base_sha=None if not before or before == _ZERO_SHA else before,
            head_sha=payload.get("after") or sha,
            ref=ref.removeprefix("refs/heads/") or None,
        )
    if event == "issue_comment":
        issue = payload.get("issue") or {}
        is_pr = bool(issue.get("pull_request"))
        common["actor"] = dig(payload, "comment", "user", "login") or common["actor"]
        # GITHUB_SHA is the default branch's tip here. `mlops-ci command` pins the PR's head
        # through the API; a job that then checked out that head runs on what it checked out.
        head, base = _checked_out(root, default_branch)
        return Context(
            **common,
            head_sha=head or sha,
            base_sha=base,
            pr_number=issue.get("number") if is_pr else None,
            pr_title=issue.get("title") if is_pr else None,  # a plain issue's title is not a PR's
            comment=dig(payload, "comment", "body"),
        )
    if event == "workflow_run":
        run = payload.get("workflow_run") or {}
        prs = run.get("pull_requests") or []  # empty for pull requests from forks
        head_repo = dig(run, "head_repository", "full_name")
        return Context(
            **common,
            head_sha=run.get("head_sha") or sha,
            ref=run.get("head_branch"),
            pr_number=(prs[0] or {}).get("number") if prs else None,
            fork=bool(head_repo and repository and head_repo != repository),
        )
    if event == "workflow_dispatch":
        ref = env.get("GITHUB_REF_NAME") or str(payload.get("ref") or "").removeprefix("refs/heads/")
        return Context(**common, head_sha=sha, ref=ref or None)
    raise InputError(
        f"GitHub event {event!r} is not handled by mlops-ci",
        hint=f"trigger the workflow on one of: {', '.join(SUPPORTED_EVENTS)}",
    )
