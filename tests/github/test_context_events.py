"""Context from real GitHub webhook payloads (checked against the upstream schema first), through
the library and through `mlops-ci context`, and a hostile fork PR rendered into the report."""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from events import (FORK, REPO, ZERO_SHA, issue_comment_event, pull_request_event, push_event, sha, validate,
                    workflow_dispatch_event, workflow_run_event)
from test_publish_github import BOT, ours, record
from test_publish_github import REPO as PUBLISH_REPO
from test_publish_github import actions_env, server  # noqa: F401 (fixtures)

from conftest import cli, commit, git
from mlops_ci.backends.publishers import GitHubPublisher
from mlops_ci.context import github_context
from mlops_ci.errors import InputError
from mlops_ci.records import Context
from mlops_ci.render.markdown import Links
from mlops_ci.render.report import render_report

RUN_ID = "4242"
RUN_URL = f"https://github.com/{REPO}/actions/runs/{RUN_ID}"
MAIN_TIP = sha("main")  # the default branch's tip: GITHUB_SHA for issue_comment and workflow_run
MERGE = sha("merge")  # the test merge commit GitHub makes for a pull_request run


def runner_env(path: Path, event: str, payload: dict, *, sha: str, ref: str) -> dict[str, str]:
    """What the Actions runner sets for ``event``: ``ref`` is the full GITHUB_REF."""
    path.write_text(json.dumps(payload), encoding="utf-8")
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(path),
            "GITHUB_REPOSITORY": payload["repository"]["full_name"], "GITHUB_SHA": sha, "GITHUB_REF": ref,
            "GITHUB_REF_NAME": ref.removeprefix("refs/heads/").removeprefix("refs/pull/"),
            "GITHUB_RUN_ID": RUN_ID, "GITHUB_ACTOR": payload["sender"]["login"],
            "GITHUB_SERVER_URL": "https://github.com"}


@dataclass
class Case:
    id: str
    event: str  # GITHUB_EVENT_NAME
    schema: str  # the schema definition the payload must satisfy
    payload: dict
    sha: str  # GITHUB_SHA
    ref: str  # GITHUB_REF
    expect: dict = field(default_factory=dict)  # the Context fields that differ from NOTHING

    def context(self) -> dict:
        return {"source": "github", "event": self.event, "action": self.payload.get("action"),
                "repository": REPO, "default_branch": "main",
                "base_sha": None, "ref": None, "pr_number": None, "pr_title": None, "fork": False,
                "run_url": RUN_URL, "comment": None, "dirty": False, **self.expect}


TITLE = "Retrain churn on May data"
CASES = [
    Case("pull_request-opened", "pull_request", "pull_request$opened",
         pull_request_event("opened", number=7, title=TITLE, head_ref="feature/may-data", head_sha=sha("pr7"),
                            base_sha=sha("main"), author="dana"),
         MERGE, "refs/pull/7/merge",
         {"base_sha": sha("main"), "head_sha": sha("pr7"), "ref": "feature/may-data", "pr_number": 7,
          "pr_title": TITLE, "actor": "dana"}),
    Case("pull_request-synchronize-fork", "pull_request", "pull_request$synchronize",
         pull_request_event("synchronize", number=8, title="Fix typo in features", head_repo=FORK,
                            head_ref="patch-1", head_sha=sha("fork2"), before=sha("fork1"), author="mallory"),
         MERGE, "refs/pull/8/merge",
         {"base_sha": sha("base"), "head_sha": sha("fork2"), "ref": "patch-1", "pr_number": 8,
          "pr_title": "Fix typo in features", "actor": "mallory", "fork": True}),
    Case("pull_request-synchronize-same-repo", "pull_request", "pull_request$synchronize",
         pull_request_event("synchronize", number=7, title=TITLE, head_sha=sha("pr7 v2"), before=sha("pr7")),
         MERGE, "refs/pull/7/merge",
         {"base_sha": sha("base"), "head_sha": sha("pr7 v2"), "ref": "feature/may-data", "pr_number": 7,
          "pr_title": TITLE, "actor": "dana"}),
    # pull_request_target runs in the base repository: GITHUB_SHA is the base branch's tip
    Case("pull_request_target-opened-fork", "pull_request_target", "pull_request$opened",
         pull_request_event("opened", number=8, title="Fix typo in features", head_repo=FORK, head_ref="main",
                            head_sha=sha("fork2"), base_sha=MAIN_TIP, author="mallory"),
         MAIN_TIP, "refs/heads/main",
         {"base_sha": MAIN_TIP, "head_sha": sha("fork2"), "ref": "main", "pr_number": 8,
          "pr_title": "Fix typo in features", "actor": "mallory", "fork": True}),
    # the fork was deleted after the PR was opened: head.repo is null
    Case("pull_request-reopened-deleted-fork", "pull_request", "pull_request$reopened",
         pull_request_event("reopened", number=5, title="Old PR", head_repo=None, head_ref="patch-2",
                            head_sha=sha("orphan"), author="ghost"),
         MERGE, "refs/pull/5/merge",
         {"base_sha": sha("base"), "head_sha": sha("orphan"), "ref": "patch-2", "pr_number": 5,
          "pr_title": "Old PR", "actor": "ghost", "fork": True}),
    Case("push-default-branch", "push", "push$event",
         push_event(ref="refs/heads/main", before=sha("main~1"), after=MAIN_TIP, pusher="dana"),
         MAIN_TIP, "refs/heads/main",
         {"base_sha": sha("main~1"), "head_sha": MAIN_TIP, "ref": "main", "actor": "dana"}),
    Case("push-new-branch", "push", "push$event",
         push_event(ref="refs/heads/feature/new", before=ZERO_SHA, after=sha("new"), pusher="erin"),
         sha("new"), "refs/heads/feature/new",
         {"head_sha": sha("new"), "ref": "feature/new", "actor": "erin"}),
    Case("issue_comment-on-pull-request", "issue_comment", "issue_comment$created",
         issue_comment_event(number=9, title=TITLE, body="/mlops-ci promote staging", commenter="erin"),
         MAIN_TIP, "refs/heads/main",
         {"head_sha": MAIN_TIP, "pr_number": 9, "pr_title": TITLE, "actor": "erin",
          "comment": "/mlops-ci promote staging"}),
    Case("issue_comment-on-issue", "issue_comment", "issue_comment$created",
         issue_comment_event(number=11, title="Model drifts on weekends", body="/mlops-ci train",
                             commenter="erin", on_pull=False),
         MAIN_TIP, "refs/heads/main",
         {"head_sha": MAIN_TIP, "actor": "erin", "comment": "/mlops-ci train"}),
    Case("workflow_run-fork", "workflow_run", "workflow_run$completed",
         workflow_run_event(head_repo=FORK, head_branch="patch-1", head_sha=sha("fork2"), actor="mallory"),
         MAIN_TIP, "refs/heads/main",
         {"head_sha": sha("fork2"), "ref": "patch-1", "actor": "mallory", "fork": True}),
    Case("workflow_run-same-repo", "workflow_run", "workflow_run$completed",
         workflow_run_event(head_repo=REPO, head_branch="feature/may-data", head_sha=sha("pr7"), actor="dana",
                            pr_number=7),
         MAIN_TIP, "refs/heads/main",
         {"head_sha": sha("pr7"), "ref": "feature/may-data", "pr_number": 7, "actor": "dana"}),
    Case("workflow_dispatch", "workflow_dispatch", "workflow_dispatch$event",
         workflow_dispatch_event(ref="refs/heads/release/2.0", inputs={"model": "churn", "env": "staging"},
                                 sender="dana"),
         sha("release"), "refs/heads/release/2.0",
         {"head_sha": sha("release"), "ref": "release/2.0", "actor": "dana"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_payload_is_valid_and_parses(case, tmp_path):
    validate(case.schema, case.payload)
    env = runner_env(tmp_path / "event.json", case.event, case.payload, sha=case.sha, ref=case.ref)
    ctx = github_context(env, default_branch="master")  # the payload's default branch wins
    assert ctx.model_dump(mode="json") == case.context()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_context_prints_the_event(case, tiny_repo, tmp_path):
    env = runner_env(tmp_path / "event.json", case.event, case.payload, sha=case.sha, ref=case.ref)
    proc = cli(tiny_repo, "context", env=env)
    assert proc.returncode == 0, proc.stderr
    expected = case.context()
    if case.event == "issue_comment":
        # a comment-triggered job runs on what it checked out (the pinned PR head), not GITHUB_SHA
        expected.update(head_sha=git(tiny_repo, "rev-parse", "HEAD"), base_sha=None)
    assert json.loads(proc.stdout) == expected


def test_issue_comment_job_runs_on_the_checked_out_pull_request_head(tiny_repo, tmp_path):
    main_tip = git(tiny_repo, "rev-parse", "HEAD")
    git(tiny_repo, "checkout", "--quiet", "-b", "pr/9")
    (tiny_repo / "params.yaml").write_text("lr: 0.3\nepochs: 50\n")
    head = commit(tiny_repo, "the pull request's change")
    case = next(c for c in CASES if c.id == "issue_comment-on-pull-request")
    env = runner_env(tmp_path / "event.json", case.event, case.payload, sha=main_tip, ref=case.ref)
    ctx = github_context(env, default_branch="main", root=tiny_repo)
    assert (ctx.head_sha, ctx.base_sha, ctx.pr_number) == (head, main_tip, 9)


def test_validate_rejects_a_payload_that_drifted_from_the_schema():
    payload = pull_request_event()
    del payload["pull_request"]["head"]["sha"]
    payload["sender"]["type"] = "Robot"
    with pytest.raises(AssertionError) as err:
        validate("pull_request$opened", payload)
    assert "pull_request/head: 'sha' is a required property" in str(err.value)
    assert "sender/type: 'Robot' is not one of" in str(err.value)
    with pytest.raises(AssertionError, match="'after' is a required property"):
        validate("pull_request$synchronize", pull_request_event("opened"))  # opened has no before/after


def test_factories_refuse_to_build_an_invalid_payload():
    # a closed pull request that is still open is not what GitHub sends
    with pytest.raises(AssertionError, match=r"not a valid pull_request\$closed") as err:
        pull_request_event("closed")
    assert "pull_request/state: 'open' is not one of ['closed']" in str(err.value)
    with pytest.raises(AssertionError, match="comment/user/type: 'Robot' is not one of"):
        issue_comment_event(commenter="r2d2", commenter_type="Robot")
    assert pull_request_event("closed", valid=False)["action"] == "closed"  # only for tests about bad input


def test_edited_and_deleted_comments_are_valid_for_their_action():
    edited = issue_comment_event("edited", body="/mlops-ci train", previous_body="LGTM", comment_id=1000000001)
    assert edited["changes"] == {"body": {"from": "LGTM"}} and edited["comment"]["id"] == 1000000001
    deleted = issue_comment_event("deleted", commenter="dependabot[bot]", commenter_type="Bot", on_pull=False)
    assert "changes" not in deleted and deleted["sender"]["type"] == "Bot" and "pull_request" not in deleted["issue"]
    with pytest.raises(AssertionError, match="'changes' is a required property"):
        validate("issue_comment$edited", issue_comment_event("created"))


def test_workflow_dispatch_ref_falls_back_to_the_payload(tmp_path):
    payload = workflow_dispatch_event(ref="refs/heads/release/2.0")
    env = runner_env(tmp_path / "event.json", "workflow_dispatch", payload, sha=sha("release"),
                     ref="refs/heads/release/2.0")
    del env["GITHUB_REF_NAME"]
    assert github_context(env, default_branch="main").ref == "release/2.0"


def test_unknown_event_names_the_supported_ones(tmp_path):
    payload = workflow_dispatch_event() | {"schedule": "0 3 * * *"}
    env = runner_env(tmp_path / "event.json", "schedule", payload, sha=MAIN_TIP, ref="refs/heads/main")
    with pytest.raises(InputError, match="'schedule' is not handled") as err:
        github_context(env, default_branch="main")
    assert "pull_request, pull_request_target, push, issue_comment, workflow_run, workflow_dispatch" in err.value.hint


# -- hostile input from a fork ------------------------------------------------------------------
HOSTILE_TITLE = ("$(touch PWNED) `touch PWNED2` ; rm -rf ~ | <img src=x onerror=alert(1)> **bold** "
                 "[link](http://evil) @everyone <!-- hidden --> $\\huge{PWNED4}$")
HOSTILE_BRANCH = "feat/$(touch${IFS}PWNED3);echo"


def pwned(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("PWNED*")]


def rendered(markdown: str) -> tuple[str, str]:
    """``markdown`` as CommonMark HTML (raw HTML allowed, as GitHub allows some), and its text."""
    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark").render(markdown)
    return out, html.unescape(re.sub(r"<[^>]+>", "", out))


def test_hostile_fork_pr_is_data_in_the_context_and_literal_in_the_report(server, actions_env, tiny_repo,  # noqa: F811
                                                                          tmp_path):
    assert git(tiny_repo, "check-ref-format", "--branch", HOSTILE_BRANCH) == HOSTILE_BRANCH  # git allows it
    pr = server.add_pull(PUBLISH_REPO, user="mallory", head_repo="mallory/models", head_ref=HOSTILE_BRANCH,
                         title=HOSTILE_TITLE)
    head = pr.pull.head_sha
    payload = pull_request_event("opened", number=pr.number, title=HOSTILE_TITLE, repo=PUBLISH_REPO,
                                 head_repo="mallory/models", head_ref=HOSTILE_BRANCH, head_sha=head,
                                 author="mallory")
    validate("pull_request$opened", payload)

    # the fork's pull_request job: `mlops-ci context`, with its own temporary directory
    system_tmp = set(Path(tempfile.gettempdir()).glob("PWNED*"))
    (tmp_path / "tmp").mkdir()
    env = runner_env(tmp_path / "event.json", "pull_request", payload, sha=MERGE,
                     ref=f"refs/pull/{pr.number}/merge") | {"TMPDIR": str(tmp_path / "tmp")}
    proc = cli(tiny_repo, "context", env=env)
    assert proc.returncode == 0, proc.stderr
    assert pwned(tmp_path, Path(os.environ["HOME"])) == []
    assert set(Path(tempfile.gettempdir()).glob("PWNED*")) == system_tmp
    data = json.loads(proc.stdout)
    assert (data["pr_title"], data["ref"], data["fork"], data["head_sha"]) == (HOSTILE_TITLE, HOSTILE_BRANCH,
                                                                               True, head)

    # the base repository's workflow_run job posts the record made with that context
    rec = record(head, pr.number).model_copy(update={"context": Context.model_validate(data)})
    run = workflow_run_event(repo=PUBLISH_REPO, head_repo="mallory/models", head_branch=HOSTILE_BRANCH,
                             head_sha=head, title=HOSTILE_TITLE, actor="mallory")
    validate("workflow_run$completed", run)
    run_env = runner_env(tmp_path / "run.json", "workflow_run", run, sha=sha("models main"), ref="refs/heads/main")
    pub = GitHubPublisher.from_env(run_env | actions_env | {"GITHUB_TOKEN": BOT, "GITHUB_API_URL": server.url},
                                   client_options={"seconds_between_requests": 0, "seconds_between_writes": 0})
    pub.publish(rec, render_report(rec, Links.from_env(run_env)))  # links to this job's own run only
    [comment] = ours(server, pr.number)
    body = comment.body

    [shown] = [line.split(f"PR #{pr.number} ", 1)[1] for line in body.splitlines() if f"PR #{pr.number} " in line]
    assert "@everyone" not in shown
    assert re.findall(r"(?<!\\)[`*_{}\[\]()#+!|<>~$]", shown) == []  # every metacharacter escaped, `$` too
    page, text = rendered(body)
    assert "<img" not in page and "<strong>" not in page and "<code>touch" not in page
    assert re.findall(r'href="([^"]*)"', page) == [f"https://github.com/{PUBLISH_REPO}/actions/runs/{RUN_ID}"]
    assert [c for c in re.findall(r"<!--.*?-->", page, re.S) if "hidden" in c] == []
    # every character shown as typed; a zero-width space defuses the mention and GitHub's autolink
    assert HOSTILE_TITLE.replace("@", "@\u200b").replace("://", ":\u200b//") in text

    # without a PR number (a push to that branch) the report names the branch, as code
    push = rec.model_copy(update={"context": rec.context.model_copy(update={"pr_number": None})})
    page, text = rendered(render_report(push))
    assert f"branch <code>{html.escape(HOSTILE_BRANCH, quote=False)}</code>" in page
    assert pwned(tmp_path, Path(os.environ["HOME"])) == []
