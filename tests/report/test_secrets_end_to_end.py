"""A secret that a failing training script prints never leaves the machine, in any form.

The real CLI runs the tiny project on a pull_request event; its training script prints a secret
with ``_ ! # " \\ ö`` in it (and a URL carrying it as a password and as a query token) and fails.
Then ``mlops-ci publish`` posts to the local GitHub REST server. The secret, raw or as any later
layer would write it (Markdown-escaped, JSON-escaped, repr, URL-encoded, HTML-escaped), is in none
of: the run's stdout and stderr, the record, the report, the job summary, $GITHUB_OUTPUT, the
comment, the check run, or any request body the server received."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from events import pull_request_event
from servers.github import GitHubServer

from conftest import cli, commit, git
from mlops_ci.render.report import MARKER

pytestmark = pytest.mark.slow

SECRET = 'S3cret!pass#2024"\\ö_x'
REPO = "acme/models"
BOT = "ghs_bot0123456789"

CRASH = '''
import os, sys
secret = os.environ["MY_SERVICE_PASSWORD"]
print("connecting with", secret, flush=True)
print(f"GET https://svc:{secret}@db.example/x?token={secret} failed: auth {secret!r}", file=sys.stderr)
print(json_like := '{"password": ' + __import__("json").dumps(secret) + '}', file=sys.stderr)
raise SystemExit(f"training failed: {secret}")
'''


def forms(secret: str) -> set[str]:
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1],
            quote(secret, safe=""), quote(secret, safe="/"), html.escape(secret),
            re.sub(r"([\\`*_{}\[\]()#+!|<>~$&])", r"\\\1", secret)}


def assert_clean(where: str, text: str) -> None:
    for form in forms(SECRET):
        assert form not in text, f"the secret reached {where} as {form!r}"


def test_a_secret_printed_by_a_failing_training_run_is_masked_everywhere(tiny_repo, tmp_path):
    repo = tiny_repo
    git(repo, "checkout", "--quiet", "-b", "pr/crash")
    train = repo / "train.py"
    train.write_text(CRASH + train.read_text())
    head = commit(repo, "train: log in to the feature service")
    base = git(repo, "rev-parse", "main")

    event = tmp_path / "event.json"
    event.write_text(json.dumps(pull_request_event(number=3, repo=REPO, head_repo=REPO, head_sha=head,
                                                   base_sha=base, head_ref="pr/crash")))
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event),
               "GITHUB_REPOSITORY": REPO, "GITHUB_RUN_ID": "11", "GITHUB_SERVER_URL": "https://github.com",
               "GITHUB_SHA": head, "GITHUB_OUTPUT": str(tmp_path / "output"),
               "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "MY_SERVICE_PASSWORD": SECRET}
    run = cli(repo, "run", env=actions)
    assert run.returncode != 0, run.stdout[-2000:]
    assert "***" in run.stdout + run.stderr  # what the script printed is shown, masked
    assert_clean("the run's stdout", run.stdout)
    assert_clean("the run's stderr", run.stderr)
    record_path = repo / ".mlops-ci" / "record.json"
    record = record_path.read_text(encoding="utf-8")
    assert json.loads(record)["models"]["tiny"]["results"]["train"]["status"] == "failed"
    assert_clean("the record", record)
    for path in (repo / ".mlops-ci").glob("*.md"):
        assert_clean(path.name, path.read_text(encoding="utf-8"))

    with GitHubServer() as server:
        server.add_user("github-actions[bot]", token=BOT, type="Bot", can_get_user=False)
        server.add_repo(REPO, files={"README.md": "# models\n"})
        server.add_collaborator(REPO, "github-actions[bot]", "write")
        pr = server.add_pull(REPO, number=3, user="dana", head_sha=head, head_ref="pr/crash")
        published = cli(repo, "publish", "--record", str(record_path), "--to", "github", "--pr", "3",
                        env={**actions, "GITHUB_TOKEN": BOT, "GITHUB_API_URL": server.url,
                             "MLOPS_CI_GITHUB_LOGIN": "github-actions[bot]"})
        assert published.returncode == 0, published.stderr[-2000:]
        [comment] = [c for c in server.comments(REPO, pr.number) if MARKER in c.body]
        assert "training failed: \\*\\*\\*" in comment.body  # masked, then escaped for Markdown
        assert_clean("the comment", comment.body)
        for run_ in server.check_runs(REPO, head):
            assert_clean("the check run", json.dumps(run_.__dict__, default=str, ensure_ascii=False))
        for request in server.requests():
            assert_clean(f"a {request.method} {request.path} request", json.dumps(request.body, ensure_ascii=False)
                         if not isinstance(request.body, (str, bytes)) else str(request.body))
        server.assert_no_errors()
    assert_clean("the publish output", published.stdout + published.stderr)
    assert_clean("the job summary", Path(actions["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8"))
    assert_clean("$GITHUB_OUTPUT", Path(actions["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))
