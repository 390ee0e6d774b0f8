"""What was reviewed is what ships, through the real CLI on the tiny project (git, MLflow on SQLite,
torchrun): a rerun of an unchanged head trains and registers nothing; after a merge (merge commit,
squash or rebase) the run on the default branch finds the pull request's version by its training
fingerprint and promotes that very version; a crash between registration and the run record, or a
failure after registering, never leads to a second version of the same inputs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli, commit, git, gitops_commits, registry, run_count, set_params
from mlops_ci.errors import ExitCode

pytestmark = pytest.mark.slow


def record(repo: Path) -> dict:
    return json.loads((repo / ".mlops-ci/record.json").read_text())


def trailers(repo: Path) -> dict[str, str]:
    text = git(repo / ".mlops-ci" / "gitops.git", "log", "-1", "--format=%(trailers:only,unfold)", "main")
    return dict(line.split(": ", 1) for line in text.splitlines() if line)


def run_ok(repo: Path, *args: str) -> subprocess.CompletedProcess:
    proc = cli(repo, "run", "--quiet", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def open_pull_request(repo: Path) -> str:
    """A pull request that changes the params; its run trains and registers v2. Returns its head."""
    git(repo, "checkout", "--quiet", "-b", "pr/more-epochs")
    set_params(repo, epochs=220)
    head = commit(repo, "more epochs")
    run_ok(repo)
    assert registry(repo)[0] == [1, 2]
    return head


def with_injected(repo: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    """`mlops-ci ARGS` in a new process with ``code`` run first (fault injection)."""
    program = f"{code}\nfrom mlops_ci.cli.main import main\nraise SystemExit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", program], cwd=repo, capture_output=True, text=True, timeout=600)


def test_rerun_then_merge_ships_the_reviewed_version(champion_repo, tmp_path):
    """One pull request's run, then its merge by each strategy, each on a copy of the repository
    (the copies read the first one's MLflow artifacts, which stay in place)."""
    repo = champion_repo
    pr_head = open_pull_request(repo)
    pr = record(repo)["models"]["tiny"]
    assert pr["results"]["register"]["version"] == "2" and pr["results"]["train"]["status"] == "succeeded"
    trained_by_pr = pr["results"]["train"]["run_id"]

    runs = run_count(repo)  # a rerun of the unchanged head: no training, no registration
    run_ok(repo)
    again = record(repo)["models"]["tiny"]
    assert run_count(repo) == runs and registry(repo)[0] == [1, 2]
    assert again["results"]["train"]["reused"]["version"] == "2" and again["results"]["train"]["run_id"] is None
    assert again["results"]["register"] == {**pr["results"]["register"], "reused": True}
    assert again["results"]["evaluate"]["recorded"] is True and again["results"]["evaluate"]["status"] == "pass"
    # the dry run says so once, and reads the embedded registry without importing MLflow (~2 s)
    dry = with_injected(repo, "import atexit, sys\natexit.register(lambda: print('mlflow imported:', 'mlflow' in "
                        "sys.modules))", "run", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count("not retrained:") == 1 and "mlflow imported: False" in dry.stdout

    for strategy in ("merge", "squash", "rebase"):
        merge_and_ship(shutil.copytree(repo, tmp_path / strategy, symlinks=True), strategy, pr_head, trained_by_pr,
                       runs)


def merge_and_ship(repo: Path, strategy: str, pr_head: str, trained_by_pr: str, runs: int) -> None:
    """Merge the pull request by ``strategy`` after the base moved on; the run on the merge commit
    finds v2 by its fingerprint and promote ships it, with the pull request's lineage."""
    git(repo, "checkout", "--quiet", "main")
    (repo / "NOTES.md").write_text("the base moves on, outside the model's paths\n")
    commit(repo, "notes")
    if strategy == "merge":
        git(repo, "merge", "--quiet", "--no-ff", "pr/more-epochs", "-m", "Merge pull request #7")
    elif strategy == "squash":
        git(repo, "merge", "--quiet", "--squash", "pr/more-epochs")
        commit(repo, "More epochs (#7)")
    else:
        git(repo, "checkout", "--quiet", "pr/more-epochs")
        git(repo, "rebase", "--quiet", "main")
        git(repo, "checkout", "--quiet", "main")
        git(repo, "merge", "--quiet", "--ff-only", "pr/more-epochs")
    merged = git(repo, "rev-parse", "HEAD")
    assert merged != pr_head, strategy

    run_ok(repo)  # what merge-promote.yml runs on the merge commit
    on_main = record(repo)["models"]["tiny"]
    assert run_count(repo) == runs and registry(repo)[0] == [1, 2], strategy  # nothing trained or registered
    assert on_main["results"]["train"]["reused"]["version"] == "2" and on_main["results"]["train"]["reused"]["run_id"] == trained_by_pr
    assert on_main["results"]["train"]["reused"]["source_commit"] == pr_head, strategy
    assert on_main["results"]["deployment"]["version"] == "2", strategy
    report = (repo / ".mlops-ci/report.md").read_text()
    assert "Not retrained: code, data, params, settings and image are unchanged since v2." in report, strategy

    done = cli(repo, "promote", "--model", "tiny", "--env", "staging")
    assert done.returncode == 0, (strategy, done.stderr[-2000:])
    assert registry(repo) == ([1, 2], {"staging": "2"}), strategy
    t = trailers(repo)
    assert t["Model-Version"] == "2" and t["MLflow-Run-Id"] == trained_by_pr and t["Source-Commit"] == merged
    assert t["Trained-At"] == pr_head, strategy


def test_a_crash_between_registration_and_the_record_leaves_one_version(champion_repo):
    repo = champion_repo
    git(repo, "checkout", "--quiet", "-b", "pr/crash")
    set_params(repo, epochs=230)
    commit(repo, "more epochs")
    crash = ("import os\nimport mlops_ci.registry as r\n_register = r.register_once\n"
             "def register_once(*a, **k):\n    _register(*a, **k)\n    os._exit(137)\nr.register_once = register_once")
    proc = with_injected(repo, crash, "run", "--quiet")
    assert proc.returncode == 137, proc.stderr[-2000:]
    assert registry(repo)[0] == [1, 2]
    assert "registration" not in json.dumps(record(repo)["models"]["tiny"]["results"].get("register") or {})
    runs = run_count(repo)
    run_ok(repo)
    entry = record(repo)["models"]["tiny"]
    assert registry(repo)[0] == [1, 2] and run_count(repo) == runs  # found by its fingerprint: one version
    assert entry["results"]["train"]["reused"]["version"] == "2" and entry["results"]["register"]["version"] == "2"


def test_a_failure_after_registering_then_a_rerun_registers_nothing_more(champion_repo):
    repo = champion_repo
    git(repo, "checkout", "--quiet", "-b", "pr/late-failure")
    set_params(repo, epochs=240)
    commit(repo, "more epochs")
    fail = ("import dataclasses\nimport mlops_ci.pipeline.stages as s\nfrom mlops_ci.errors import BackendError\n"
            "def broken(*a, **k):\n    raise BackendError('the GitOps remote went away')\n"
            "s.STAGES[:] = [dataclasses.replace(x, run=broken) if x.name == 'deployment' else x for x in s.STAGES]")
    proc = with_injected(repo, fail, "run", "--quiet")
    assert proc.returncode == ExitCode.BACKEND, proc.stderr[-2000:]
    failed = record(repo)
    assert failed["failure"]["stage"] == "deployment plan" and failed["failure"]["model"] == "tiny"
    assert "the GitOps remote went away" in failed["failure"]["message"] and registry(repo)[0] == [1, 2]
    report = (repo / ".mlops-ci/report.md").read_text()
    assert "❌ **Nothing will be deployed**: the run stopped at deployment plan of tiny" in report
    runs = run_count(repo)
    run_ok(repo)
    assert registry(repo)[0] == [1, 2] and run_count(repo) == runs
    assert record(repo)["models"]["tiny"]["results"]["register"]["version"] == "2"


def test_a_missing_gitops_remote_fails_before_training(champion_repo, tmp_path):
    repo = champion_repo
    missing = tmp_path / "gitops.git"
    cfg = repo / ".mlops-ci.yaml"
    cfg.write_text(cfg.read_text().replace("promotion:\n", f"gitops:\n  remote: {missing}\npromotion:\n"))
    git(repo, "checkout", "--quiet", "-b", "pr/remote")
    set_params(repo, epochs=250)
    commit(repo, "a real GitOps remote")
    runs = run_count(repo)
    proc = cli(repo, "run", "--quiet")
    assert proc.returncode == ExitCode.BACKEND
    assert f"git init --bare {missing}" in proc.stderr and run_count(repo) == runs  # nothing trained
    assert record(repo)["failure"]["stage"] == "preflight"
    git(tmp_path, "init", "--quiet", "--bare", str(missing))
    run_ok(repo)
    assert registry(repo)[0] == [1, 2]


def test_promote_on_the_unmerged_branch_itself_is_refused(champion_repo):
    repo = champion_repo
    open_pull_request(repo)
    proc = cli(repo, "promote", "--model", "tiny", "--env", "staging")
    assert proc.returncode == ExitCode.INPUT and "which is not merged into main" in proc.stderr
    assert gitops_commits(repo) == 1
    allowed = cli(repo, "promote", "--model", "tiny", "--env", "staging", "--allow-unmerged", "--dry-run")
    assert allowed.returncode == 0, allowed.stderr[-2000:]


def test_force_reason_registers_and_promotes_a_candidate_whose_gates_failed(champion_repo):
    repo = champion_repo
    git(repo, "checkout", "--quiet", "-b", "pr/broken")
    set_params(repo, broken=True)
    commit(repo, "a model that predicts NaN")
    proc = cli(repo, "run", "--quiet")
    assert proc.returncode == ExitCode.GATE_FAILED and registry(repo)[0] == [1]
    git(repo, "checkout", "--quiet", "main")
    git(repo, "merge", "--quiet", "--no-ff", "pr/broken", "-m", "merge")
    refused = cli(repo, "promote", "--model", "tiny", "--env", "staging", "--record", ".mlops-ci/record.json")
    assert refused.returncode == ExitCode.GATE_FAILED and "pass --force --reason" in refused.stderr
    dry = cli(repo, "promote", "--model", "tiny", "--env", "staging", "--record", ".mlops-ci/record.json",
              "--force", "--reason", "incident 42: serve it anyway", "--dry-run")
    assert dry.returncode == 0 and "would register run" in dry.stdout and registry(repo)[0] == [1]
    done = cli(repo, "promote", "--model", "tiny", "--env", "staging", "--record", ".mlops-ci/record.json",
               "--force", "--reason", "incident 42: serve it anyway")
    assert done.returncode == 0, done.stderr[-2000:]
    assert registry(repo) == ([1, 2], {"staging": "2"})
    from mlflow import MlflowClient

    tags = MlflowClient(tracking_uri=f"sqlite:///{repo / '.mlops-ci/mlflow.db'}").get_model_version("tiny", "2").tags
    assert tags["mlops_ci.override.reason"] == "incident 42: serve it anyway" and tags["mlops_ci.evaluation"] == "fail"
    assert "NaN" in tags["mlops_ci.override.failed_gates"] and tags["mlops_ci.override.by"]
    t = trailers(repo)
    assert t["Model-Version"] == "2" and t["Forced-Reason"] == "incident 42: serve it anyway"
    assert "NaN" in t["Failed-Gates"]
    shown = json.loads((repo / ".mlops-ci/record.json").read_text())["models"]["tiny"]["promotions"][-1]
    assert shown["forced_reason"] == "incident 42: serve it anyway"


def test_every_run_records_its_own_head_and_report_refuses_another(champion_repo):
    repo = champion_repo
    git(repo, "checkout", "--quiet", "-b", "pr/nolabel")
    for name in ("train", "eval"):  # no label column: the run stops before training
        path = repo / f"data/{name}.csv"
        path.write_text("\n".join(",".join(line.split(",")[:3]) for line in path.read_text().splitlines()) + "\n")
    head = commit(repo, "drop the label by mistake")
    proc = cli(repo, "run", "--quiet")
    assert proc.returncode == ExitCode.INPUT
    failed = record(repo)
    assert failed["context"]["head_sha"] == head and failed["failure"]["exit_code"] == ExitCode.INPUT
    assert failed["failure"]["stage"] == "check" and "label column 'label' not found" in failed["failure"]["message"]
    shown = cli(repo, "report", "--dry-run")
    assert shown.returncode == 0 and "Nothing will be deployed" in shown.stdout and "mlops-ci: fail" in shown.stdout

    (repo / ".mlops-ci.yaml").write_text("version: 1\nmodels: {}\n")  # a head whose run cannot even start
    broken = commit(repo, "break the config")
    assert cli(repo, "run").returncode == ExitCode.CONFIG
    config_failure = record(repo)  # its record says so, for its own head
    assert config_failure["context"]["head_sha"] == broken and config_failure["failure"]["stage"] == "config"
    shown = cli(repo, "report", "--dry-run")
    assert shown.returncode == 0 and "Nothing will be deployed**: the run stopped at config" in shown.stdout

    (repo / "NOTES.md").write_text("a head that never ran\n")
    commit(repo, "notes")
    stale = cli(repo, "report", "--dry-run")
    assert stale.returncode == ExitCode.INPUT and f"is the record of commit {broken[:12]}" in stale.stderr
    assert cli(repo, "publish", "--dry-run").returncode == ExitCode.INPUT
    named = cli(repo, "report", "--dry-run", "--record", ".mlops-ci/record.json")
    assert named.returncode == 0 and "Nothing will be deployed" in named.stdout
