"""Training on Argo through `mlops-ci train --backend argo`, against the local Argo server.

The server (tests/servers/argo.py, a test fixture, not Argo) validates every Workflow against
the upstream schemas, resolves the real templates in argo/ and runs them as local processes:
the clone of the repository at the head SHA, torchrun, the result file as the output
parameter. The tiny project trains in a second, so each test runs real training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from events import pull_request_event
from servers.argo import ArgoServer

from conftest import ROOT, cli, commit, git
from mlops_ci.records import load_record

CLONE_URL = "https://git.example/acme/tiny.git"
IMAGE = "registry.example/acme/tiny@sha256:" + "ab" * 32
TOKEN = "argo-test-token-0123"
NS = "ml"


@pytest.fixture
def argo(tiny_repo):
    with ArgoServer(token=TOKEN, repos={CLONE_URL: tiny_repo}, namespace=NS) as srv:
        srv.load_templates(ROOT / "argo")
        config = tiny_repo / ".mlops-ci.yaml"
        config.write_text(config.read_text().replace("      timeout_minutes: 5\n", f"""      timeout_minutes: 5
      backend: argo
      argo:
        server_url: {srv.url}
        namespace: {NS}
        image: {IMAGE}
        repo: {CLONE_URL}
        gpus_per_node: 0
"""))
        commit(tiny_repo, "train on Argo")
        yield srv, tiny_repo


def pr_env(repo: Path, tmp_path: Path, number: int = 5) -> dict[str, str]:
    head = git(repo, "rev-parse", "HEAD")
    payload = pull_request_event("synchronize", number=number, head_sha=head, base_sha=head)
    path = tmp_path / f"event-{head[:7]}.json"
    path.write_text(json.dumps(payload))
    return {"ARGO_TOKEN": TOKEN, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(path), "GITHUB_REPOSITORY": payload["repository"]["full_name"],
            "GITHUB_SHA": head, "GITHUB_RUN_ID": "9"}


def test_dry_run_shows_the_workflow_and_submits_nothing(argo):
    srv, repo = argo
    proc = cli(repo, "train", "--force", "--dry-run", env={"ARGO_TOKEN": TOKEN})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "argo submit -n ml --from workflowtemplate/mlops-ci-train-torchrun" in proc.stdout
    assert f"-p revision={git(repo, 'rev-parse', 'HEAD')}" in proc.stdout and f"-p image={IMAGE}" in proc.stdout
    assert srv.workflows(NS) == []


def test_submit_watch_outputs_report_and_a_rerun_adopts(argo, tmp_path):
    srv, repo = argo
    env = pr_env(repo, tmp_path)
    proc = cli(repo, "train", "--force", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wf] = srv.workflows(NS)
    name = wf["metadata"]["name"]
    assert wf["status"]["phase"] == "Succeeded"
    assert wf["metadata"]["labels"]["mlops-ci.dev/pr"] == "5"
    assert "train_loss" in proc.stderr  # the pod's log, folded into the job's log
    t = load_record(repo / ".mlops-ci/record.json").model("tiny").training
    assert (t.status, t.backend, t.workflow) == ("succeeded", "argo", name)
    assert t.model_uri and "train_loss" in t.metrics  # read from the Workflow's `result` output

    report = cli(repo, "report")
    assert f"Argo workflow `{name}`" in report.stdout or f"Argo workflow [{name}]" in report.stdout

    again = cli(repo, "train", "--force", env=env)  # the job is re-run: same commit, same Workflow
    assert again.returncode == 0, again.stderr[-3000:]
    assert "adopting it instead of submitting a duplicate" in again.stderr
    assert len(srv.workflows(NS)) == 1
    t2 = load_record(repo / ".mlops-ci/record.json").model("tiny").training
    assert t2.status == "succeeded" and t2.run_id == t.run_id  # the adopted run's MLflow run


def test_a_newer_push_stops_the_older_run_of_the_pull_request(argo, tmp_path):
    srv, repo = argo
    train = repo / "train.py"
    original = train.read_text()
    train.write_text("import time\ntime.sleep(120)\n" + original)
    commit(repo, "a slow head")
    old = cli(repo, "train", "--force", "--dry-run", env=pr_env(repo, tmp_path))
    old_name = old.stdout.split("--name ")[1].split()[0]
    # the older head's run is submitted (by an earlier job) and still running
    from mlops_ci.backends.argo.server import ArgoServerTransport

    argv = old.stdout.split("argo submit", 1)[1].split()
    params = [argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-p"]
    labels = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-l")
    ArgoServerTransport(srv.url, NS, token=TOKEN).create({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": old_name, "namespace": NS, "labels": labels},
        "spec": {"workflowTemplateRef": {"name": "mlops-ci-train-torchrun"},
                 "arguments": {"parameters": [{"name": k, "value": v} for k, v in params]}}})
    srv.wait(NS, old_name, phase=("Running",), timeout=30)

    train.write_text(original)
    commit(repo, "the newer head")
    proc = cli(repo, "train", "--force", env=pr_env(repo, tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"stopped {old_name}: superseded by" in proc.stderr
    stopped = srv.workflow(NS, old_name)
    assert stopped["status"]["phase"] == "Failed" and "Stop" in stopped["status"]["message"]
    assert not srv.processes()


def test_a_failed_run_reports_why(argo, tmp_path):
    srv, repo = argo
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "crash: true\n")
    commit(repo, "crash on purpose")
    proc = cli(repo, "train", "--force", env=pr_env(repo, tmp_path))
    assert proc.returncode == 5, proc.stderr[-3000:]
    assert "boom: the training script crashed on purpose" in proc.stderr
    t = load_record(repo / ".mlops-ci/record.json").model("tiny").training
    assert t.status == "failed" and "Argo Workflow" in t.error and "failed" in t.error
    again = cli(repo, "train", "--force", env=pr_env(repo, tmp_path))  # a re-run adopts the failed run
    assert again.returncode == 5 and "argo retry -n ml" in again.stderr, again.stderr[-3000:]
    assert len(srv.workflows(NS)) == 1
