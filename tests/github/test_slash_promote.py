"""`/mlops-ci promote` acts on the head its writer reviewed, and on the version registered for that
head only: named in the command (`@SHA`), refused when the pull request moved on after the
comment, and, for a fork, only a version a trusted job registered (the local GitHub server, a real
MLflow registry on SQLite)."""

from __future__ import annotations

import shutil

import pytest
from conftest import FIXTURES, git

from mlops_ci.slash.handle import handle_comment
from mlops_ci.commands.command import candidate_finder
from registry import build_registry
from test_slash_commands import ENVS, OPTIONS, REPO, actions_env, event_payload, outputs, replies, slash_server


@pytest.fixture
def server():
    yield from slash_server()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """The tiny project's config in a git checkout (what the command job checks out)."""
    repo = tmp_path / "base"
    shutil.copytree(FIXTURES / "tiny", repo)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "base")
    monkeypatch.chdir(repo)
    return repo


def registry_for(tmp_path, monkeypatch, pr: int, head: str, origin: str) -> None:
    """A shared registry (given to the job as MLFLOW_TRACKING_URI) where v2 was registered for ``head``."""
    db = build_registry(tmp_path / "registry", 2, lambda n: {"mlops_ci.evaluation": "pass"} if n == 1 else {
        "mlops_ci.evaluation": "pass", "mlops_ci.pr": str(pr), "mlops_ci.head_sha": head, "mlops_ci.origin": origin})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")


def promote(server, tmp_path, pr, body: str):
    comment = server.add_comment(REPO, pr.number, body, user="alice")
    env = actions_env(tmp_path, server, event_payload(comment, pr.number))
    outcome = handle_comment(env, environments=ENVS, client_options=OPTIONS,
                             find_candidate=candidate_finder(None, None))
    return outcome, env, replies(server, pr)[-1].body


def test_promote_must_name_the_reviewed_head(server, tmp_path, project):
    pr = server.add_pull(REPO, user="octocat", head_ref="feature")
    outcome, env, reply = promote(server, tmp_path, pr, "/mlops-ci promote staging")
    assert not outcome.accepted and outputs(env)["accepted"] == "false"
    assert "a promotion must name the head commit you reviewed" in reply
    assert f"`/mlops-ci promote staging @{pr.pull.head_sha[:12]}`" in reply  # ready to paste


def test_a_head_pushed_after_the_comment_is_not_promoted(server, tmp_path, project, monkeypatch):
    pr = server.add_pull(REPO, user="octocat", head_ref="feature")
    reviewed = pr.pull.head_sha
    registry_for(tmp_path, monkeypatch, pr.number, reviewed, "pull_request")
    moved = server.commit_files(REPO, "feature", {"train.py": "print('unreviewed')\n"})
    server.repo(REPO, live=True).issues[pr.number].pull.head_sha = moved  # pushed seconds after the comment
    outcome, env, reply = promote(server, tmp_path, pr, f"/mlops-ci promote staging @{reviewed[:7]}")
    assert not outcome.accepted and outputs(env)["head-sha"] == ""
    assert f"is now `{moved[:12]}`, not the `{reviewed[:7]}` the command names" in reply


def test_the_version_registered_for_the_head_is_named_and_passed_on(server, tmp_path, project, monkeypatch):
    pr = server.add_pull(REPO, user="octocat", head_ref="feature")
    head = pr.pull.head_sha
    registry_for(tmp_path, monkeypatch, pr.number, head, "pull_request")
    outcome, env, reply = promote(server, tmp_path, pr, f"/mlops-ci promote staging @{head[:7]}")
    assert outcome.accepted, reply
    assert "It promotes tiny v2" in reply and outputs(env)["version"] == "2" and outputs(env)["head-sha"] == head


def test_no_version_for_the_head_is_refused(server, tmp_path, project, monkeypatch):
    pr = server.add_pull(REPO, user="octocat", head_ref="feature")
    registry_for(tmp_path, monkeypatch, pr.number, "e" * 40, "pull_request")  # another head's candidate
    outcome, env, reply = promote(server, tmp_path, pr, f"/mlops-ci promote staging @{pr.pull.head_sha[:7]}")
    assert not outcome.accepted and "no version of tiny was registered for head" in reply


@pytest.mark.parametrize("origin, accepted", [("pull_request", False), ("trusted", True)])
def test_a_fork_promotes_only_what_a_trusted_job_registered(server, tmp_path, project, monkeypatch, origin, accepted):
    pr = server.add_pull(REPO, user="mallory", head_repo="mallory/models", head_ref="patch")
    head = pr.pull.head_sha
    registry_for(tmp_path, monkeypatch, pr.number, head, origin)  # the fork's own run wrote these tags
    outcome, env, reply = promote(server, tmp_path, pr, f"/mlops-ci promote staging @{head[:7]}")
    assert outcome.accepted is accepted, reply
    if not accepted:
        assert "by a trusted job" in reply and outputs(env)["version"] == ""


def test_without_a_registry_the_command_job_cannot_name_a_version(server, tmp_path, project, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    pr = server.add_pull(REPO, user="octocat", head_ref="feature")
    outcome, _, reply = promote(server, tmp_path, pr, f"/mlops-ci promote staging @{pr.pull.head_sha[:7]}")
    assert not outcome.accepted and "no access to the model registry" in reply


def test_the_promote_job_ships_the_head_s_version_with_the_pinned_lineage(tmp_path, project, monkeypatch):
    from mlops_ci.cli.main import main

    head = "1" * 40
    registry_for(tmp_path, monkeypatch, 7, head, "pull_request")
    args = ["promote", "--model", "tiny", "--env", "staging", "--allow-unmerged", "--pull-request", "7",
            "--head-sha", head]
    assert main([*args, "--fork"]) == 4  # a fork's own run registered it: refused
    assert main([*args, "--version", "1"]) == 4  # not the version registered for that head
    assert main([*args, "--version", "2"]) == 0
    gitops = project / ".mlops-ci" / "gitops.git"
    text = git(gitops, "log", "-1", "--format=%(trailers:only,unfold)", "main")
    trailers = dict(line.split(": ", 1) for line in text.splitlines() if line)
    assert trailers["Model-Version"] == "2" and trailers["Source-Commit"] == head and trailers["Source-PR"] == "7"
