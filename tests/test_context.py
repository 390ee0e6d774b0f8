"""Context: local git (base = merge-base with the default branch) and GitHub Actions events."""

from __future__ import annotations

import json

import pytest

from conftest import cli, commit, git
from mlops_ci.context import detect_context, github_context, local_context
from mlops_ci.errors import GitError, InputError


def test_local_context_on_a_branch(tiny_repo):
    main_sha = git(tiny_repo, "rev-parse", "HEAD")
    git(tiny_repo, "checkout", "--quiet", "-b", "feature/x")
    (tiny_repo / "params.yaml").write_text("lr: 0.4\nepochs: 100\n")
    head = commit(tiny_repo, "tweak")
    git(tiny_repo, "checkout", "--quiet", "main")
    (tiny_repo / "README").write_text("main moved on\n")
    commit(tiny_repo, "main moves")
    git(tiny_repo, "checkout", "--quiet", "feature/x")
    ctx = local_context(tiny_repo, default_branch="main")
    assert (ctx.source, ctx.event, ctx.ref) == ("local", "local", "feature/x")
    assert ctx.head_sha == head and ctx.base_sha == main_sha  # merge-base, not main's tip
    assert ctx.dirty is False


def test_local_context_on_main_compares_with_previous_commit(tiny_repo):
    first = git(tiny_repo, "rev-parse", "HEAD")
    ctx = local_context(tiny_repo, default_branch="main")
    assert ctx.base_sha is None  # the very first commit has nothing to compare with
    (tiny_repo / "params.yaml").write_text("lr: 0.4\nepochs: 100\n")
    commit(tiny_repo, "second")
    ctx = local_context(tiny_repo, default_branch="main")
    assert ctx.base_sha == first


def test_dirty_tree_is_flagged(tiny_repo):
    (tiny_repo / "params.yaml").write_text("lr: 1\n")
    assert local_context(tiny_repo, default_branch="main").dirty


def test_not_a_repository(tmp_path):
    with pytest.raises(GitError, match="not inside a git repository"):
        local_context(tmp_path, default_branch="main")


def event(tmp_path, name: str, payload: dict, **extra) -> dict:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(path),
            "GITHUB_REPOSITORY": "acme/churn", "GITHUB_SHA": "f" * 40, "GITHUB_RUN_ID": "42",
            "GITHUB_ACTOR": "dana", **extra}


REPO = {"full_name": "acme/churn", "default_branch": "main"}


def test_pull_request_from_a_fork(tmp_path):
    payload = {"number": 7, "pull_request": {
        "number": 7, "title": "Add <b>@everyone</b> `data`",
        "base": {"sha": "b" * 40, "ref": "main", "repo": REPO},
        "head": {"sha": "c" * 40, "ref": "feature", "repo": {"full_name": "mallory/churn"}}},
        "repository": REPO}
    ctx = github_context(event(tmp_path, "pull_request", payload), default_branch="master")
    assert (ctx.event, ctx.pr_number, ctx.base_sha, ctx.head_sha, ctx.ref) == ("pull_request", 7, "b" * 40, "c" * 40,
                                                                             "feature")
    assert ctx.fork is True and ctx.default_branch == "main"
    assert ctx.pr_title == "Add <b>@everyone</b> `data`"  # kept as data; escaped when rendered
    assert ctx.run_url == "https://github.com/acme/churn/actions/runs/42"


def test_push_event(tmp_path):
    payload = {"ref": "refs/heads/main", "before": "1" * 40, "after": "2" * 40, "repository": REPO}
    ctx = github_context(event(tmp_path, "push", payload), default_branch="main")
    assert (ctx.base_sha, ctx.head_sha, ctx.ref, ctx.pr_number) == ("1" * 40, "2" * 40, "main", None)
    payload["before"] = "0" * 40  # a new branch has no "before"
    assert github_context(event(tmp_path, "push", payload), default_branch="main").base_sha is None


def test_workflow_run_from_a_fork_has_no_pull_requests(tmp_path):
    payload = {"workflow_run": {"head_sha": "3" * 40, "head_branch": "patch-1", "pull_requests": [],
                                "head_repository": {"full_name": "mallory/churn"}}, "repository": REPO}
    ctx = github_context(event(tmp_path, "workflow_run", payload), default_branch="main")
    assert (ctx.head_sha, ctx.pr_number, ctx.fork) == ("3" * 40, None, True)


def test_issue_comment_on_a_pull_request(tmp_path):
    payload = {"issue": {"number": 9, "title": "t", "pull_request": {"url": "x"}},
               "comment": {"body": "/mlops-ci promote staging", "user": {"login": "erin"}}, "repository": REPO}
    ctx = github_context(event(tmp_path, "issue_comment", payload), default_branch="main")
    assert (ctx.pr_number, ctx.comment, ctx.actor) == (9, "/mlops-ci promote staging", "erin")


def test_workflow_dispatch(tmp_path):
    ctx = github_context(event(tmp_path, "workflow_dispatch", {"inputs": {}, "repository": REPO},
                               GITHUB_REF_NAME="main"), default_branch="main")
    assert (ctx.head_sha, ctx.ref) == ("f" * 40, "main")


def test_unsupported_event_and_bad_payloads(tmp_path):
    with pytest.raises(InputError, match="'schedule' is not handled"):
        github_context(event(tmp_path, "schedule", {}), default_branch="main")
    env = event(tmp_path, "push", {})
    (tmp_path / "event.json").write_text("{nope")
    with pytest.raises(InputError, match="not JSON"):
        github_context(env, default_branch="main")


def test_detect_prefers_github_when_in_actions(tmp_path, tiny_repo):
    env = event(tmp_path, "push", {"ref": "refs/heads/main", "before": "1" * 40, "after": "2" * 40})
    assert detect_context(tiny_repo, "main", env).source == "github"
    assert detect_context(tiny_repo, "main", {}).source == "local"


def test_cli_context_prints_json(tiny_repo):
    proc = cli(tiny_repo, "context")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["head_sha"] == git(tiny_repo, "rev-parse", "HEAD") and data["ref"] == "main"
