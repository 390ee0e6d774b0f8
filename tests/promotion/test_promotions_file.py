"""Promotion as code: the promotions file, its plan on a pull request, and `promote --declared` on merge.

Real git (the tiny repository and its local bare GitOps remote) and the real embedded MLflow
registry (SQLite), holding a few cheap registered versions built once per module.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import commit, git
from mlops_ci.backends.tracking import tracking_for
from mlops_ci.cli.main import main
from mlops_ci.config import load_config
from mlops_ci.context import local_context
from mlops_ci.errors import ConfigError, ExitCode
from mlops_ci.pipeline import default_backends, run_pipeline
from mlops_ci.promotions import PROMOTIONS_NAME, changed_entries, parse, promote_via
from mlops_ci.records import RunRecord, load_record
from mlops_ci.stages.register import EVALUATION_TAG
from mlops_ci.render.report import failure_lines, render_report
from mlops_ci.workspace import Workspace
from registry import build_registry

ISVC = "environments/staging/tiny/inferenceservice.yaml"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    """tiny v1..v3 pass their evaluation (with metrics); v4 carries none."""
    return build_registry(tmp_path_factory.mktemp("registry"), 4, lambda n: {
        "mlops_ci.head_sha": "c" * 40, "mlops_ci.pr": "7",
        **({EVALUATION_TAG: "pass", "mlops_ci.metric.roc_auc": f"0.{70 + n}"} if n < 4 else {})})


@pytest.fixture
def ws(tiny_repo, registry) -> Workspace:
    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace(
        "environments:\n", "environments:\n  prod:\n    namespace: tiny-prod\n    promote_via: push\n", 1))
    commit(tiny_repo, "a prod environment")
    (tiny_repo / ".mlops-ci").mkdir()
    shutil.copy(registry, tiny_repo / ".mlops-ci" / "mlflow.db")
    return Workspace.from_config(load_config(config), env={})


def declare(repo: Path, text: str, message: str) -> str:
    (repo / PROMOTIONS_NAME).write_text(text)
    return commit(repo, message)


# -- the file ------------------------------------------------------------------------------------

def test_entries_short_and_long_form_with_their_lines(ws):
    text = ("version: 1\nenvironments:\n  staging:\n    tiny: 3\n"
            "  prod:\n    tiny: {version: '2', reason: '  hotfix,\n      approved by @alice '}\n")
    entries = parse(text.encode(), ws.config)
    assert {k: (e.version, e.reason, e.source) for k, e in entries.items()} == {
        ("staging", "tiny"): ("3", None, f"{PROMOTIONS_NAME}:4"),
        ("prod", "tiny"): ("2", "hotfix, approved by @alice", f"{PROMOTIONS_NAME}:6")}
    assert parse(b"version: 1\n", ws.config) == {}


@pytest.mark.parametrize("text, where, words", [
    ("version: 1\nenvironments:\n  staging:\n    tiny: v3\n", ":4:5", "'v3' is not a registry version number"),
    ("version: 1\nenvironments:\n  staging:\n    tiny: 0\n", ":4:5", "not a registry version number"),
    ("version: 1\nenvironments:\n  qa:\n    tiny: 3\n", ":3:3", "environment 'qa' is not defined"),
    ("version: 1\nenvironments:\n  staging:\n    churn: 3\n", ":4:5", "model 'churn' is not defined"),
    ("version: 1\nenvironments:\n  staging:\n    tiny: {version: 3, alias: x}\n", ":4:24",
     "unknown key environments.staging.tiny.alias"),
    ("version: 1\nenvironments:\n  staging:\n    tiny: true\n", ":4:5", "environments.staging.tiny"),
    ("environments: {}\n", ":1:1", "version is required"),
    ("version: 1\nenvironments:\n  staging:\n   tiny: 3\n  - x\n", ":5:3", "malformed YAML"),
    ("- 1\n", ":1:1", "the top level must be a mapping"),
])
def test_errors_name_the_file_line_and_column(ws, text, where, words):
    with pytest.raises(ConfigError) as info:
        parse(text.encode(), ws.config)
    assert f"{PROMOTIONS_NAME}{where}" in str(info.value) and words in str(info.value)


def test_changed_entries_between_two_commits(ws, tiny_repo):
    base = declare(tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: 1}\n  prod: {tiny: 1}\n", "declare")
    head = declare(tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: 2}\n", "bump staging, drop prod")
    changed = changed_entries(ws, base, head)
    assert [(e.env, e.model, e.version, previous) for e, previous in changed] == [("staging", "tiny", "2", "1")]
    head2 = declare(tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: {version: 2, reason: why}}\n",
                    "same version, a reason")
    assert [e.reason for e, _ in changed_entries(ws, head, head2)] == ["why"]
    assert changed_entries(ws, head2, head2) == []
    first = git(tiny_repo, "rev-list", "--max-parents=0", "HEAD")
    assert [(e.env, p) for e, p in changed_entries(ws, first, head)] == [("staging", None)]


def test_promote_via_defaults_to_a_pull_request_for_prod_only(ws):
    assert promote_via(ws.config, "staging") == "push"
    assert promote_via(ws.config, "prod") == "push"  # this config says so explicitly
    cfg = ws.config.model_copy(deep=True)
    cfg.environments["prod"].promote_via = None
    assert promote_via(cfg, "prod") == "push"  # a local bare GitOps repository: nowhere to open one
    cfg.gitops.remote = "git@github.com:acme/gitops.git"
    assert promote_via(cfg, "prod") == "pull_request" and promote_via(cfg, "staging") == "push"
    cfg.gitops.remote, cfg.gitops.github_repository = None, "acme/gitops"
    assert promote_via(cfg, "prod") == "pull_request"
    cfg.environments["staging"].promote_via = "pull_request"
    assert promote_via(cfg, "staging") == "pull_request"


# -- the pull request: a promotion request -------------------------------------------------------

def open_pr(ws, tiny_repo, before: str, after: str) -> RunRecord:
    declare(tiny_repo, before, "declare")
    git(tiny_repo, "checkout", "--quiet", "-b", "bump")
    declare(tiny_repo, after, "change a desired version")
    ctx = local_context(tiny_repo, default_branch="main")
    return run_pipeline(ws, ctx, backends=default_backends(ws))


def test_a_pull_request_changing_a_version_shows_its_plan_and_gates(ws, tiny_repo):
    tracking = tracking_for(ws)
    assert main(["promote", "--config", str(ws.loaded.path), "-m", "tiny", "-e", "staging", "--version", "1"]) == 0
    record = open_pr(ws, tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: 1}\n",
                     "version: 1\nenvironments:\n  staging: {tiny: 3}\n")
    assert record.models["tiny"].plan.skip_reason  # the model itself did not change: nothing trained
    [req] = record.promotion_requests
    assert (req.env, req.model, req.version, req.previous, req.status, req.gates) == (
        "staging", "tiny", "3", "1", "pass", "pass")
    assert req.metrics == {"roc_auc": "0.7300"} and req.lineage["source-pr"] == "7"
    diff = next(c.diff for c in req.plan.changes if c.path == ISVC)
    assert "-    mlops-ci.dev/model-version: '1'" in diff and "+    mlops-ci.dev/model-version: '3'" in diff
    assert req.plan.dry_run and record.verdict == "pass"
    assert load_record(ws.record_path).promotion_requests == record.promotion_requests  # saved with the run
    report = render_report(record)
    assert "Promotion request: tiny v3 → `staging` (was v1)" in report
    assert "| roc\\_auc | 0.7300 |" in report and "+    mlops-ci.dev/model-version: '3'" in report
    # nothing was applied: the plan is a dry run
    assert tracking.version_by_alias("tiny", "staging").version == "1"


def test_a_version_without_passing_gates_fails_the_check_unless_a_reason_is_given(ws, tiny_repo):
    record = open_pr(ws, tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: 1}\n",
                     "version: 1\nenvironments:\n  staging: {tiny: 4}\n  prod: {tiny: 9}\n")
    by_env = {r.env: r for r in record.promotion_requests}
    assert by_env["staging"].status == "fail" and by_env["staging"].gates == "fail"
    assert "does not exist" in by_env["prod"].error and by_env["prod"].status == "fail"
    assert record.verdict == "fail"
    lines = failure_lines(record)
    assert any("promotion request tiny v4 -> staging" in line and "add `reason:`" in line for line in lines)

    declare(tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: {version: 4, reason: known gap}}\n",
            "force v4 with a reason")
    record = run_pipeline(ws, local_context(tiny_repo, default_branch="main"), backends=default_backends(ws))
    [req] = record.promotion_requests
    assert req.status == "warn" and req.reason == "known gap" and record.verdict != "fail"
    assert "forced-reason: known gap" in next(c.diff for c in req.plan.changes if c.path == ISVC)


def test_an_invalid_promotions_file_stops_the_run_with_its_line(ws, tiny_repo):
    with pytest.raises(ConfigError, match=rf"{PROMOTIONS_NAME}:3:3: environment 'qa'"):
        open_pr(ws, tiny_repo, "version: 1\n", "version: 1\nenvironments:\n  qa: {tiny: 1}\n")


# -- the merge: promote --declared ---------------------------------------------------------------

def test_declared_applies_exactly_the_changed_entries_then_is_a_noop(ws, tiny_repo, capsys):
    tracking = tracking_for(ws)
    remote = Path(ws.gitops_remote)
    args = ["promote", "--config", str(ws.loaded.path), "--declared"]
    declare(tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: 1}\n  prod: {tiny: 1}\n", "declare v1")
    assert main(args) == 0
    assert sorted(capsys.readouterr().out.splitlines()) == [
        "promoted: tiny v1 to prod: commit " + git(remote, "log", "-1", "--format=%h", "--abbrev=12", "main",
                                                   "--", "environments/prod"),
        "promoted: tiny v1 to staging: commit " + git(remote, "log", "-1", "--format=%h", "--abbrev=12", "main",
                                                      "--", "environments/staging")]
    declare(tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: 2}\n  prod: {tiny: 1}\n", "staging to v2")
    before = git(remote, "rev-parse", "main")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "unchanged: prod already serves tiny v1" in out and "promoted: tiny v2 to staging" in out
    assert git(remote, "rev-list", "--count", f"{before}..main") == "1"
    assert git(remote, "log", "-1", "--format=%s", "main") == "promote tiny v2 to staging"
    assert tracking.version_by_alias("tiny", "staging").version == "2"
    assert tracking.version_by_alias("tiny", "prod").version == "1"
    # the second run has nothing to do
    head = git(remote, "rev-parse", "main")
    assert main(args) == 0
    assert capsys.readouterr().out.count("unchanged:") == 2 and git(remote, "rev-parse", "main") == head


def test_declared_respects_holds_and_refuses_failed_gates_without_a_reason(ws, tiny_repo, capsys):
    args = ["promote", "--config", str(ws.loaded.path), "--declared"]
    declare(tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: 1}\n", "v1")
    assert main(args) == 0
    declare(tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: 2}\n", "v2")
    assert main(args) == 0
    assert main(["rollback", "--config", str(ws.loaded.path), "-m", "tiny", "-e", "staging", "--reason", "v2 bad"]) == 0
    capsys.readouterr()
    head = git(Path(ws.gitops_remote), "rev-parse", "main")
    declare(tiny_repo, "version: 1\nenvironments:\n  staging: {tiny: 3}\n  prod: {tiny: 4}\n", "v3, and v4 in prod")
    assert main(args) == ExitCode.GATE_FAILED
    err = capsys.readouterr().err
    assert "held: tiny is on hold in staging" in err and "--clear-hold" in err
    assert "refused: tiny v4 did not pass its gates" in err and f"add `reason:` to {PROMOTIONS_NAME}:4" in err
    assert git(Path(ws.gitops_remote), "rev-parse", "main") == head
    assert main([*args, "--dry-run"]) == ExitCode.GATE_FAILED  # the same verdict, nothing written
    assert main([*args, "--force", "--reason", "x"]) == ExitCode.USAGE
