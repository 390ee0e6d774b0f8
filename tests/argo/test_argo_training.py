"""Training on Argo through `mlops-ci train --backend argo`, against the local Argo server.

The server (tests/servers/argo.py, a test fixture, not Argo) validates every Workflow against
the upstream schemas, resolves the real templates in argo/ and runs them as local processes:
the clone of the repository at the head SHA, torchrun, the result file as the output
parameter. The tiny project trains in a second, so each test runs real training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from events import pull_request_event, validate
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


def pr_env(repo: Path, tmp_path: Path, number: int = 5, action: str = "synchronize") -> dict[str, str]:
    head = git(repo, "rev-parse", "HEAD")
    payload = pull_request_event("synchronize", number=number, head_sha=head, base_sha=head)
    if action == "closed":  # the pull request as GitHub sends it once closed (not merged)
        payload = {k: v for k, v in payload.items() if k not in ("before", "after")} | {"action": "closed"}
        payload["pull_request"] |= {"state": "closed", "closed_at": "2024-05-02T10:00:00Z"}
        validate("pull_request$closed", payload)
    path = tmp_path / f"event-{number}-{action}-{head[:7]}.json"
    path.write_text(json.dumps(payload))
    return {"ARGO_TOKEN": TOKEN, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(path), "GITHUB_REPOSITORY": payload["repository"]["full_name"],
            "GITHUB_SHA": head, "GITHUB_RUN_ID": "9"}


def submit_by_hand(srv: ArgoServer, repo: Path, tmp_path: Path, number: int = 5) -> str:
    """Submit the Workflow `mlops-ci train` would submit for PR ``number`` at HEAD, as an earlier
    job did, and wait until it runs; its name."""
    from mlops_ci.backends.argo.server import ArgoServerTransport

    dry = cli(repo, "train", "--force", "--dry-run", env=pr_env(repo, tmp_path, number))
    assert dry.returncode == 0, dry.stderr[-2000:]
    name = dry.stdout.split("--name ")[1].split()[0]
    argv = dry.stdout.split("argo submit", 1)[1].split()
    params = [argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-p"]
    labels = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-l")
    ArgoServerTransport(srv.url, NS, token=TOKEN).create({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"workflowTemplateRef": {"name": "mlops-ci-train-torchrun"},
                 "arguments": {"parameters": [{"name": k, "value": v} for k, v in params]}}})
    srv.wait(NS, name, phase=("Running",), timeout=30)
    return name


def processes(srv: ArgoServer, expected: int, timeout: float = 30) -> int:
    """How many container processes run, once that is ``expected`` (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while len(srv.processes()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(srv.processes())


def slow_head(repo: Path) -> str:
    """Commit a head whose training sleeps two minutes first; the original train.py."""
    train = repo / "train.py"
    original = train.read_text()
    train.write_text("import time\ntime.sleep(120)\n" + original)
    commit(repo, "a slow head")
    return original


def test_dry_run_shows_the_workflow_and_submits_nothing(argo):
    srv, repo = argo
    proc = cli(repo, "train", "--force", "--dry-run", env={"ARGO_TOKEN": TOKEN})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "argo submit -n ml --from workflowtemplate/mlops-ci-train-torchrun" in proc.stdout
    assert f"-p revision={git(repo, 'rev-parse', 'HEAD')}" in proc.stdout and f"-p image={IMAGE}" in proc.stdout
    assert srv.workflows(NS) == []


def test_submit_watch_outputs_report_and_a_rerun_adopts(argo, tmp_path):
    srv, repo = argo
    config = repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("      backend: argo\n", """      args: ["--note", "it's $(HOME)"]
      env: {TINY_NOTE: "{{one}} 'pod'"}
      backend: argo
"""))
    train = repo / "train.py"
    train.write_text("import os, sys\nprint('script argv', sys.argv[1:], os.environ['TINY_NOTE'], flush=True)\n"
                     + train.read_text())
    commit(repo, "train.args and train.env")
    env = pr_env(repo, tmp_path)
    proc = cli(repo, "train", "--force", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wf] = srv.workflows(NS)
    name = wf["metadata"]["name"]
    assert wf["status"]["phase"] == "Succeeded"
    assert "script argv ['--note', \"it's $(HOME)\"] {{one}} 'pod'" in proc.stderr  # through the launcher
    assert wf["metadata"]["labels"]["mlops-ci.dev/pr"] == "5"
    assert "train_loss" in proc.stderr  # the pod's log, folded into the job's log
    t = load_record(repo / ".mlops-ci/record.json").model("tiny").training
    assert (t.status, t.backend, t.workflow) == ("succeeded", "argo", name)
    assert t.model_uri and "train_loss" in t.metrics  # read from the Workflow's `result` output
    assert [set(h) for h in t.history] == [{"step", "train_loss"}]  # the run's metric history, from MLflow

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
    original = slow_head(repo)
    old_name = submit_by_hand(srv, repo, tmp_path)  # the older head's run, still running

    (repo / "train.py").write_text(original)
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


def test_closing_the_pull_request_stops_its_runs_and_no_others(argo, tmp_path):
    srv, repo = argo
    slow_head(repo)
    mine, other = submit_by_hand(srv, repo, tmp_path, 5), submit_by_hand(srv, repo, tmp_path, 6)
    assert processes(srv, 2) == 2  # both torchruns started

    # a workflow wired to the wrong event type cannot stop what its pull request just started
    wrong = cli(repo, "train", "--stop", env=pr_env(repo, tmp_path, 5, "synchronize"))
    assert wrong.returncode == 2 and "not 'closed'" in wrong.stderr, wrong.stderr[-2000:]

    dry = cli(repo, "train", "--stop", "--dry-run", env=pr_env(repo, tmp_path, 5, "closed"))
    assert dry.returncode == 0, dry.stderr[-2000:]
    head = git(repo, "rev-parse", "HEAD")
    assert dry.stdout.splitlines() == [f"would stop {NS}/{mine} (tiny at {head[:12]}, Running)"]
    assert srv.workflow(NS, mine)["status"]["phase"] == "Running" and processes(srv, 2) == 2

    proc = cli(repo, "train", "--stop", env=pr_env(repo, tmp_path, 5, "closed"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"stopped {NS}/{mine} ")
    assert srv.requests("PUT", f"/{mine}/stop") and not srv.requests("DELETE"), "stopped, not deleted"
    stopped = srv.wait(NS, mine, timeout=30)["status"]
    assert stopped["phase"] == "Failed" and stopped["message"] == "Stopped with strategy 'Stop'"
    assert srv.workflow(NS, other)["status"]["phase"] == "Running" and processes(srv, 1) == 1

    again = cli(repo, "train", "--stop", env=pr_env(repo, tmp_path, 5, "closed"))  # the job is re-run
    assert again.returncode == 0 and "no training Workflow of acme/churn PR #5 is running" in again.stdout

    cli(repo, "train", "--stop", env=pr_env(repo, tmp_path, 6, "closed"))
    assert srv.wait(NS, other, timeout=30)["status"]["phase"] == "Failed"
    assert processes(srv, 0) == 0


MULTI_NODE_TRAIN = '''\
"""The tiny model on two nodes: each rank fits its share of the rows, the weights and the loss
are averaged over the ranks (gloo), rank 0 logs to MLflow and finish() writes the result."""
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mlops_ci import training

HERE = Path(__file__).resolve().parent
dist = training.setup(seed=0)
print(f"rank {dist.rank} of {dist.world_size} on node {os.environ['GROUP_RANK']}: argv {sys.argv[1:]}, "
      f"note {os.environ.get('TINY_NOTE')!r}", flush=True)
params = yaml.safe_load((HERE / "params.yaml").read_text())
frame = pd.read_csv(HERE / "data" / "train.csv").iloc[dist.rank::dist.world_size]
X, y = frame[["x1", "x2"]].to_numpy(float), frame["label"].to_numpy(float)
w, b = np.zeros(2), 0.0
for _ in range(params["epochs"]):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    w -= params["lr"] * X.T @ (p - y) / len(y)
    b -= params["lr"] * (p - y).mean()
w, b = np.array([dist.mean(v) for v in w]), dist.mean(b)
p = 1 / (1 + np.exp(-(X @ w + b)))
loss = dist.mean(float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))))
print(f"train_loss {loss:.4f}", flush=True)
model_uri = None
with training.tracked_run(dist) as run:
    if run is not None:
        import mlflow

        mlflow.log_metric("train_loss", loss)
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "weights.json"
            weights.write_text(json.dumps({"features": ["x1", "x2"], "w": w.tolist(), "b": b, "broken": False}))
            model_uri = mlflow.pyfunc.log_model(name="model", python_model=str(HERE / "tiny_model.py"),
                                                artifacts={"weights": str(weights)},
                                                pip_requirements=["numpy", "pandas"]).model_uri
    training.finish(dist, model_uri=model_uri, metrics={"train_loss": loss}, steps=params["epochs"])
'''


def test_two_nodes_train_as_a_jobset_and_the_record_holds_rank_zeros_result(argo, tmp_path):
    srv, repo = argo
    config = repo / ".mlops-ci.yaml"
    text = config.read_text()
    text = text.replace("      backend: argo\n", """      args: ["--note", "it's {{workflow.name}} $(HOME)"]
      env: {TINY_NOTE: "two 'nodes'"}
      backend: argo
""").replace("        gpus_per_node: 0\n", f"""        gpus_per_node: 0
        nodes: 2
        checkpoint_uri: file://{tmp_path}/checkpoints
""")
    config.write_text(text)
    (repo / "train.py").write_text(MULTI_NODE_TRAIN)
    commit(repo, "train on two nodes")

    proc = cli(repo, "train", "--force", env=pr_env(repo, tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wf] = srv.workflows(NS)
    name = wf["metadata"]["name"]
    assert wf["spec"]["workflowTemplateRef"]["name"] == "mlops-ci-train-jobset"
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    steps = {n["displayName"]: n["phase"] for n in wf["status"]["nodes"].values()}
    assert steps["train"] == steps["result"] == "Succeeded"

    # two pods, one per node, joined one process group through the c10d rendezvous at rank 0
    [jobset] = srv.jobsets(NS)
    assert jobset["metadata"]["name"] == name and jobset["status"]["terminalState"] == "Completed"
    logs = {pod: srv.pod_log(NS, pod) for pod in srv.pods(NS) if pod.startswith(f"{name}-node-")}
    assert len(logs) == 2
    argv = ["--note", "it's {{workflow.name}} $(HOME)"]
    for rank in (0, 1):
        assert sum(f"rank {rank} of 2 on node {rank}: argv {argv}, note \"two 'nodes'\"" in log
                   for log in logs.values()) == 1, logs

    # the record holds what rank 0 wrote, as the Workflow's result step read it back
    result = json.loads(wf["status"]["outputs"]["parameters"][0]["value"])
    assert result == json.loads((tmp_path / "checkpoints" / "tiny" / name / "result.json").read_text())
    t = load_record(repo / ".mlops-ci/record.json").model("tiny").training
    assert (t.status, t.backend, t.workflow) == ("succeeded", "argo", name)
    assert t.run_id and t.run_id == result["run_id"]
    assert t.model_uri and t.model_uri == result["model_uri"]
    assert t.metrics["train_loss"] == pytest.approx(result["metrics"]["train_loss"])


def test_stop_refuses_what_is_not_a_closed_pull_request(tiny_repo):
    proc = cli(tiny_repo, "train", "--pr", "3")
    assert proc.returncode == 2 and "--pr goes with --stop" in proc.stderr
    proc = cli(tiny_repo, "train", "--stop")  # outside Actions nothing names a pull request
    assert proc.returncode == 2 and "--stop needs --pr N" in proc.stderr
    proc = cli(tiny_repo, "train", "--stop", "--force", "--pr", "3")
    assert proc.returncode == 2 and "--stop takes none of" in proc.stderr
