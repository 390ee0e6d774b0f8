"""The loop on the tiny project with the real components: git, MLflow on SQLite, torchrun.

Commands run as a user runs them (`python -m mlops_ci ...` in the repository), and every bad
input ends with a one-line error, a non-zero exit, nothing registered and nothing committed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli, commit, git, gitops_commits, one_line_error, registry, run_count, set_params, write_tiny_data
from mlops_ci.errors import ExitCode

pytestmark = pytest.mark.slow


def test_first_run_bootstraps_then_promotion_commits(champion_repo):
    repo = champion_repo
    record = json.loads((repo / ".mlops-ci/record.json").read_text())
    entry = record["models"]["tiny"]
    assert entry["plan"]["reasons"] == ["no base revision to compare with: first run on this branch"]
    assert entry["results"]["check"]["status"] == "skipped"
    assert entry["results"]["train"]["status"] == "succeeded" and entry["results"]["train"]["command"][-3:] == [
        "--standalone", "--nproc-per-node=1", "train.py"]
    assert entry["results"]["evaluate"]["champion_state"] == "none"
    assert entry["results"]["register"]["version"] == "1"
    assert entry["results"]["deployment"]["dry_run"] is True
    assert entry["promotions"][0]["commit_sha"]
    assert registry(repo) == ([1], {"staging": "1"})
    assert gitops_commits(repo) == 1
    report = (repo / ".mlops-ci/report.md").read_text()
    assert "no champion yet (policy: pass)" in report and "Registered as **tiny v1**" in report


def test_pull_request_flow_with_separate_commands(champion_repo):
    repo = champion_repo
    git(repo, "checkout", "--quiet", "-b", "pr/shift")
    write_tiny_data(repo, seed=1, shift=1.0)
    set_params(repo, epochs=200)
    commit(repo, "new data, more epochs")

    check = cli(repo, "check")
    assert check.returncode == 0, check.stdout[-2000:]
    assert "tiny: checks warn" in check.stdout and "column 'x1' drifted" in check.stdout

    dry = cli(repo, "train", "--dry-run")
    assert dry.returncode == 0 and "torch.distributed.run --standalone --nproc-per-node=1 train.py" in dry.stdout
    assert registry(repo)[0] == [1]

    runs = run_count(repo)
    plan = cli(repo, "run", "--dry-run")
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "tiny: would run check, train, evaluate: train data changed: data/train.csv" in plan.stdout
    assert "  train: " in plan.stdout and run_count(repo) == runs

    train = cli(repo, "train")
    assert train.returncode == 0, train.stderr[-2000:]
    assert "tiny: trained in" in train.stdout

    before = (repo / ".mlops-ci/record.json").read_text()
    dry_eval = cli(repo, "evaluate", "--dry-run")
    assert dry_eval.returncode == 0 and "would be registered (nothing was)" in dry_eval.stdout
    assert registry(repo)[0] == [1] and (repo / ".mlops-ci/record.json").read_text() == before

    evaluate = cli(repo, "evaluate")
    assert evaluate.returncode == 0, evaluate.stderr[-2000:]
    assert "registered tiny v2" in evaluate.stdout

    report = cli(repo, "report")
    assert report.returncode == 0
    text = report.stdout
    assert "candidate vs champion v1 (alias `staging`)" in text
    assert "Deployment plan: tiny v2 → `staging`" in text and "+      storageUri:" in text
    assert "data checks" in text.lower() and "`x1`" in text
    assert registry(repo) == ([1, 2], {"staging": "1"})  # the alias moves only on promotion
    assert gitops_commits(repo) == 1

    # a writer's /mlops-ci promote on the pull request: the unmerged head may be promoted, but a
    # record read from a file must match the registry, so an altered one is refused
    unmerged = cli(repo, "promote", "--model", "tiny", "--env", "staging", "--allow-unmerged", "--dry-run")
    assert unmerged.returncode == 0 and "would change 1 file(s)" in unmerged.stdout, unmerged.stderr[-2000:]
    altered = json.loads((repo / ".mlops-ci/record.json").read_text())
    altered["models"]["tiny"]["results"]["register"]["artifact_uri"] = "s3://elsewhere/model"
    (repo.parent / "altered.json").write_text(json.dumps(altered))
    refused = cli(repo, "promote", "--model", "tiny", "--env", "staging", "--allow-unmerged",
                  "--record", str(repo.parent / "altered.json"))
    assert refused.returncode == ExitCode.INPUT and "does not match the registry" in one_line_error(refused)
    assert gitops_commits(repo) == 1

    # on main, before the merge, the record's head is not part of HEAD: refused
    git(repo, "checkout", "--quiet", "main")
    refused = cli(repo, "promote", "--model", "tiny", "--env", "staging")
    assert refused.returncode == ExitCode.INPUT and "which is not merged into main" in one_line_error(refused)
    git(repo, "merge", "--quiet", "--no-ff", "pr/shift", "-m", "merge")
    dry = cli(repo, "promote", "--model", "tiny", "--env", "staging", "--dry-run")
    assert dry.returncode == 0 and "would change 1 file(s)" in dry.stdout and gitops_commits(repo) == 1
    done = cli(repo, "promote", "--model", "tiny", "--env", "staging")
    assert done.returncode == 0, done.stderr[-2000:]
    assert registry(repo) == ([1, 2], {"staging": "2"}) and gitops_commits(repo) == 2
    again = cli(repo, "promote", "--model", "tiny", "--env", "staging")
    assert again.returncode == 0 and "already what staging serves (no commit)" in again.stdout
    assert gitops_commits(repo) == 2


def test_unchanged_model_is_skipped_with_reason(champion_repo):
    repo = champion_repo
    git(repo, "checkout", "--quiet", "-b", "docs")
    (repo / "NOTES.md").write_text("only docs\n")
    commit(repo, "docs")
    proc = cli(repo, "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nothing that affects tiny changed since" in proc.stdout
    assert registry(repo)[0] == [1]


def test_missing_data_file(champion_repo):
    repo = champion_repo
    (repo / "data/eval.csv").unlink()
    proc = cli(repo, "train", "--force")
    assert proc.returncode == ExitCode.INPUT
    assert one_line_error(proc) == "mlops-ci: error: data/eval.csv: data file not found " \
                                   "(check data.train / data.eval in .mlops-ci.yaml, or run `dvc pull`)"
    assert registry(repo) == ([1], {"staging": "1"}) and gitops_commits(repo) == 1


def test_missing_label_column(champion_repo):
    repo = champion_repo
    git(repo, "checkout", "--quiet", "-b", "pr/nolabel")
    for name in ("train", "eval"):
        path = repo / f"data/{name}.csv"
        lines = path.read_text().splitlines()
        path.write_text("\n".join(",".join(line.split(",")[:3]) for line in lines) + "\n")
    commit(repo, "drop the label")
    proc = cli(repo, "run")
    assert proc.returncode == ExitCode.INPUT
    assert "data/train.csv: label column 'label' not found (columns: x1, x2, color)" in one_line_error(proc)
    assert registry(repo) == ([1], {"staging": "1"}) and gitops_commits(repo) == 1


def test_nan_metric_fails_the_gate_and_registers_nothing(champion_repo):
    repo = champion_repo
    git(repo, "checkout", "--quiet", "-b", "pr/broken")
    set_params(repo, broken=True)
    commit(repo, "a model that predicts NaN")
    proc = cli(repo, "run", "--quiet")
    assert proc.returncode == ExitCode.GATE_FAILED, proc.stderr[-2000:]
    line = next(x for x in proc.stderr.splitlines() if x.startswith("mlops-ci: tiny: gates failed"))
    assert "on data/eval.csv" in line and "roc_auc of the candidate is NaN" in line
    report = (repo / ".mlops-ci/report.md").read_text()
    assert "| roc\\_auc ↑ | NaN |" in report and "❌ **Nothing will be deployed**: tiny did not pass its gates" in report
    assert registry(repo) == ([1], {"staging": "1"})
    git(repo, "checkout", "--quiet", "main")
    git(repo, "merge", "--quiet", "--no-ff", "pr/broken", "-m", "merge")
    promote = cli(repo, "promote", "--model", "tiny", "--env", "staging")
    error = one_line_error(promote)  # never registered: only --force --reason registers and promotes it
    assert promote.returncode == ExitCode.GATE_FAILED and "did not pass its gates" in error
    assert "is not registered" in error and "--force --reason" in error
    assert gitops_commits(repo) == 1


def failed_training(repo: Path, **params) -> str:
    """Commit ``params``, train, and return the one error line of the failed training."""
    set_params(repo, **params)
    commit(repo, f"params {params}")
    proc = cli(repo, "train")
    assert proc.returncode == ExitCode.BACKEND, proc.stderr[-2000:]
    assert "✘ training tiny: 1 process (torchrun)" in proc.stderr and "✔ training" not in proc.stderr
    return one_line_error(proc)


def test_nan_training_loss_fails_training(champion_repo):
    repo = champion_repo
    assert "training produced NaN for train_loss" in failed_training(repo, nan_loss=True)
    assert registry(repo)[0] == [1]


def test_crashing_training_script(champion_repo):
    repo = champion_repo
    line = failed_training(repo, crash=True)
    assert "train.py exited with code" in line and "boom: the training script crashed on purpose" in line
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / '.mlops-ci' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("mlops-ci/tiny").experiment_id],
                              order_by=["attributes.start_time DESC"])
    assert runs[0].info.status == "FAILED"
    assert runs[0].data.tags["mlops_ci.head_sha"] == git(repo, "rev-parse", "HEAD")
