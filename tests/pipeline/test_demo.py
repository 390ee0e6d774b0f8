"""`mlops-ci demo` end to end: git, DVC with a local remote, MLflow on SQLite, torchrun 2-rank gloo."""

from __future__ import annotations

import io
import json

import pytest

from conftest import SHARED_CACHE, git, kserve_errors
from mlops_ci.console import ConsoleProgress
from mlops_ci.demo import run_demo
from mlops_ci.errors import UsageError
from mlops_ci.serving import yamlio

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_loop(tmp_path, monkeypatch):
    # the runtime environment for churn (MLServer + torch) is built once in the tests' shared cache
    monkeypatch.setenv("MLOPS_CI_CACHE_DIR", str(SHARED_CACHE))
    out, err = io.StringIO(), io.StringIO()
    result = run_demo(tmp_path / "demo", out=out, progress=ConsoleProgress(err))
    text, progress = out.getvalue(), err.getvalue()
    assert (result.champion_version, result.candidate_version) == ("1", "2")
    for step in ("1/6 scaffold", "2/6 main", "3/6 pull request", "4/6 PR check", "5/6 merge", "6/6 watch"):
        assert f"✔ {step}" in progress
    assert "epoch 10/10" in progress  # the PR's candidate trained under torchrun with 2 processes

    pr = json.loads((result.repo / ".mlops-ci/pr-record.json").read_text())["models"]["churn"]
    assert pr["results"]["train"]["command"][-3:] == ["--standalone", "--nproc-per-node=2", "train.py"]
    assert pr["results"]["train"]["params"]["world_size"] == "2"
    assert pr["results"]["check"]["status"] == "warn"
    assert {f["column"] for f in pr["results"]["check"]["findings"]} >= {"plan", "monthly_charges"}
    assert pr["results"]["evaluate"]["status"] == "pass" and pr["results"]["evaluate"]["champion"]["version"] == "1"
    assert pr["results"]["register"]["version"] == "2" and pr["results"]["train"]["history"]  # the real curve, from MLflow
    # served by MLServer beside the champion before it was registered: parity, latency, memory, cold start
    served = pr["results"]["serve"]  # a p99 ratio is noisy on a busy runner: it may warn, nothing fails
    assert served["status"] in ("pass", "warn") and not [f for f in served["findings"] if f["status"] == "fail"]
    assert served["parity"]["rows"] == 100 and served["parity"]["mismatches"] == 0
    assert served["champion"]["label"] == "champion v1" and served["candidate"]["latency"]["errors"] == 0
    assert 0 < served["candidate"]["peak_memory_bytes"] < served["memory_limit_bytes"]
    # the merge ships what the pull request showed: v2, found by its fingerprint, not trained again
    merge = json.loads((result.repo / ".mlops-ci/merge-record.json").read_text())["models"]["churn"]
    assert merge["results"]["train"]["reused"]["version"] == "2" and merge["results"]["train"]["run_id"] is None
    assert merge["results"]["register"]["reused"] is True and not result.merge_retrained
    # the merge re-gates the check recorded for v2 against the same champion, under the same settings
    assert merge["results"]["serve"]["status"] == served["status"] and merge["results"]["serve"]["recorded"] is True
    assert merge["results"]["serve"]["candidate"]["label"] == "v2"
    assert merge["promotions"][0]["commit_sha"] == result.gitops_commit

    assert "## ⚠️ mlops-ci: warn" in text and "candidate vs champion v1 (alias `staging`)" in text
    assert "has new categories \\(" in text and "rows\\): 'fiber'" in text  # parentheses escaped for Markdown
    assert "Deployment plan: churn v2 → `staging`" in text
    assert "#### Serving check " in text and "latency in ms by percentile" in text
    # drift charts and the curve, in a palette readable on GitHub's light and dark themes
    assert "```mermaid\n---\nconfig:" in text and "xychart-beta" in text and "Training curve (" in text
    gitops = result.repo / ".mlops-ci" / "gitops.git"
    trailers = git(gitops, "log", "-1", "--format=%(trailers:only,unfold)", result.gitops_commit)
    assert "Model-Version: 2" in trailers and f"MLflow-Run-Id: {pr['results']['train']['run_id']}" in trailers
    isvc = yamlio.load(git(gitops, "show", f"{result.gitops_commit}:environments/staging/churn/inferenceservice.yaml"))
    assert kserve_errors(isvc) == []
    assert isvc["metadata"]["labels"]["mlops-ci.dev/model-version"] == "2"
    assert git(gitops, "log", "--format=%s", "main").splitlines() == ["promote churn v2 to staging",
                                                                      "promote churn v1 to staging"]
    assert "Demo finished in" in text

    # after the merge: a week of staging's traffic in KServe's log layout, monitored against v2
    watched = result.monitor
    assert watched.version == "2" and watched.reference == "stored" and len(watched.windows) == 7
    assert all(w.rows == 300 for w in watched.windows) and watched.traffic.corrupt == 0
    assert watched.windows[0].status != "fail" and watched.windows[-1].status == "fail"
    assert "monthly_charges" in {f.column for f in watched.windows[-1].findings if f.status == "fail"}
    assert "simulated requests, KServe's real log format" in text and "<!-- mlops-ci:monitor model=churn" in text
    assert watched.retrain.action == "opened" and watched.retrain.branch.startswith("mlops-ci/retrain/churn/")
    changed = git(result.repo, "diff", "--name-only", f"main...{watched.retrain.branch}").split()
    assert sorted(changed) == ["data/eval.csv.dvc", "data/train.csv.dvc"]  # the refreshed data, pushed by DVC
    assert not git(result.repo, "status", "--porcelain", "--untracked-files=no").strip()


def test_demo_refuses_to_delete_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="was not created by `mlops-ci demo`"):
        run_demo(tmp_path / "mine", out=io.StringIO(), progress=ConsoleProgress(io.StringIO()))
    assert (tmp_path / "mine" / "thesis.tex").exists()
