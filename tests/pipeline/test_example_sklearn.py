"""examples/housing (scikit-learn, regression) through the real CLI, and the model contract for
scikit-learn classifiers (README, "The model contract").

The example is copied into its own git repository (data committed to git, no DVC), trained on
`main` with no champion, promoted to staging; then a pull request with October's data and
gradient boosting is evaluated against champion v1. (Each `mlops-ci run` trains for real, about
17 s on 2 cores; a second, worse pull request is left to the example's README to keep this file
under a minute.)
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, cli, commit, git

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "housing"
OCTOBER = ("--month", "2026-10", "--seed", "2", "--price-change", "4", "--newer-homes")


def generate(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "generate_data.py", *args], cwd=repo, check=True, capture_output=True)


def set_model(repo: Path, **values) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["model"].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def entry(repo: Path) -> dict:
    return json.loads((repo / ".mlops-ci" / "record.json").read_text())["models"]["housing"]


def by_name(items: list[dict]) -> dict[str, dict]:
    return {m["name"]: m for m in items}


def gates(evaluation: dict) -> dict[tuple[str, str], str]:
    return {(g["metric"], g["kind"]): g["status"] for g in evaluation["gates"]}


@pytest.fixture
def housing_repo(tmp_path) -> Path:
    """examples/housing as its own repository on `main`, September's data committed to git."""
    repo = tmp_path / "housing"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("data", ".mlops-ci", "__pycache__"))
    # the serving check (an MLServer environment with scikit-learn, two servers a run) is the
    # demo's and tests/runtime's to show: off here, as a user may turn it off
    config = repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("    serving:\n", "    serving:\n      check: {enabled: false}\n", 1))
    git(repo, "init", "--quiet", "--initial-branch=main")
    generate(repo)
    commit(repo, "housing model, September's sales")
    return repo


def test_example_config_is_valid(housing_repo):
    proc = cli(housing_repo, "config", "validate")
    assert proc.returncode == 0, proc.stderr
    assert "valid (1 model(s): housing; 1 environment(s): staging)" in proc.stdout


def test_housing_bootstraps_promotes_and_beats_its_champion(housing_repo):
    repo = housing_repo

    # main: no champion yet, the bootstrap policy lets v1 through
    first = cli(repo, "run", "--quiet")
    assert first.returncode == 0, first.stderr[-3000:]
    e = entry(repo)
    assert e["results"]["train"]["status"] == "succeeded" and e["results"]["train"]["command"][-3:] == [
        "--standalone", "--nproc-per-node=1", "train.py"]
    assert e["results"]["train"]["params"]["model.kind"] == "ridge"
    assert {"val_rmse", "val_mae", "val_r2"} <= set(e["results"]["train"]["metrics"])
    ev = e["results"]["evaluate"]
    assert ev["status"] == "pass" and ev["champion_state"] == "none" and ev["rows"] == 1000
    metrics = by_name(ev["metrics"])
    assert list(metrics) == ["rmse", "mae", "r2"]
    assert metrics["r2"]["candidate"] > 0.9 and metrics["rmse"]["higher_is_better"] is False
    # the model mlops-ci scored is the one train.py measured on the same eval file
    assert math.isclose(metrics["rmse"]["candidate"], e["results"]["train"]["metrics"]["val_rmse"], rel_tol=1e-9)
    assert gates(ev) == {("*", "champion"): "pass", ("r2", "min"): "pass",
                         ("r2", "max_regression"): "skipped", ("rmse", "max_regression"): "skipped"}
    assert e["results"]["register"]["version"] == "1"
    report = (repo / ".mlops-ci" / "report.md").read_text()
    assert "no champion yet (policy: pass)" in report and "Registered as **housing v1**" in report

    promote = cli(repo, "promote", "--model", "housing", "--env", "staging")
    assert promote.returncode == 0, promote.stderr[-3000:]
    assert "promoted housing v1 to staging: commit" in promote.stdout
    message = git(repo / ".mlops-ci" / "gitops.git", "log", "-1", "--format=%B", "main")
    assert "Model: housing" in message and "Model-Version: 1" in message and "Environment: staging" in message

    # a pull request: October's sales (prices up 4 %, newer homes) and gradient boosting
    git(repo, "checkout", "--quiet", "-b", "pr/october-boosting")
    generate(repo, *OCTOBER)
    set_model(repo, kind="gradient_boosting")
    commit(repo, "October's sales, gradient boosting")
    better = cli(repo, "run", "--quiet")
    assert better.returncode == 0, better.stderr[-3000:]
    e = entry(repo)
    assert "changed: params.yaml" in e["plan"]["reasons"]
    assert e["results"]["check"]["status"] == "warn"  # the new month drifted, as configured: warn only
    ev = e["results"]["evaluate"]
    assert ev["status"] == "pass" and ev["champion_state"] == "present"
    assert ev["champion"]["version"] == "1" and ev["champion"]["alias"] == "staging"
    metrics = by_name(ev["metrics"])
    assert metrics["rmse"]["candidate"] < metrics["rmse"]["champion"]
    assert metrics["r2"]["candidate"] > metrics["r2"]["champion"] > 0.85
    assert set(gates(ev).values()) == {"pass"}
    assert e["results"]["register"]["version"] == "2"
    report = (repo / ".mlops-ci" / "report.md").read_text()
    assert "candidate vs champion v1 (alias `staging`)" in report and "| r2 ↑ |" in report
    assert "Deployment plan: housing v2 → `staging`" in report


def test_sklearn_classifier_is_scored_as_a_probability_only_with_predict_proba(tmp_path, monkeypatch):
    """What README's contract says about scikit-learn classifiers, against mlflow as installed."""
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    from mlops_ci.backends.tracking.mlflow import MlflowTracking
    from mlops_ci.metrics import METRICS

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = MlflowTracking(uri, artifact_root=(tmp_path / "artifacts").as_uri())
    experiment_id = tracking.experiment("mlops-ci/classifier")
    run_id = tracking.start_run(experiment_id, run_name="classifier", tags={})
    # what a training script receives from mlops-ci
    for key, value in {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_ID": experiment_id,
                       "MLFLOW_RUN_ID": run_id}.items():
        monkeypatch.setenv(key, value)
    assert mlflow.get_tracking_uri() == uri, "another test set mlflow's tracking URI for the process"

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400)})
    y = (rng.uniform(size=400) < 1 / (1 + np.exp(-(2 * frame.x1 - frame.x2)))).astype(int)
    clf = LogisticRegression().fit(frame, y)
    requirements = ["scikit-learn"]

    with mlflow.start_run() as run:  # resumes MLFLOW_RUN_ID
        assert run.info.run_id == run_id
        labels = mlflow.sklearn.log_model(clf, name="model", pip_requirements=requirements)
        proba = mlflow.sklearn.log_model(clf, name="model", pip_requirements=requirements,
                                         pyfunc_predict_fn="predict_proba")
    # logged outside start_run, a model belongs to no run (mlflow 3): mlops-ci would not find it
    orphan = mlflow.sklearn.log_model(clf, name="model", pip_requirements=requirements,
                                      pyfunc_predict_fn="predict_proba")
    assert orphan.run_id is None
    assert tracking.logged_model_uri(run_id, experiment_id) == proba.model_uri

    table = METRICS["binary_classification"]
    scores = tracking.predict(proba.model_uri, frame)
    assert scores.shape == (400,) and np.allclose(scores, clf.predict_proba(frame)[:, 1])
    auc = table["roc_auc"].fn(y, scores, 0.5)

    # without pyfunc_predict_fn: labels, silently taken for probabilities
    hard = tracking.predict(labels.model_uri, frame)
    assert set(np.unique(hard)) == {0.0, 1.0}
    error_rate = float(np.mean(hard != y))
    assert 0 < error_rate < 0.5
    assert table["roc_auc"].fn(y, hard, 0.5) < auc
    assert table["log_loss"].fn(y, hard, 0.5) == pytest.approx(-math.log(1e-15) * error_rate, rel=1e-3)
    assert table["log_loss"].fn(y, scores, 0.5) < 1
    # the thresholded metrics agree: predict() is predict_proba >= 0.5
    assert table["accuracy"].fn(y, hard, 0.5) == table["accuracy"].fn(y, scores, 0.5)
