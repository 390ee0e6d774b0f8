"""The GitHub path, driven from the workflow files themselves.

tests/actions_runner.py reads the jobs of workflows/pr-checks.yml, pr-report.yml and
merge-promote.yml and runs their steps in order, as a runner would (our composite action through
action/entrypoint.sh, the checkouts from "GitHub's" git repositories, the artifacts between
jobs), with event payloads valid under GitHub's webhook schema (tests/events.py), against the
local GitHub server (mirroring the real git repositories) and a real MLflow tracking server with
basic auth (tests/servers/mlflow_server.py).

The caller's repository secrets are the MLflow server's URI, user and password. A same-repository
pull request passes them to pr-checks; a fork's gets none. pr-report (workflow_run) and
merge-promote (push) get them. One repository, registry and GitOps remote serve the module:
main gets a champion once, then each scenario opens its pull request on the main of the moment.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from actions_expr import ExpressionError, condition, contexts_of, expressions_in, interpolate, parse
from actions_runner import ROOT, Runner, WorkflowRun, load_yaml
from conftest import AUTHOR, FIXTURES, commit, git, set_params, write_tiny_data
from events import ZERO_SHA, pull_request_event, push_event, sha, validate, workflow_run_event
from servers.github_git import GitBackedGitHubServer

from mlops_ci import registry as vocabulary
from mlops_ci.backends.github.comments import head_sha_of
from mlops_ci.backends.tracking.mlflow import MlflowTracking
from mlops_ci.render.report import MARKER

pytest_plugins = ["conftest_mlflow"]

WORKFLOWS = ROOT / "workflows"
FILES = ("pr-checks.yml", "pr-report.yml", "merge-promote.yml")
REPO, FORK, BOT, MODEL = "acme/tiny", "mallory/tiny", "github-actions[bot]", "tiny"
EXPERIMENT = vocabulary.experiment_name(MODEL)
CONTEXTS = {"github", "inputs", "secrets", "steps", "needs", "runner", "job", "jobs", "env", "vars"}


# -- the world: GitHub, its git repositories, the registry, the GitOps remote ------------------------

@dataclass
class World:
    root: Path
    github: GitBackedGitHubServer
    mlflow: object  # servers.mlflow_server.MlflowServer
    runner: Runner
    origin: Path  # GitHub's git repository of acme/tiny (bare)
    fork: Path  # GitHub's git repository of mallory/tiny (bare)
    dev: Path  # a maintainer's clone
    gitops: Path  # the GitOps remote (bare)

    @property
    def secrets(self) -> dict[str, str]:
        """The caller's repository secrets, as its workflow passes them on."""
        return {"mlflow-tracking-uri": self.mlflow.uri, "mlflow-tracking-username": self.mlflow.username,
                "mlflow-tracking-password": self.mlflow.password}

    def tracking(self) -> MlflowTracking:
        """The registry as an admin sees it (the credentials are set by the ``registry`` fixture)."""
        return MlflowTracking(uri=self.mlflow.uri)


@dataclass
class PullRequest:
    number: int
    title: str
    author: str
    branch: str
    head_repo: str
    head_sha: str
    base_sha: str
    merge_sha: str  # refs/pull/N/merge: what pull_request runs check out

    @property
    def fork(self) -> bool:
        return self.head_repo != REPO


def _isolate(mp: pytest.MonkeyPatch, home: Path) -> None:
    """conftest's isolated_env, for the module's fixtures (set up before it)."""
    for key, value in {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1",
                       **AUTHOR}.items():
        mp.setenv(key, value)
    for key in list(os.environ):
        if key.startswith(("GITHUB_", "MLFLOW_TRACKING", "MLFLOW_RUN", "MLFLOW_EXPERIMENT", "RUNNER_")):
            mp.delenv(key, raising=False)
    mp.delenv("CI", raising=False)


@pytest.fixture(scope="module")
def world(mlflow_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("github-path")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, root / "home")
        origin, fork, gitops, dev = root / "github/acme/tiny.git", root / "github/mallory/tiny.git", \
            root / "gitops.git", root / "dev/tiny"
        for bare in (origin, gitops):
            bare.mkdir(parents=True)
            git(bare, "init", "--quiet", "--bare", "--initial-branch=main")
        shutil.copytree(FIXTURES / "tiny", dev)
        (dev / ".gitignore").write_text(".mlops-ci/\n")
        write_tiny_data(dev)
        config = dev / ".mlops-ci.yaml"
        config.write_text(config.read_text().replace("version: 1\n", f"version: 1\ngitops:\n  remote: {gitops}\n", 1))
        git(dev, "init", "--quiet", "--initial-branch=main")
        commit(dev, "tiny model")
        git(dev, "remote", "add", "origin", str(origin))
        git(dev, "push", "--quiet", "origin", "main")
        git(root, "clone", "--quiet", "--bare", str(origin), str(fork))  # mallory's fork, made now
        with GitBackedGitHubServer() as github:
            github.add_user(BOT, type="Bot")
            github.link_git(REPO, origin)
            github.add_repo(FORK, fork_of=REPO)
            github.link_git(FORK, fork)
            github.add_collaborator(REPO, BOT, "write")
            github.add_collaborator(REPO, "dana", "write")
            runner = Runner(root / "runner", api_url=github.url, git_repos={REPO: origin, FORK: fork},
                            add_token=lambda token, **kw: github.add_token(token, BOT, can_get_user=False, **kw))
            yield World(root, github, mlflow_server, runner, origin, fork, dev, gitops)


@pytest.fixture
def registry(world, monkeypatch) -> MlflowTracking:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", world.mlflow.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", world.mlflow.password)
    return world.tracking()


@pytest.fixture(scope="module")
def champion(world) -> str:
    """merge-promote on the first commit of main: trains v1 and promotes it to staging."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_USERNAME", world.mlflow.username)
        mp.setenv("MLFLOW_TRACKING_PASSWORD", world.mlflow.password)
        sha = git(world.origin, "rev-parse", "main")
        run = merge_promote(world, ZERO_SHA, sha, "tiny model")
        assert_job(run, "train")
        assert_job(run, "promote")
        version = record_of(run)["models"][MODEL]["results"]["register"]["version"]
        assert world.tracking().version_by_alias(MODEL, "staging").version == version
    return version


# -- what the people do ---------------------------------------------------------------------------------

def open_pull(world: World, *, branch: str, title: str, author: str, fork: bool, **params) -> PullRequest:
    """Push a branch that changes params.yaml (to the fork for ``fork``) and open a pull request; GitHub
    then keeps the head and the test merge commit in the base repository (refs/pull/N/head, /merge)."""
    work = world.root / "work" / branch.replace("/", "-")
    git(world.root, "clone", "--quiet", str(world.fork if fork else world.origin), str(work))
    base = git(world.origin, "rev-parse", "main")
    git(work, "fetch", "--quiet", str(world.origin), "main")  # a fork's author syncs with upstream first
    git(work, "checkout", "--quiet", "-B", branch, base)
    set_params(work, **params)
    head = commit(work, title)
    git(work, "push", "--quiet", "origin", f"{branch}")
    world.github.sync_git()
    issue = world.github.add_pull(REPO, title=title, user=author, head_ref=branch, head_sha=head,
                                  head_repo=FORK if fork else REPO)
    git(work, "checkout", "--quiet", "--detach", base)
    git(work, "merge", "--quiet", "--no-ff", "-m", f"Merge {head} into {base}", head)
    merge = git(work, "rev-parse", "HEAD")
    git(work, "push", "--quiet", str(world.origin), f"{head}:refs/pull/{issue.number}/head",
        f"{merge}:refs/pull/{issue.number}/merge")
    return PullRequest(issue.number, title, author, branch, FORK if fork else REPO, head, base, merge)


def merge(world: World, pr: PullRequest, *, squash: bool) -> tuple[str, str]:
    """The maintainer merges (a merge commit, or a squash), pushes main; (before, after)."""
    dev = world.dev
    git(dev, "fetch", "--quiet", "origin", "main", f"refs/pull/{pr.number}/head")
    git(dev, "checkout", "--quiet", "-B", "main", "origin/main")
    before = git(dev, "rev-parse", "HEAD")
    if squash:
        git(dev, "merge", "--quiet", "--squash", pr.head_sha)
        git(dev, "commit", "--quiet", "-m", f"{pr.title} (#{pr.number})")
    else:
        git(dev, "merge", "--quiet", "--no-ff", "-m",
            f"Merge pull request #{pr.number} from {pr.head_repo.split('/')[0]}/{pr.branch}", pr.head_sha)
    git(dev, "push", "--quiet", "origin", "main")
    world.github.sync_git()
    issue = world.github.repo(REPO, live=True).issues[pr.number]
    issue.state, issue.pull.merged = "closed", True
    return before, git(dev, "rev-parse", "HEAD")


# -- the events and the workflows they start --------------------------------------------------------------

def pr_checks(world: World, pr: PullRequest, secrets: dict[str, str]) -> WorkflowRun:
    payload = pull_request_event("opened", number=pr.number, title=pr.title, repo=REPO, head_repo=pr.head_repo,
                                 head_ref=pr.branch, head_sha=pr.head_sha, base_sha=pr.base_sha, author=pr.author)
    return world.runner.run(WORKFLOWS / "pr-checks.yml", event_name="pull_request", payload=payload,
                            sha=pr.merge_sha, ref=f"refs/pull/{pr.number}/merge", actor=pr.author, secrets=secrets)


def pr_report(world: World, pr: PullRequest, checks: WorkflowRun) -> WorkflowRun:
    """The workflow_run event of the checks run (GitHub lists no pull request for a fork's run)."""
    payload = workflow_run_event(repo=REPO, head_repo=pr.head_repo, head_branch=pr.branch, head_sha=pr.head_sha,
                                 title=pr.title, actor=pr.author, pr_number=None if pr.fork else pr.number,
                                 base_sha=pr.base_sha, run_id=checks.run_id)
    main = git(world.origin, "rev-parse", "main")
    return world.runner.run(WORKFLOWS / "pr-report.yml", event_name="workflow_run", payload=payload, sha=main,
                            ref="refs/heads/main", actor=pr.author, secrets=world.secrets)


def merge_promote(world: World, before: str, after: str, message: str) -> WorkflowRun:
    payload = push_event(repo=REPO, before=before, after=after, pusher="dana", message=message)
    return world.runner.run(WORKFLOWS / "merge-promote.yml", event_name="push", payload=payload, sha=after,
                            ref="refs/heads/main", actor="dana", inputs={"model": MODEL}, secrets=world.secrets)


# -- reading the results ----------------------------------------------------------------------------------

def assert_job(run: WorkflowRun, job: str, result: str = "success") -> None:
    got = run.jobs[job]
    assert got.result == result, f"job {job}: {got.result}, expected {result}\n{got.tail()}"


def record_of(run: WorkflowRun) -> dict:
    return json.loads((run.artifacts / "mlops-ci-record" / "record.json").read_text())


def report_of(run: WorkflowRun) -> str:
    return (run.artifacts / "mlops-ci-record" / "report.md").read_text()


def training_runs(tracking: MlflowTracking) -> dict[str, dict[str, str]]:
    client = tracking.client
    exp = client.get_experiment_by_name(EXPERIMENT)
    return {r.info.run_id: r.data.tags for r in client.search_runs([exp.experiment_id], max_results=1000)}


def gitops_trailers(world: World) -> dict[str, str]:
    text = git(world.gitops, "log", "-1", "--format=%(trailers:only,unfold)", "main")
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def bot_comments(world: World, number: int) -> list:
    return [c for c in world.github.comments(REPO, number) if c.user == BOT and MARKER in c.body]


def assert_posted(world: World, pr: PullRequest, report: WorkflowRun) -> None:
    assert_job(report, "report")
    assert report.outputs == {"posted": "true"}
    [comment] = bot_comments(world, pr.number)
    assert head_sha_of(comment.body) == pr.head_sha
    [check] = world.github.check_runs(REPO, pr.head_sha)
    assert check.status == "completed" and check.conclusion in ("success", "neutral")


# -- the expressions ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [*FILES, "../action.yml"])
def test_every_expression_in_the_workflows_is_understood(name):
    """A form the runner cannot evaluate breaks this test rather than a step being skipped."""
    found = expressions_in(load_yaml(WORKFLOWS / name))
    assert found
    for where, text in found:
        unknown = contexts_of(parse(text)) - CONTEXTS
        assert not unknown, f"{name}: {where}: unknown context {unknown} in {text!r}"


def test_the_evaluator_follows_github_semantics():
    ctx = {"inputs": {"declared": False, "working-directory": "src", "environment": "staging"},
           "runner": {"temp": "/t"}, "github": {"event": {"pull_request": {"number": 7}}, "ref": "refs/heads/x"}}
    assert interpolate("--env ${{ inputs.environment }} ${{ inputs.declared && '--declared' || "
                       "format('--record {0}/r.json', runner.temp) }}", ctx) == "--env staging --record /t/r.json"
    assert interpolate("${{ github.event.pull_request.number || github.ref }}", ctx) == 7
    assert interpolate("${{ github.event.pull_request.title || github.ref }}", ctx) == "refs/heads/x"
    assert interpolate("${{ format('{0}/.x/{{y}}', inputs.Working-Directory) }}", ctx) == "src/.x/{y}"
    assert condition("inputs.environment == 'STAGING'", ctx, lambda f: True)  # strings: case-insensitive
    assert not condition("inputs.environment == 'staging'", ctx, lambda f: f != "success")  # implicit success()
    assert condition("${{ !cancelled() }}", ctx, lambda f: f != "cancelled")
    for bad in ("contains(github.ref, 'x')", "github.event['number']", "inputs.x > 1", "vars.*"):
        with pytest.raises(ExpressionError):
            interpolate("${{ " + bad + " }}", ctx)


# -- conditions, without running mlops-ci ---------------------------------------------------------------------

@pytest.mark.slow
def test_pr_checks_refuses_pull_request_target_and_still_tries_to_upload(world):
    payload = pull_request_event("opened", number=99, repo=REPO, head_repo=FORK, head_ref="evil",
                                 head_sha=sha("evil"), base_sha=git(world.origin, "rev-parse", "main"), author="mallory")
    run = world.runner.run(WORKFLOWS / "pr-checks.yml", event_name="pull_request_target", payload=payload,
                           sha=git(world.origin, "rev-parse", "main"), ref="refs/heads/main", actor="mallory",
                           secrets=world.secrets)
    job = run.jobs["checks"]
    assert job.result == "failure" and "pr-checks runs the pull request's code" in job.tail()
    assert {k: v.outcome for k, v in job.steps.items() if k != "mlops-ci"} == {
        "__step0": "failure", "__step1": "skipped", "__step2": "skipped", "__step3": "skipped", "__step5": "success"}
    assert job.steps["mlops-ci"].outcome == "skipped" and run.outputs == {"verdict": ""}
    assert "no files found for artifact 'mlops-ci-record'" in job.tail()


@pytest.mark.slow
@pytest.mark.parametrize("conclusion", ["success", "cancelled"])
def test_pr_report_posts_nothing_without_a_record_or_for_a_cancelled_run(world, conclusion):
    payload = workflow_run_event(repo=REPO, head_repo=FORK, head_branch="patch-9", head_sha=sha("patch-9"),
                                 actor="mallory", run_id=77)  # a run that uploaded nothing
    payload["workflow_run"]["conclusion"] = conclusion
    validate("workflow_run$completed", payload)
    before = world.github.count("POST")
    run = world.runner.run(WORKFLOWS / "pr-report.yml", event_name="workflow_run", payload=payload,
                           sha=git(world.origin, "rev-parse", "main"), ref="refs/heads/main", actor="mallory",
                           secrets=world.secrets)
    job = run.jobs["report"]
    if conclusion == "cancelled":
        assert job.result == "skipped" and run.outputs == {"posted": ""}
    else:
        assert job.result == "success", job.tail()
        assert job.steps["artifact"].outputs == {"found": "false"} and job.steps["publish"].outcome == "skipped"
        assert "uploaded no mlops-ci-record artifact" in job.tail() and run.outputs == {"posted": "false"}
    assert world.github.count("POST") == before


# -- scenario 1: a pull request of this repository ships the version it registered ---------------------------

@pytest.mark.slow
@pytest.mark.parametrize("style", ["merge", "squash"])
def test_a_same_repository_pull_request_ships_its_own_version_without_training(world, champion, registry, style):
    pr = open_pull(world, branch=f"feature/lr-{style}", title=f"Faster learning ({style})", author="dana",
                   fork=False, lr=0.8 if style == "merge" else 0.7)
    checks = pr_checks(world, pr, world.secrets)
    assert_job(checks, "checks")
    job = checks.jobs["checks"]
    assert job.env["MLFLOW_TRACKING_URI"] == world.mlflow.uri  # same repository: the secrets are passed
    assert job.evaluated["concurrency"] == f"mlops-ci-pr-{REPO}-{pr.number}"
    assert checks.outputs["verdict"] in ("pass", "warn")
    record = record_of(checks)
    entry = record["models"][MODEL]
    assert record["registry"] == "shared" and entry["results"]["train"]["status"] == "succeeded"
    version, run_id = entry["results"]["register"]["version"], entry["results"]["train"]["run_id"]
    assert int(version) > int(champion)
    mv = registry.get_version(MODEL, version)
    assert mv.run_id == run_id
    assert (mv.tags[vocabulary.ORIGIN], mv.tags[vocabulary.PR], mv.tags[vocabulary.HEAD_SHA]) == (
        "pull_request", str(pr.number), pr.head_sha)
    assert mv.tags[vocabulary.FINGERPRINT] == entry["results"]["train"]["fingerprint"]["digest"]
    assert bot_comments(world, pr.number) == []  # pr-checks posts nothing

    assert_posted(world, pr, pr_report(world, pr, checks))

    before, after = merge(world, pr, squash=style == "squash")
    trained_before = training_runs(registry)
    shipped = merge_promote(world, before, after, pr.title)
    assert_job(shipped, "train")
    assert training_runs(registry) == trained_before  # no training: the merge found the PR's version
    training = record_of(shipped)["models"][MODEL]["results"]["train"]
    assert training["reused"]["version"] == version and training["reused"]["run_id"] == run_id
    assert training["fingerprint"]["digest"] == mv.tags[vocabulary.FINGERPRINT]
    assert shipped.outputs["verdict"] in ("pass", "warn")

    assert_job(shipped, "promote")
    assert shipped.jobs["promote"].evaluated["concurrency"] == f"mlops-ci-deploy-{REPO}-staging"
    trailers = gitops_trailers(world)
    assert (trailers["Model-Version"], trailers["Source-PR"], trailers["MLflow-Run-Id"]) == (
        version, str(pr.number), run_id), trailers
    assert (trailers["Source-Commit"], trailers["Trained-At"]) == (after, pr.head_sha), trailers
    assert registry.version_by_alias(MODEL, "staging").version == version
    [deployment] = [d for d in world.github.deployments(REPO) if d.sha == after]
    assert deployment.environment == "staging" and deployment.payload["version"] == version


# -- scenario 2: a fork's pull request is trained once, on merge, next to what it reported ---------------------

@pytest.mark.slow
def test_a_fork_pull_request_is_trained_once_after_the_merge_and_its_claim_reproduced(world, champion, registry):
    pr = open_pull(world, branch="patch-1", title="More epochs", author="mallory", fork=True, epochs=220)
    checks = pr_checks(world, pr, {})  # GitHub gives a fork's pull_request run no secrets
    assert_job(checks, "checks")
    job = checks.jobs["checks"]
    assert job.env["MLFLOW_TRACKING_URI"] == job.env["MLFLOW_TRACKING_PASSWORD"] == ""
    with pytest.raises(urllib.error.HTTPError) as refused:  # and the registry wants credentials
        urllib.request.urlopen(f"{world.mlflow.uri}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
    assert refused.value.code == 401
    record = record_of(checks)
    entry = record["models"][MODEL]
    assert record["registry"] == "embedded" and record["context"]["fork"] is True
    assert "Evaluated without the champion" in report_of(checks)
    # nothing from the job's own registry is shown as if it could ship: no version, no deployment plan
    assert "register" not in entry["results"] and "deployment" not in entry["results"]
    assert "Registered as" not in report_of(checks) and "Deployment plan" not in report_of(checks)
    fingerprint = entry["results"]["train"]["fingerprint"]["digest"]
    assert registry.search_versions(MODEL, {vocabulary.FINGERPRINT: fingerprint}) == []
    assert registry.search_runs(EXPERIMENT, {vocabulary.HEAD_SHA: pr.head_sha}) == []
    assert bot_comments(world, pr.number) == []

    assert_posted(world, pr, pr_report(world, pr, checks))
    claimed = {m["name"]: m["candidate"] for m in entry["results"]["evaluate"]["metrics"]}
    [claim] = vocabulary.find_claims(registry, MODEL, fingerprint)
    assert (claim.pr, claim.head_sha) == (pr.number, pr.head_sha)
    assert claim.metrics == pytest.approx(claimed)

    before, after = merge(world, pr, squash=False)
    trained_before = training_runs(registry)
    shipped = merge_promote(world, before, after, pr.title)
    assert_job(shipped, "train")
    new = {k: v for k, v in training_runs(registry).items() if k not in trained_before}
    assert len(new) == 1, new  # trained exactly once
    [(run_id, tags)] = new.items()
    assert tags[vocabulary.FINGERPRINT] == fingerprint and tags[vocabulary.HEAD_SHA] == after
    merged = record_of(shipped)["models"][MODEL]
    assert merged["results"]["train"]["run_id"] == run_id and merged["results"]["train"].get("reused") is None
    [kept] = merged["results"]["evaluate"]["claims"]
    assert (kept["pr"], kept["head_sha"]) == (pr.number, pr.head_sha) and kept["metrics"] == pytest.approx(claimed)
    report = report_of(shipped)
    assert f"Reproduction: PR #{pr.number} (at `{pr.head_sha[:12]}`)" in report, report
    for value in claimed.values():
        assert f"{value:.4f}" in report

    assert_job(shipped, "promote")
    version = merged["results"]["register"]["version"]
    assert registry.get_version(MODEL, version).run_id == run_id
    trailers = gitops_trailers(world)
    assert (trailers["Model-Version"], trailers["MLflow-Run-Id"], trailers["Source-Commit"]) == (version, run_id, after)
    assert "Trained-At" not in trailers  # trained on the merged commit itself
    assert registry.version_by_alias(MODEL, "staging").version == version
