"""Context: local git (base = merge-base with the default branch) and GitHub Actions events."""

from __future__ import annotations

import json

import pytest
from events import issue_comment_event, push_event

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


# Parsing each GitHub event is tested with real payloads in test_context_events.py; these are
# the cases it does not cover.
def event(tmp_path, name: str, payload: dict, **extra) -> dict:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(path),
            "GITHUB_REPOSITORY": payload["repository"]["full_name"], "GITHUB_SHA": "f" * 40, "GITHUB_RUN_ID": "42",
            "GITHUB_ACTOR": "dana", **extra}


def test_issue_comment_actor_is_the_commenter(tmp_path):
    # GITHUB_ACTOR (dana, who re-ran the job) is not who wrote the command
    payload = issue_comment_event(number=9, body="/mlops-ci promote staging", commenter="erin")
    ctx = github_context(event(tmp_path, "issue_comment", payload), default_branch="main")
    assert (ctx.pr_number, ctx.comment, ctx.actor) == (9, "/mlops-ci promote staging", "erin")


# deliberately broken event files: what GitHub never sends, so no schema applies
NOT_JSON = "{nope"
NOT_AN_OBJECT = "[1, 2]"


@pytest.mark.parametrize(("broken", "message"), [(NOT_JSON, "not JSON"), (NOT_AN_OBJECT, "must be a JSON object")])
def test_bad_payloads_are_refused(tmp_path, broken, message):
    env = event(tmp_path, "push", push_event())
    (tmp_path / "event.json").write_text(broken)
    with pytest.raises(InputError, match=message):
        github_context(env, default_branch="main")


def test_detect_prefers_github_when_in_actions(tmp_path, tiny_repo):
    env = event(tmp_path, "push", push_event(ref="refs/heads/main", before="1" * 40, after="2" * 40))
    assert detect_context(tiny_repo, "main", env).source == "github"
    assert detect_context(tiny_repo, "main", {}).source == "local"


def test_cli_context_prints_json(tiny_repo):
    proc = cli(tiny_repo, "context")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["head_sha"] == git(tiny_repo, "rev-parse", "HEAD") and data["ref"] == "main"
