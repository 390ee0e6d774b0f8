"""The GitHub publisher, through PyGithub, against the local GitHub REST server.

The server checks every request and response against the REST contract; each test ends with
its ``assert_no_errors()``."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from events import workflow_run_event
from servers.github import GitHubServer

from mlops_ci.backends.github import comments as github_comment
from mlops_ci.backends.publishers import PUBLISHERS, GitHubPublisher
from mlops_ci.backends.github.client import GitHubError, make_client
from mlops_ci.backends.github.comments import head_sha_of
from mlops_ci.backends.publishers.github_plan import COMMENT_LIMIT
from mlops_ci.cli.main import main
from mlops_ci.errors import ExitCode, InputError
from mlops_ci.github_actions import fit_summary, format_output, set_outputs
from mlops_ci.records import (ChecksRecord, Context, DatasetCheck, Finding, ModelPlan, ModelRecord, RunRecord,
                              TrainingRecord, save_record)
from mlops_ci.render.document import Report, details
from mlops_ci.render.markdown import Links
from mlops_ci.render.report import MARKER, fit_report, render_report

REPO = "acme/models"
BOT = "ghs_bot0123456789"  # the workflow's GITHUB_TOKEN: github-actions[bot], write access
FORK = "ghs_fork0123456789"  # a fork PR's GITHUB_TOKEN: read-only
NO_CHECKS = "ghs_nochecks012345"  # a token without `checks: write`
RUN_URL = f"https://github.com/{REPO}/actions/runs/7"


@pytest.fixture
def server():
    with GitHubServer() as srv:
        srv.add_user("github-actions[bot]", token=BOT, type="Bot", can_get_user=False)
        srv.add_token(FORK, "github-actions[bot]", read_only=True, can_get_user=False)
        srv.add_token(NO_CHECKS, "github-actions[bot]", checks_forbidden=True, can_get_user=False)
        srv.add_repo(REPO, files={"README.md": "# models\n", "data/train.csv": "x,y\n1,0\n"})
        srv.add_collaborator(REPO, "github-actions[bot]", "write")
        srv.add_collaborator(REPO, "alice", "write")
        yield srv
        srv.assert_no_errors()


@pytest.fixture
def actions_env(tmp_path):
    """The files a GitHub Actions step writes to (outputs, job summary)."""
    return {"GITHUB_OUTPUT": str(tmp_path / "output"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}


def client(server: GitHubServer, token: str = BOT, **options):
    options = {"seconds_between_requests": 0, "seconds_between_writes": 0, "max_wait": 10, **options}
    return make_client({"GITHUB_TOKEN": token, "GITHUB_API_URL": server.url}, **options)


def record(head_sha: str, pr: int | None, *, status: str = "warn", findings: int = 1, event="pull_request",
           fork: bool = False, history: list | None = None) -> RunRecord:
    context = Context(source="github", event=event, repository=REPO, default_branch="main", head_sha=head_sha,
                      pr_number=pr, fork=fork, run_url=RUN_URL)
    entry = ModelRecord(model="churn", plan=ModelPlan(model="churn", stages=["check", "train"]))
    entry.checks = ChecksRecord(status=status, datasets=[DatasetCheck(role="train", path="data/train.csv")],
                                findings=[Finding(check="drift", dataset="train", column=f"c{i}", status=status,
                                                  message=f"column c{i} drifted") for i in range(findings)])
    entry.training = TrainingRecord(status="succeeded", backend="torchrun", run_id="r1", nproc_per_node=1,
                                    history=history or [])
    return RunRecord(context=context, models={"churn": entry})


def pr_context(rec: RunRecord, **changes) -> Context:
    return rec.context.model_copy(update=changes)


def publisher(server, rec, env, *, token=BOT, context=None, **kwargs) -> GitHubPublisher:
    return GitHubPublisher(client(server, token, **kwargs.pop("client_options", {})),
                           context=context or rec.context, env=env, **kwargs)


def publish(server, rec, env, **kwargs) -> GitHubPublisher:
    pub = publisher(server, rec, env, **kwargs)
    pub.publish(rec, render_report(rec))
    return pub


def ours(server, number):
    return [c for c in server.comments(REPO, number) if MARKER in c.body]


def move_head(server: GitHubServer, number: int, files: dict) -> str:
    """Push a commit to the PR's branch (the server keeps a PR's head fixed, so move it too)."""
    issue = server.issue(REPO, number)
    sha = server.commit_files(REPO, issue.pull.head_ref, files)
    live = server.repo(REPO, live=True)
    live.issues[number].pull.head_sha = sha
    live.refs[f"refs/pull/{number}/head"] = sha
    return sha


def outputs(path) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT the way the runner does (``name<<DELIMITER`` blocks)."""
    lines, values, i = open(path, encoding="utf-8").read().split("\n"), {}, 0
    while i < len(lines) and lines[i]:
        name, _, delimiter = lines[i].partition("<<")
        end = lines.index(delimiter, i + 1)
        values[name] = "\n".join(lines[i + 1:end])
        i = end + 1
    return values


# -- comment ------------------------------------------------------------------------------------
def test_first_post_comment_check_run_summary_and_outputs(server, actions_env):
    pr = server.add_pull(REPO, user="alice")
    sha = pr.pull.head_sha
    rec = record(sha, pr.number)
    pub = publisher(server, rec, actions_env, record_path="rec.json", report_path="report.md")
    where = pub.publish(rec, render_report(rec))

    [comment] = server.comments(REPO, pr.number)
    assert comment.user == "github-actions[bot]" and comment.body.startswith(MARKER)
    assert head_sha_of(comment.body) == sha and "mlops-ci: warn" in comment.body
    assert where == pub.comment_url and where.endswith(f"#issuecomment-{comment.id}")
    [run] = server.check_runs(REPO, sha)
    assert (run.name, run.conclusion, run.status) == ("mlops-ci", "neutral", "completed")
    assert run.output["title"] == "warn: churn warn" and MARKER in run.output["summary"]
    assert run.annotations == [{"path": "data/train.csv", "start_line": 1, "end_line": 1,
                                "annotation_level": "warning", "title": "churn: drift · c0",
                                "message": "column c0 drifted"}]
    assert outputs(actions_env["GITHUB_OUTPUT"]) == {"verdict": "warn", "report-path": "report.md",
                                                     "record-path": "rec.json", "comment-url": where}
    assert open(actions_env["GITHUB_STEP_SUMMARY"], encoding="utf-8").read() == render_report(rec)
    assert PUBLISHERS["github"] is GitHubPublisher


def test_second_publish_updates_the_one_comment_in_place_across_pages(server, actions_env):
    pr = server.add_pull(REPO, user="alice")
    for i in range(5):
        server.add_comment(REPO, pr.number, f"review note {i}", user="alice")
    server.add_comment(REPO, pr.number, f"{MARKER}\nquoted by a human", user="alice")  # not ours
    sha = pr.pull.head_sha
    publish(server, record(sha, pr.number, status="warn"), actions_env, client_options={"per_page": 2})
    publish(server, record(sha, pr.number, status="fail"), actions_env, client_options={"per_page": 2})

    mine = [c for c in ours(server, pr.number) if c.user == "github-actions[bot]"]
    assert len(mine) == 1 and "mlops-ci: fail" in mine[0].body
    assert len(server.comments(REPO, pr.number)) == 7
    assert server.post_counts()[f"/repos/{REPO}/issues/{pr.number}/comments"] == 1
    assert server.count("PATCH", r"/issues/comments/\d+$") == 1
    pages = {r.query.get("page") for r in server.requests("GET", rf"/issues/{pr.number}/comments$")}
    assert {"2", "3", "4"} <= pages  # the search read every page


def test_a_record_for_an_older_head_posts_nothing(server, actions_env):
    pr = server.add_pull(REPO, user="alice")
    old = pr.pull.head_sha
    publish(server, record(old, pr.number, status="fail"), actions_env)
    new = move_head(server, pr.number, {"params.yaml": "lr: 0.2\n"})
    publish(server, record(new, pr.number, status="warn"), actions_env)
    [comment] = ours(server, pr.number)
    assert head_sha_of(comment.body) == new

    server.clear_log()
    late = publish(server, record(old, pr.number, status="fail"), actions_env)  # a slow job finishing late
    assert ours(server, pr.number) == [comment]
    assert [r.method for r in server.requests()] == ["GET", "GET"]  # the repository and the PR, nothing written
    assert any("is now at" in n for n in late.notes) and late.comment_url is None
    assert outputs(actions_env["GITHUB_OUTPUT"])["comment-url"] == ""


def test_racing_publishers_leave_one_comment(server, actions_env, monkeypatch):
    pr = server.add_pull(REPO, user="alice")
    rec = record(pr.pull.head_sha, pr.number)
    # both jobs search the comments (and find none) before either posts
    barrier, seen, search = threading.Barrier(2), threading.local(), github_comment.our_comments

    def search_then_wait(pull, login):
        found = search(pull, login)
        if not getattr(seen, "once", False):
            seen.once = True
            barrier.wait(10)
        return found

    monkeypatch.setattr(github_comment, "our_comments", search_then_wait)
    errors = []

    def job():
        try:
            publish(server, rec, actions_env)
        except Exception as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert server.post_counts()[f"/repos/{REPO}/issues/{pr.number}/comments"] == 2  # the race happened
    [kept] = ours(server, pr.number)
    deleted = {int(r.path.rsplit("/", 1)[1]) for r in server.requests("DELETE", r"/issues/comments/\d+$")}
    assert deleted and all(kept.id < d for d in deleted)  # the oldest was kept


# -- size limits --------------------------------------------------------------------------------
def test_a_long_report_is_trimmed_in_the_comment_and_whole_in_the_job_summary(server, actions_env):
    pr = server.add_pull(REPO, user="alice")
    rec = record(pr.pull.head_sha, pr.number)
    rows = [f"| row {i} | {'x' * 40} |" for i in range(1100)]
    markdown = Report([*render_report(rec).blocks, details("all rows", rows),
                       *(f"- finding {i}: {'y' * 50}" for i in range(500)), ""])
    assert len(markdown) > 70_000
    publisher(server, rec, actions_env).publish(rec, markdown)

    [comment] = ours(server, pr.number)
    assert len(comment.body) <= COMMENT_LIMIT
    assert f"full report in the job summary of {RUN_URL}" in comment.body
    assert "all rows" not in comment.body  # the <details> went first
    assert head_sha_of(comment.body) == pr.pull.head_sha
    assert len(server.check_runs(REPO)[0].output["summary"]) <= 65_535
    assert open(actions_env["GITHUB_STEP_SUMMARY"], encoding="utf-8").read() == markdown


def test_fit_report_drops_sections_largest_first_then_cuts_and_closes_fences():
    small, large = details("small", ["s"] * 10), details("large", ["L"] * 400)
    text = Report([MARKER, "head", small, "middle", large, "tail", ""])
    fitted = fit_report(text, 300, "see there")
    assert "L\n" not in fitted and "s\ns\n" in fitted and fitted.endswith("see there\n") and len(fitted) <= 300
    assert fit_report(text, len(text), "p") == text
    # the structure, not the text, says where a section ends: a hostile `</details>` is just text
    hostile = Report([MARKER, details("columns", ["`</details><img src=x>`", *["c"] * 300]), "after", ""])
    fitted = fit_report(hostile, 200, "p")
    assert "<img" not in fitted and "after" in fitted
    fenced = f"{MARKER}\n```diff\n" + "+x\n" * 500 + "```\n"
    cut = fit_report(fenced, 400, "p")
    assert len(cut) <= 400 and cut.count("```") % 2 == 0 and cut.startswith(MARKER)


# -- retries and faults -------------------------------------------------------------------------
def test_a_502_is_retried_and_an_unapplied_post_is_resent(server, actions_env):
    pr = server.add_pull(REPO, user="alice")
    server.inject("bad_gateway", method="GET", path=rf"/pulls/{pr.number}$")
    server.inject("bad_gateway", method="POST", path=r"/comments$")
    publish(server, record(pr.pull.head_sha, pr.number), actions_env)
    assert [r.status for r in server.requests("GET", rf"/pulls/{pr.number}$")] == [502, 200]
    assert [r.status for r in server.requests("POST", r"/comments$")] == [502, 201]
    assert len(ours(server, pr.number)) == 1


def test_a_secondary_rate_limit_waits_for_retry_after(server, actions_env):
    pr = server.add_pull(REPO, user="alice")
    server.inject("secondary_rate_limit", method="POST", path=r"/comments$", retry_after=1)
    started = time.monotonic()
    publish(server, record(pr.pull.head_sha, pr.number), actions_env)
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in server.requests("POST", r"/comments$")] == [403, 201]
    assert len(ours(server, pr.number)) == 1


def test_a_primary_rate_limit_beyond_the_allowed_wait_fails_clearly(server, actions_env):
    pr = server.add_pull(REPO, user="alice")
    server.inject("primary_rate_limit", method="GET", path=rf"/pulls/{pr.number}$", reset_in=3600)
    started = time.monotonic()
    with pytest.raises(GitHubError) as err:
        publish(server, record(pr.pull.head_sha, pr.number), actions_env)
    assert time.monotonic() - started < 5
    assert f"{server.url}/repos/{REPO}/pulls/{pr.number}" in str(err.value)
    assert "rate limit" in str(err.value) and "rerun the job later" in str(err.value)
    assert err.value.exit_code == ExitCode.BACKEND


def test_a_comment_post_that_failed_after_commit_is_not_duplicated(server, actions_env):
    pr = server.add_pull(REPO, user="alice")
    server.inject("fail_after_commit", method="POST", path=r"/comments$")
    pub = publish(server, record(pr.pull.head_sha, pr.number), actions_env)
    assert len(ours(server, pr.number)) == 1
    assert server.post_counts()[f"/repos/{REPO}/issues/{pr.number}/comments"] == 1
    assert pub.comment_url.endswith(f"#issuecomment-{ours(server, pr.number)[0].id}")


# -- checks ---------------------------------------------------------------------------------------
def test_forbidden_check_runs_fall_back_to_a_commit_status(server, actions_env):
    pr = server.add_pull(REPO, user="alice")
    sha = pr.pull.head_sha
    pub = publish(server, record(sha, pr.number, status="fail", findings=40), actions_env, token=NO_CHECKS)
    assert server.check_runs(REPO, sha) == []
    [status] = server.statuses(REPO, sha)
    assert (status.state, status.context, status.target_url) == ("failure", "mlops-ci", RUN_URL)
    assert len(status.description) <= 140 and status.description.startswith("fail")
    assert any("commit status" in n for n in pub.notes)
    assert len(ours(server, pr.number)) == 1


def test_more_than_50_annotations_go_in_batches(server, actions_env):
    pr = server.add_pull(REPO, user="alice")
    sha = pr.pull.head_sha
    publish(server, record(sha, pr.number, status="fail", findings=120), actions_env)
    [run] = server.check_runs(REPO, sha)
    assert run.conclusion == "failure" and len(run.annotations) == 120
    assert [a["title"] for a in run.annotations] == [f"churn: drift · c{i}" for i in range(120)]
    sent = [len(r.body["output"].get("annotations", [])) for r in server.requests(path=r"/check-runs")
            if r.method in ("POST", "PATCH")]
    assert sent == [50, 50, 20]


def test_annotations_are_capped_failures_first(server, actions_env):
    """One large record (an 8 MiB artifact held thousands of findings) is never thousands of writes."""
    pr = server.add_pull(REPO, user="alice")
    rec = record(pr.pull.head_sha, pr.number, status="fail", findings=400)
    for i, f in enumerate(rec.models["churn"].checks.findings):
        f.status = "fail" if i % 4 == 0 else "warn"
    publish(server, rec, actions_env)
    [run] = server.check_runs(REPO, pr.pull.head_sha)
    assert len(run.annotations) == 150 and [a["annotation_level"] for a in run.annotations[:100]] == ["failure"] * 100
    assert len([r for r in server.requests(path=r"/check-runs") if r.method in ("POST", "PATCH")]) == 3


# -- forks and workflow_run -------------------------------------------------------------------------
def test_a_fork_pr_on_pull_request_posts_nothing(server, actions_env):
    pr = server.add_pull(REPO, user="mallory", head_repo="mallory/models")
    rec = record(pr.pull.head_sha, pr.number, fork=True)
    pub = publish(server, rec, actions_env, token=FORK)
    assert server.requests() == [] and server.comments(REPO, pr.number) == []
    assert any("fork" in n and "workflow_run" in n for n in pub.notes)
    assert pub.preview(rec, render_report(rec)).startswith("would post nothing to GitHub")
    assert outputs(actions_env["GITHUB_OUTPUT"])["verdict"] == "warn"
    assert MARKER in open(actions_env["GITHUB_STEP_SUMMARY"], encoding="utf-8").read()


def workflow_run_env(tmp_path, actions_env, server, head_sha, head_repo) -> dict[str, str]:
    """The base repository's workflow_run job after the checks of a fork's PR (no ``pull_requests``)."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps(workflow_run_event(repo=REPO, head_repo=head_repo, head_branch="patch",
                                                   head_sha=head_sha, actor="mallory")))
    return {**actions_env, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "workflow_run",
            "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": REPO, "GITHUB_RUN_ID": "99",
            "GITHUB_SERVER_URL": "https://github.com", "GITHUB_SHA": "f" * 40,
            "GITHUB_TOKEN": BOT, "GITHUB_API_URL": server.url}


def test_workflow_run_finds_the_fork_pr_by_head_sha_and_repository(server, actions_env, tmp_path):
    decoys = [server.add_pull(REPO, user="alice", head_ref=f"topic-{i}") for i in range(3)]
    pr = server.add_pull(REPO, user="mallory", head_repo="mallory/models", head_ref="patch")
    sha = pr.pull.head_sha
    # the record comes from the fork's artifact: its PR number is not trusted
    rec = record(sha, decoys[0].number, fork=True)
    env = workflow_run_env(tmp_path, actions_env, server, sha, "mallory/models")
    pub = GitHubPublisher.from_env(env, client_options={"seconds_between_requests": 0,
                                                        "seconds_between_writes": 0, "per_page": 2})
    pub.publish(rec, render_report(rec))

    [comment] = ours(server, pr.number)
    assert head_sha_of(comment.body) == sha
    assert all(ours(server, d.number) == [] for d in decoys)
    assert [r.query.get("state") for r in server.requests("GET", rf"/repos/{REPO}/pulls$")][0] == "open"
    [run] = server.check_runs(REPO, sha)
    assert run.details_url == f"https://github.com/{REPO}/actions/runs/99"

    other = record("e" * 40, pr.number, fork=True)  # a record about another head: refused
    pub = GitHubPublisher.from_env(env, client_options={"seconds_between_requests": 0,
                                                        "seconds_between_writes": 0})
    pub.publish(other, render_report(other))
    assert any("the workflow run is for" in n for n in pub.notes)
    assert ours(server, pr.number) == [comment]


def test_a_record_from_a_pull_requests_run_never_decides_the_check(server, actions_env, tmp_path, monkeypatch,
                                                                    capsys):
    """The pr-report job (workflow_run of the PR's checks) publishes a record that the PR's code
    could have forged: "pass" becomes a neutral check run that says whose word it is, and no
    commit status is posted that a branch rule could require."""
    pr = server.add_pull(REPO, user="mallory", head_repo="mallory/models", head_ref="patch")
    forged = record(pr.pull.head_sha, pr.number, status="pass", findings=0)
    path = save_record(forged, tmp_path / "record.json")
    for key, value in workflow_run_env(tmp_path, actions_env, server, pr.pull.head_sha, "mallory/models").items():
        monkeypatch.setenv(key, value)
    assert main(["publish", "--record", str(path), "--to", "github"]) == 0
    [run] = server.check_runs(REPO, pr.pull.head_sha)
    assert (run.conclusion, run.status) == ("neutral", "completed")
    assert run.output["title"].startswith("reported by the pull request's own run (not a trusted verdict)")
    assert server.requests("POST", r"/statuses/") == []
    assert len(ours(server, pr.number)) == 1 and "verdict: pass" in capsys.readouterr().out

    monkeypatch.setenv("GITHUB_EVENT_NAME", "push")  # a trusted job's own record decides
    main_sha = server.commit_files(REPO, "main", {"params.yaml": "epochs: 3\n"})
    trusted = record(main_sha, None, status="fail", event="push")
    assert main(["publish", "--record", str(save_record(trusted, tmp_path / "own.json")), "--to", "github"]) == 0
    [run] = server.check_runs(REPO, main_sha)
    assert run.conclusion == "failure"


# -- $GITHUB_OUTPUT ----------------------------------------------------------------------------------
def test_github_output_uses_a_random_delimiter_per_value(actions_env):
    set_outputs({"comment-url": "line one\nline two", "verdict": "pass"}, env=actions_env)
    set_outputs({"verdict": "fail"}, env=actions_env)
    text = open(actions_env["GITHUB_OUTPUT"], encoding="utf-8").read()
    delimiters = re.findall(r"^[\w-]+<<(.*)$", text, re.M)
    assert len(delimiters) == 3 and len(set(delimiters)) == 3
    assert all(re.fullmatch(r"ghadelimiter_[0-9a-f]{32}", d) for d in delimiters)
    assert "line one\nline two\n" in text
    with pytest.raises(InputError, match="delimiter"):
        format_output("x", "a\nghadelimiter_abc\nverdict=pass", delimiter="ghadelimiter_abc")
    with pytest.raises(InputError):
        format_output("bad name", "v")
    assert set_outputs({"verdict": "pass"}, env={}) is None  # outside Actions


def test_job_summary_is_cut_to_its_byte_limit():
    text = MARKER + "\n" + "é" * 2000
    fitted = fit_summary(text, limit_bytes=1000, pointer="the rest is in report.md")
    assert len(fitted.encode("utf-8")) <= 1000 and fitted.endswith("the rest is in report.md\n")
    assert fit_summary("short", pointer="p") == "short"


# -- the command ---------------------------------------------------------------------------------------
def cli_env(monkeypatch, server, token):
    monkeypatch.setenv("GITHUB_TOKEN", token)
    monkeypatch.setenv("GITHUB_API_URL", server.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)


def test_publish_dry_run_sends_nothing(server, tmp_path, monkeypatch, capsys):
    pr = server.add_pull(REPO, user="alice")
    path = save_record(record(pr.pull.head_sha, pr.number, status="fail", findings=60), tmp_path / "record.json")
    cli_env(monkeypatch, server, BOT)
    code = main(["publish", "--record", str(path), "--to", "github", "--pr", str(pr.number), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert server.requests() == []
    assert f"PR #{pr.number}" in out and "conclusion failure" in out and "60 annotation(s) in 2 request(s)" in out
    assert MARKER in out and not (tmp_path / "report.md").exists()


def test_publish_exits_5_naming_the_url_and_the_fix(server, tmp_path, monkeypatch, capsys):
    pr = server.add_pull(REPO, user="alice")
    path = save_record(record(pr.pull.head_sha, pr.number), tmp_path / "record.json")
    cli_env(monkeypatch, server, FORK)
    code = main(["publish", "--record", str(path), "--to", "github", "--pr", str(pr.number)])
    err = capsys.readouterr().err
    assert code == ExitCode.BACKEND
    assert f"{server.url}/repos/{REPO}/issues/{pr.number}/comments" in err
    assert "Resource not accessible by integration" in err and "workflow_run" in err
    assert FORK not in err


def test_publish_exits_0_on_a_failing_verdict(server, tmp_path, monkeypatch, capsys):
    pr = server.add_pull(REPO, user="alice")
    path = save_record(record(pr.pull.head_sha, pr.number, status="fail"), tmp_path / "record.json")
    cli_env(monkeypatch, server, BOT)
    monkeypatch.setenv("MLOPS_CI_GITHUB_LOGIN", "github-actions[bot]")
    assert main(["publish", "--record", str(path), "--to", "github", "--pr", str(pr.number)]) == 0
    assert "verdict: fail" in capsys.readouterr().out
    assert len(ours(server, pr.number)) == 1 and (tmp_path / "report.md").exists()
    assert server.count("GET", r"^/user$") == 0  # the login was given


# -- report content -------------------------------------------------------------------------------------
def test_report_has_the_training_curve_run_link_and_gpu_hours():
    rec = record("a" * 40, 5, history=[{"epoch": e, "loss": 1 / (e + 1), "val|auc": 0.5 + e / 100}
                                       for e in range(80)])
    t = rec.models["churn"].training
    t.run_url, t.metrics = "https://mlflow.example/#/runs/r1", {"system/gpu_hours": 1.5, "val_auc": 0.8}
    links = Links(allowed=("https://mlflow.example/", "https://argo.example/workflows/"))
    text = render_report(rec, links)
    assert "```mermaid\n---\nconfig:" in text and "\nxychart-beta\n" in text and 'x-axis "epoch"' in text
    assert text.count("    line [") == 2 and "80 steps, 50 shown" in text
    assert "| epoch | loss | val\\|auc |" in text  # the table beside the chart, names escaped
    assert "MLflow run [r1](https://mlflow.example/#/runs/r1)" in text and "1.50 GPU-hours" in text
    assert "Argo workflow" not in text  # trained on the runner
    t.workflow, t.workflow_url = "mlops-ci-churn-pr5-aaaaaaa", "https://argo.example/workflows/ml/mlops-ci-churn-pr5-aaaaaaa"
    text = render_report(rec, links)
    assert f"Argo workflow [{t.workflow}]({t.workflow_url})" in text
    assert "](https://" not in render_report(rec)  # a URL from the record is linked only where allowed

    t.history, t.metrics, t.run_url = [], {}, "javascript:alert(1)"
    text = render_report(rec)
    assert "mermaid" not in text and "GPU-hours" not in text and "](javascript" not in text
