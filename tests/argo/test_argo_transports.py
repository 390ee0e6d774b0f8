"""The two Argo transports (mlops_ci/backends/argo/server.py and kube.py) against the local Argo
server (tests/servers/argo.py), each test run once per transport: create, watch to the end with
outputs and logs, duplicates, gets with fields, lists by labels, stop, a failing command, faults
ridden out by the watcher, retryable and final errors, and the server's validation messages."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass

import pytest
from servers.argo import ArgoServer

from mlops_ci.backends.argo.base import AlreadyExists, ArgoTransport, TransportError
from mlops_ci.backends.argo.kube import KubernetesTransport
from mlops_ci.backends.argo.server import ArgoServerTransport
from mlops_ci.backends.argo.watch import watch

NS = "ml"
TOKEN = "argo-token"
REPO_URL = "https://git.example/acme/tiny.git"
LABELS = {"mlops-ci.dev/model": "tiny", "mlops-ci.dev/run": "r1"}

SCRIPT = """\
import json, os, sys, time
print(f"hello from rank {os.environ['RANK']}: {os.environ['GREETING']}", flush=True)
time.sleep(float(os.environ["SLEEP"]))
path = os.environ["MLOPS_CI_RESULT"]
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump({"greeting": os.environ["GREETING"], "world": int(os.environ["WORLD_SIZE"])}, f)
sys.exit(int(os.environ["EXIT"]))
"""


def template() -> dict:
    """A container template: the script from git, run by torchrun, its result file an output."""
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "tiny"},
        "spec": {
            "entrypoint": "run", "activeDeadlineSeconds": 120,
            "arguments": {"parameters": [{"name": "revision"}, {"name": "greeting", "value": "hi"},
                                         {"name": "sleep", "value": "0"}, {"name": "exit", "value": "0"}]},
            "templates": [{
                "name": "run",
                "inputs": {"artifacts": [{"name": "source", "path": "/workspace/src", "git": {
                    "repo": REPO_URL, "revision": "{{workflow.parameters.revision}}"}}]},
                "outputs": {"parameters": [{"name": "result", "valueFrom": {"path": "/tmp/mlops-ci/result.json"}}]},
                "container": {
                    "image": "python:3.11", "workingDir": "/workspace/src",
                    "command": ["torchrun"], "args": ["--standalone", "--nproc-per-node", "1", "tiny.py"],
                    "env": [{"name": "MLOPS_CI_RESULT", "value": "/tmp/mlops-ci/result.json"},
                            {"name": "GREETING", "value": "{{workflow.parameters.greeting}}"},
                            {"name": "SLEEP", "value": "{{workflow.parameters.sleep}}"},
                            {"name": "EXIT", "value": "{{workflow.parameters.exit}}"},
                            {"name": "OMP_NUM_THREADS", "value": "1"}]}}]}}


def quick_template() -> dict:
    """No torchrun, no clone: for the tests that only need a Workflow to exist."""
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "quick"},
            "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {
                "image": "python", "command": ["python", "-c", "print('quick', flush=True)"]}}]}}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[str, str]:
    repo = tmp_path_factory.mktemp("tiny")
    (repo / "tiny.py").write_text(SCRIPT)
    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1"}
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, text=True,  # noqa: E731
                                    env=env)
    run("init", "--quiet", "--initial-branch=main")
    run("add", "--all")
    run("commit", "--quiet", "-m", "tiny")
    return str(repo), run("rev-parse", "HEAD").stdout.strip()


@dataclass
class Ctx:
    srv: ArgoServer
    transport: ArgoTransport
    revision: str

    @property
    def kind(self) -> str:
        return self.transport.name

    def one(self, name: str) -> str:
        """A regex matching the GET of one Workflow on this transport's face."""
        if self.kind == "server":
            return rf"^GET /api/v1/workflows/{NS}/{name}$"
        return rf"^GET /apis/argoproj\.io/v1alpha1/namespaces/{NS}/workflows/{name}$"

    def create_path(self) -> str:
        if self.kind == "server":
            return rf"^POST /api/v1/workflows/{NS}$"
        return rf"^POST /apis/argoproj\.io/v1alpha1/namespaces/{NS}/workflows$"

    def make(self, token: str = TOKEN) -> ArgoTransport:
        return make_transport(self.kind, self.srv, token)

    def workflow(self, name: str, labels: dict | None = None, template: str = "tiny", **params: str) -> dict:
        if template == "tiny":
            params = {"revision": self.revision, **params}
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"name": name, "labels": dict(labels or LABELS)},
                "spec": {"workflowTemplateRef": {"name": template},
                         "arguments": {"parameters": [{"name": k, "value": v} for k, v in params.items()]}}}


def make_transport(kind: str, srv: ArgoServer, token: str = TOKEN) -> ArgoTransport:
    if kind == "server":
        return ArgoServerTransport(srv.url, NS, token=token, env={})
    return KubernetesTransport(NS, host=srv.k8s_url, token=token, env={})


@pytest.fixture(params=["server", "kubernetes"])
def ctx(request, source):
    with ArgoServer(token=TOKEN, repos={REPO_URL: source[0]}, namespace=NS) as srv:
        srv.add_template(template())
        srv.add_template(quick_template())
        yield Ctx(srv, make_transport(request.param, srv), source[1])
        # nothing left running when the server goes (its `with` then asserts no errors)
        for wf in srv.workflows(NS):
            srv.wait(NS, wf["metadata"]["name"], timeout=30)


def no_processes(srv: ArgoServer, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while srv.processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    return srv.processes() == []


def test_create_watch_outputs_and_logs(ctx):
    created = ctx.transport.create(ctx.workflow("ok-1", greeting="hello there"))
    assert created["metadata"]["name"] == "ok-1" and created["metadata"]["uid"]
    changes = []
    result = watch(ctx.transport, "ok-1", deadline_s=60, interval_s=0.1, max_interval_s=0.5,
                   on_change=lambda phase, message: changes.append(phase))
    assert result.phase == "Succeeded" and result.succeeded, result
    assert json.loads(result.outputs["result"]) == {"greeting": "hello there", "world": 1}
    assert result.errors == 0 and result.polls >= 1 and changes[-1] == "Succeeded"
    assert result.started_at and result.finished_at and result.started_at <= result.finished_at
    lines = list(ctx.transport.logs("ok-1"))
    assert "hello from rank 0: hello there" in lines, lines
    # the watcher asked for the status fields only, on every poll
    if ctx.kind == "server":
        polls = ctx.srv.requests("GET", r"/workflows/ml/ok-1$")
        assert polls and all("status.phase" in r.query.get("fields", "") for r in polls)


def test_a_duplicate_name_is_already_exists(ctx):
    ctx.transport.create(ctx.workflow("dup", template="quick"))
    with pytest.raises(AlreadyExists) as err:
        ctx.transport.create(ctx.workflow("dup", labels={"other": "labels"}, template="quick"))
    assert err.value.status == 409 and not err.value.retryable and "already exists" in err.value.message
    got = ctx.transport.get("dup")
    assert got["metadata"]["labels"].items() >= LABELS.items() and "other" not in got["metadata"]["labels"]
    assert len(ctx.srv.workflows(NS)) == 1


def test_get_with_fields_and_a_missing_name(ctx):
    ctx.transport.create(ctx.workflow("fields", template="quick"))
    ctx.srv.wait(NS, "fields", phase="Succeeded", timeout=30)
    got = ctx.transport.get("fields", fields=("metadata.name", "metadata.labels", "status.phase"))
    assert got == {"metadata": {"name": "fields", "labels": got["metadata"]["labels"]},
                   "status": {"phase": "Succeeded"}}
    assert got["metadata"]["labels"].items() >= LABELS.items()
    full = ctx.transport.get("fields")
    assert full["spec"]["workflowTemplateRef"] == {"name": "quick"} and full["status"]["nodes"]
    assert ctx.transport.get("nope") is None
    assert ctx.transport.get("nope", fields=("status.phase",)) is None


def test_list_by_labels(ctx):
    for name, run in (("l-1", "r1"), ("l-2", "r1"), ("l-3", "r2")):
        ctx.transport.create(ctx.workflow(name, labels={**LABELS, "mlops-ci.dev/run": run}, template="quick"))
    ctx.transport.create(ctx.workflow("l-4", labels={"mlops-ci.dev/model": "other"}, template="quick"))
    found = ctx.transport.list({"mlops-ci.dev/run": "r1", "mlops-ci.dev/model": "tiny"})
    assert sorted(w["metadata"]["name"] for w in found) == ["l-1", "l-2"]
    assert all(set(w) <= {"metadata", "status"} and w["metadata"]["labels"]["mlops-ci.dev/run"] == "r1"
               for w in found)
    assert [w["metadata"]["name"] for w in ctx.transport.list({"mlops-ci.dev/run": "r2"})] == ["l-3"]
    assert sorted(w["metadata"]["name"] for w in ctx.transport.list({"mlops-ci.dev/model": "tiny"})) \
        == ["l-1", "l-2", "l-3"]
    assert ctx.transport.list({"mlops-ci.dev/model": "nothing"}) == []


def test_stop_fails_the_workflow_and_kills_its_processes(ctx):
    ctx.transport.create(ctx.workflow("stopped", sleep="60"))
    ctx.srv.wait(NS, "stopped", phase="Running", timeout=20)
    deadline = time.monotonic() + 20
    while not any("hello from rank 0" in line for line in ctx.transport.logs("stopped")):
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.1)
    assert ctx.srv.processes()
    ctx.transport.stop("stopped", message="superseded by a newer push")
    result = watch(ctx.transport, "stopped", deadline_s=30, interval_s=0.1, max_interval_s=0.5)
    assert result.phase == "Failed" and result.message == "Stopped with strategy 'Stop'", result
    assert "result" not in result.outputs
    assert no_processes(ctx.srv)
    if ctx.kind == "kubernetes":
        [patch] = ctx.srv.requests("PATCH", "/workflows/stopped$")
        assert patch.body == {"spec": {"shutdown": "Stop"}}
    else:
        [put] = ctx.srv.requests("PUT", "/workflows/ml/stopped/stop$")
        assert put.body["name"] == "stopped" and put.body["message"] == "superseded by a newer push"
    # stopping it again: the Argo Server refuses (412, final); a merge patch just applies
    if ctx.kind == "server":
        with pytest.raises(TransportError) as err:
            ctx.transport.stop("stopped")
        assert err.value.status == 412 and not err.value.retryable
    else:
        ctx.transport.stop("stopped")
        assert ctx.srv.workflow(NS, "stopped")["status"]["phase"] == "Failed"


def test_closing_a_pull_request_stops_its_running_workflows_only(ctx):
    """ArgoTrainer.stop_pull_request (what `mlops-ci train --stop` runs) over both transports."""
    from mlops_ci.backends.trainers.argo import ArgoTrainer
    from mlops_ci.config.schema import Config

    def labels(pr: str, sha: str, repository: str = "acme.tiny") -> dict[str, str]:
        return {"mlops-ci.dev/repository": repository, "mlops-ci.dev/pr": pr, "mlops-ci.dev/model": "tiny",
                "mlops-ci.dev/head-sha": sha}

    ctx.transport.create(ctx.workflow("pr5-done", labels("5", "b" * 40), template="quick"))
    ctx.srv.wait(NS, "pr5-done", phase="Succeeded", timeout=30)
    running = {"pr5": labels("5", "a" * 40), "pr6": labels("6", "a" * 40), "other-repo": labels("5", "a" * 40, "x.y")}
    for name, wf_labels in running.items():
        ctx.transport.create(ctx.workflow(name, wf_labels, sleep="60"))
    for name in running:
        ctx.srv.wait(NS, name, phase="Running", timeout=30)
    config = Config.model_validate({
        "version": 1, "environments": {"staging": {"namespace": "tiny-staging"}},
        "models": {"tiny": {"data": {"train": "a.csv", "eval": "b.csv", "label": "y"}, "train": {
            "backend": "argo", "argo": {"image": "tiny@sha256:" + "0" * 64, "namespace": NS, "transport": ctx.kind,
                                        "server_url": ctx.srv.url}}}}})
    trainer = ArgoTrainer(ctx.transport, env={})
    dry = trainer.stop_pull_request(config, ["tiny"], repository="acme/tiny", pr=5, reason="closed", dry_run=True)
    assert [(r.name, r.phase, r.stopped) for r in dry] == [("pr5", "Running", False)]
    assert ctx.srv.workflow(NS, "pr5")["status"]["phase"] == "Running"

    done = trainer.stop_pull_request(config, ["tiny"], repository="acme/tiny", pr=5, reason="PR #5 was closed")
    assert [(r.name, r.namespace, r.model, r.head_sha, r.stopped) for r in done] == [
        ("pr5", NS, "tiny", "a" * 40, True)]
    assert ctx.srv.wait(NS, "pr5", timeout=30)["status"]["message"] == "Stopped with strategy 'Stop'"
    assert all(ctx.srv.workflow(NS, n)["status"]["phase"] == "Running" for n in ("pr6", "other-repo"))
    if ctx.kind == "server":  # a run that ends between the list and the stop is not an error
        assert ArgoTrainer._stop(ctx.transport, "pr5-done", "closed") is False
    for name in ("pr6", "other-repo"):
        ctx.transport.stop(name)
    assert no_processes(ctx.srv, timeout=30)


def test_a_failing_command_fails_with_its_exit_code(ctx):
    ctx.transport.create(ctx.workflow("bad", exit="3"))
    result = watch(ctx.transport, "bad", deadline_s=60, interval_s=0.1, max_interval_s=0.5)
    assert result.phase == "Failed" and "exit code" in result.message, result
    assert any("hello from rank 0" in line for line in ctx.transport.logs("bad"))


@pytest.mark.parametrize("fault", ["drop", "restart"])
def test_the_watch_rides_out_a_dropped_connection_and_a_restart(ctx, fault):
    ctx.transport.create(ctx.workflow("bumpy", sleep="1.5"))
    ctx.srv.wait(NS, "bumpy", phase="Running", timeout=20)
    injected = ctx.srv.inject(fault, match=ctx.one("bumpy"), times=2, down=0.5)
    result = watch(ctx.transport, "bumpy", deadline_s=60, interval_s=0.1, max_interval_s=0.5)
    assert result.phase == "Succeeded", result
    assert json.loads(result.outputs["result"])["world"] == 1
    assert injected.hits >= 1 and result.errors >= 1, (injected, result)


def test_a_503_on_create_is_retryable(ctx):
    ctx.srv.inject("status", match=ctx.create_path(), status=503)
    with pytest.raises(TransportError) as err:
        ctx.transport.create(ctx.workflow("busy", template="quick"))
    assert err.value.status == 503 and err.value.retryable and not isinstance(err.value, AlreadyExists)
    assert ctx.srv.workflows(NS) == []
    ctx.transport.create(ctx.workflow("busy", template="quick"))  # the retry goes through
    assert [w["metadata"]["name"] for w in ctx.srv.workflows(NS)] == ["busy"]


def test_a_wrong_token_is_final_with_a_hint(ctx):
    wrong = ctx.make("wrong-token")
    for call in (lambda: wrong.create(ctx.workflow("nope", template="quick")), lambda: wrong.get("nope"),
                 lambda: wrong.list(LABELS)):
        with pytest.raises(TransportError) as err:
            call()
        assert err.value.status == 401 and not err.value.retryable, err.value
        assert "token" in (err.value.hint or "").lower()
        assert "wrong-token" not in str(err.value)
    assert ctx.srv.workflows(NS) == []


def test_an_invalid_workflow_is_refused_with_the_servers_message(ctx):
    wf = ctx.workflow("invalid", template="quick")
    wf["spec"]["entryPoint"] = "main"
    with pytest.raises(TransportError) as err:
        ctx.transport.create(wf)
    assert err.value.status == 400 and not err.value.retryable
    assert "spec.entryPoint" in err.value.message and "unknown field" in err.value.message, err.value.message
    assert ctx.srv.workflows(NS) == []
