"""The local Argo server (tests/servers/argo.py) with the real clients: `requests` on the Argo
Server REST face and the `kubernetes` client on the Kubernetes API face. Templates are small
and inline (argo/ is tested in tests/manifests/ and tests/argo/test_argo_templates.py and by the transports' tests)."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import requests
import yaml
from servers.argo import ArgoServer

NS = "ml"
TOKEN = "argo-token"
REPO_URL = "https://git.example/acme/churn.git"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WF = ("argoproj.io", "v1alpha1", NS, "workflows")
JS = ("jobset.x-k8s.io", "v1alpha2", NS, "jobsets")

TRAIN = """\
import json, os, sys
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
print(f"rank {rank} of {world} training {os.environ['MODEL']} in {os.path.basename(os.getcwd())}", flush=True)
if rank == 0:
    os.makedirs(os.path.dirname(os.environ["RESULT"]), exist_ok=True)
    with open(os.environ["RESULT"], "w") as f:
        json.dump({"world": world, "model": os.environ["MODEL"], "args": sys.argv[1:]}, f)
sys.exit(int(os.environ.get("EXIT", "0")))
"""

ALLREDUCE = """\
import os, torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.ones(1) * (dist.get_rank() + 1)
dist.all_reduce(t)
print(f"node {os.environ['NODE_RANK']} rank {dist.get_rank()}/{dist.get_world_size()} sum {int(t.item())}", flush=True)
dist.destroy_process_group()
"""


def wf_template(name: str = "train") -> dict:
    """A container template: git clone, workingDir, torchrun, env with $(VAR), an output file."""
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": name},
        "spec": {
            "entrypoint": "train", "activeDeadlineSeconds": 300,
            "arguments": {"parameters": [
                {"name": "repo"}, {"name": "revision"}, {"name": "model"},
                {"name": "nproc-per-node", "value": "1", "enum": ["1", "2"]},
                {"name": "exit", "value": "0"}]},
            "templates": [{
                "name": "train",
                "inputs": {"artifacts": [{"name": "source", "path": "/workspace/src", "git": {
                    "repo": "{{workflow.parameters.repo}}", "revision": "{{workflow.parameters.revision}}"}}]},
                "outputs": {"parameters": [{"name": "result", "valueFrom": {"path": "/tmp/mlops-ci/result.json"}}]},
                "container": {
                    "image": "python:3.11", "workingDir": "/workspace/src/models",
                    "command": ["torchrun"],
                    "args": ["--standalone", "--nproc-per-node", "{{workflow.parameters.nproc-per-node}}",
                             "train.py", "--name", "{{workflow.name}}", "--dir", "$(OUT_DIR)"],
                    "env": [{"name": "MODEL", "value": "{{workflow.parameters.model}}"},
                            {"name": "OUT_DIR", "value": "/tmp/mlops-ci"},
                            {"name": "RESULT", "value": "$(OUT_DIR)/result.json"},
                            {"name": "EXIT", "value": "{{workflow.parameters.exit}}"},
                            {"name": "OMP_NUM_THREADS", "value": "1"}],
                    "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]},
                "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]}]}}


def sleeper_template(name: str = "sleeper") -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": name},
            "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "seconds", "value": "60"}]},
                     "templates": [{"name": "main", "container": {
                         "image": "python", "command": ["python", "-c"],
                         "args": ["import sys, time; print('sleeping', flush=True); time.sleep(float(sys.argv[1]))",
                                  "{{workflow.parameters.seconds}}"]}}]}}


def jobset_template(script_dir: Path, *, name: str = "multi", command: str = "torchrun") -> dict:
    """A resource template creating a 2-node JobSet; the exit handler deletes it."""
    args = (["--nnodes", "2", "--nproc-per-node", "1", "--node-rank", "$(NODE_RANK)", "--master-addr",
             "{{workflow.name}}-node-0-0.{{workflow.name}}", "--master-port", "29500", "/job/allreduce.py"]
            if command == "torchrun" else ["-c", "import time; print('waiting', flush=True); time.sleep(60)"])
    jobset = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet",
        "metadata": {"name": "{{workflow.name}}", "labels": {"app": "mlops-ci"}},
        "spec": {"network": {"enableDNSHostnames": True}, "replicatedJobs": [{
            "name": "node", "replicas": 2, "template": {"spec": {
                "parallelism": 1, "completions": 1, "backoffLimit": 0, "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "trainer", "image": "python", "command": [command], "args": args,
                                    "env": [{"name": "NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath":
                                             "metadata.annotations['jobset.sigs.k8s.io/job-index']"}}},
                                            {"name": "OMP_NUM_THREADS", "value": "1"}],
                                    "volumeMounts": [{"name": "job", "mountPath": "/job"}]}],
                    "volumes": [{"name": "job", "hostPath": {"path": str(script_dir)}}]}}}}}]}}
    delete = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "{{workflow.name}}"}}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": name},
            "spec": {"entrypoint": "run", "onExit": "cleanup", "templates": [
                {"name": "run", "resource": {"action": "create", "setOwnerReference": True,
                                             "manifest": yaml.safe_dump(jobset),
                                             "successCondition": "status.terminalState == Completed",
                                             "failureCondition": "status.terminalState == Failed"},
                 "outputs": {"parameters": [{"name": "state", "valueFrom": {"jsonPath": "{.status.terminalState}"}}]}},
                {"name": "cleanup", "resource": {"action": "delete", "manifest": yaml.safe_dump(delete)}}]}}


def workflow(name: str, template: str, labels: dict | None = None, **params: str) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "labels": labels or {"mlops-ci.dev/model": "churn"}},
            "spec": {"workflowTemplateRef": {"name": template},
                     "arguments": {"parameters": [{"name": k.replace("_", "-"), "value": v}
                                                  for k, v in params.items()]}}}


@pytest.fixture
def source(tmp_path) -> tuple[Path, str]:
    repo = tmp_path / "churn"
    (repo / "models").mkdir(parents=True)
    (repo / "models" / "train.py").write_text(TRAIN)
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, text=True)  # noqa: E731
    run("init", "--quiet", "--initial-branch=main")
    run("add", "--all")
    run("commit", "--quiet", "-m", "train")
    return repo, run("rev-parse", "HEAD").stdout.strip()


@pytest.fixture
def srv(source):
    with ArgoServer(token=TOKEN, repos={REPO_URL: source[0]}, namespace=NS, read_only_token="viewer") as server:
        server.add_template(wf_template())
        server.add_template(sleeper_template())
        yield server


def kube(server: ArgoServer, token: str = TOKEN):
    from kubernetes import client

    cfg = client.Configuration(host=server.k8s_url, api_key={"authorization": f"Bearer {token}"})
    cfg.retries = 0
    api = client.ApiClient(cfg)
    return client.CustomObjectsApi(api), client.CoreV1Api(api)


def post(server: ArgoServer, wf: dict, **kw) -> requests.Response:
    return requests.post(f"{server.url}/api/v1/workflows/{NS}", json={"workflow": wf}, headers=AUTH, timeout=10, **kw)


def test_submit_runs_torchrun_from_the_git_revision_with_outputs_and_logs(srv, source):
    revision = source[1]
    resp = post(srv, workflow("train-1", "train", repo=REPO_URL, revision=revision, model="churn"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["metadata"]["uid"]
    done = srv.wait(NS, "train-1", timeout=60)
    status = done["status"]
    assert status["phase"] == "Succeeded", status
    assert status["startedAt"] <= status["finishedAt"]
    assert status["nodes"]["train-1"]["type"] == "Pod" and status["nodes"]["train-1"]["phase"] == "Succeeded"
    result = {p["name"]: p["value"] for p in status["outputs"]["parameters"]}["result"]
    assert yaml.safe_load(result) == {"world": 1, "model": "churn",
                                      "args": ["--name", "train-1", "--dir", result and yaml.safe_load(result)["args"][3]]}
    assert yaml.safe_load(result)["args"][3].endswith("tmp-mlops-ci")  # /tmp/mlops-ci remapped, $(OUT_DIR) expanded
    assert done["metadata"]["labels"]["workflows.argoproj.io/completed"] == "true"

    # fields: only what was asked
    got = requests.get(f"{srv.url}/api/v1/workflows/{NS}/train-1", headers=AUTH, timeout=10,
                       params={"fields": "metadata.name,metadata.labels,status.phase,status.message,status.outputs"})
    assert got.status_code == 200
    body = got.json()
    assert set(body) == {"metadata", "status"} and set(body["status"]) == {"phase", "outputs"}
    assert set(body["metadata"]) == {"name", "labels"}

    # logs: newline-delimited JSON entries, and the pod log through CoreV1Api
    logs = requests.get(f"{srv.url}/api/v1/workflows/{NS}/train-1/log", headers=AUTH, timeout=10,
                        params={"logOptions.container": "main", "logOptions.follow": "true"})
    entries = [yaml.safe_load(line)["result"] for line in logs.text.splitlines() if line]
    assert {"content": "rank 0 of 1 training churn in models", "podName": "train-1"} in entries
    _, core = kube(srv)
    pods = core.list_namespaced_pod(NS, label_selector="workflows.argoproj.io/workflow=train-1")
    assert [p.metadata.name for p in pods.items] == ["train-1"]
    assert "rank 0 of 1 training churn" in core.read_namespaced_pod_log("train-1", NS, container="main")


def test_a_failing_command_fails_the_workflow_with_its_exit_code(srv, source):
    custom, _ = kube(srv)
    custom.create_namespaced_custom_object(*WF, workflow("train-bad", "train", repo=REPO_URL, revision=source[1],
                                                         model="churn", exit="3"))
    status = srv.wait(NS, "train-bad", timeout=60)["status"]
    # the worker exits 3; torchrun reports the failed worker and exits 1, as it does anywhere
    assert status["phase"] == "Failed" and status["message"] == "Error (exit code 1)"
    assert status["nodes"]["train-bad"]["phase"] == "Failed"


def test_an_unknown_repository_or_revision_fails_the_clone(srv, source):
    post(srv, workflow("elsewhere", "train", repo="https://git.example/other.git", revision=source[1], model="x"))
    post(srv, workflow("no-rev", "train", repo=REPO_URL, revision="0" * 40, model="x"))
    for name in ("elsewhere", "no-rev"):
        status = srv.wait(NS, name, timeout=30)["status"]
        assert status["phase"] in ("Failed", "Error") and "clone" in status["message"], status


INVALID = [
    ("unknown field", lambda w: w["spec"].update(entryPoint="x"), 'unknown field "spec.entryPoint"'),
    ("bad type", lambda w: w["spec"].update(activeDeadlineSeconds="soon"), "spec.activeDeadlineSeconds"),
    ("bad name", lambda w: w["metadata"].update(name="Train_1"), "metadata.name"),
    ("missing template", lambda w: w["spec"]["workflowTemplateRef"].update(name="nope"),
     'workflowtemplates.argoproj.io "nope" not found'),
    ("enum", lambda w: w["spec"]["arguments"]["parameters"].append({"name": "nproc-per-node", "value": "3"}),
     "nproc-per-node"),
    ("required parameter", lambda w: w["spec"]["arguments"]["parameters"].pop(), "spec.arguments.model.value is required"),
]


@pytest.mark.parametrize(("case", "breaks", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_workflows_are_refused_at_submission(srv, source, case, breaks, words):
    wf = workflow("bad", "train", repo=REPO_URL, revision=source[1], model="churn")
    breaks(wf)
    resp = post(srv, wf)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == 3 and words in resp.json()["message"]
    assert srv.workflows(NS) == []


def test_the_kubernetes_face_validates_against_the_crd_and_argo_fails_bad_specs(srv, source):
    from kubernetes.client.exceptions import ApiException

    custom, _ = kube(srv)
    wf = workflow("k-bad", "train", repo=REPO_URL, revision=source[1], model="churn")
    wf["spec"]["bogus"] = 1
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*WF, wf)
    assert err.value.status == 400 and 'unknown field \\"spec.bogus\\"' in err.value.body
    wf["spec"].pop("bogus")
    wf["spec"]["parallelism"] = "two"
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*WF, wf)
    assert err.value.status == 422 and "spec.parallelism" in err.value.body and '"reason": "Invalid"' in err.value.body
    # the API server has no Argo checks: the controller fails it
    custom.create_namespaced_custom_object(*WF, workflow("k-missing", "nope"))
    status = srv.wait(NS, "k-missing", timeout=10)["status"]
    assert status["phase"] == "Failed" and status["message"].startswith("invalid spec: ") and '"nope" not found' in status["message"]


def test_a_duplicate_name_is_409_on_both_faces(srv, source):
    from kubernetes.client.exceptions import ApiException

    wf = workflow("dup", "sleeper", seconds="0")
    assert post(srv, wf).status_code == 200
    again = post(srv, wf)
    assert again.status_code == 409 and again.json() == {
        "code": 6, "message": 'workflows.argoproj.io "dup" already exists'}
    custom, _ = kube(srv)
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*WF, wf)
    assert err.value.status == 409 and '"reason": "AlreadyExists"' in err.value.body
    srv.wait(NS, "dup", phase="Succeeded", timeout=30)


def test_lists_filter_by_labels_and_fields(srv):
    for name, team in (("a-1", "a"), ("a-2", "a"), ("b-1", "b")):
        assert post(srv, workflow(name, "sleeper", labels={"team": team, "app": "x"}, seconds="0")).status_code == 200
    url = f"{srv.url}/api/v1/workflows/{NS}"

    def names(selector, fields="items.metadata.name,items.status.phase"):
        resp = requests.get(url, headers=AUTH, timeout=10,
                            params={"listOptions.labelSelector": selector, "fields": fields})
        assert resp.status_code == 200, resp.text
        return [i["metadata"]["name"] for i in resp.json()["items"]], resp.json()

    assert names("team=a,app=x")[0] == ["a-1", "a-2"]
    assert names("team!=a")[0] == ["b-1"]
    found, body = names("team=b")
    assert set(body) == {"items"} and set(body["items"][0]) <= {"metadata", "status"}
    assert set(body["items"][0]["metadata"]) == {"name"}
    custom, _ = kube(srv)
    listed = custom.list_namespaced_custom_object(*WF, label_selector="team in (b),app=x")
    assert listed["kind"] == "WorkflowList" and [i["metadata"]["name"] for i in listed["items"]] == ["b-1"]
    for name in ("a-1", "a-2", "b-1"):
        srv.wait(NS, name, phase="Succeeded", timeout=30)
    assert requests.delete(f"{url}/a-1", headers=AUTH, timeout=10).json() == {}
    assert names("team=a")[0] == ["a-2"]


def test_stop_through_a_merge_patch_kills_the_process(srv):
    custom, _ = kube(srv)
    custom.create_namespaced_custom_object(*WF, workflow("slow", "sleeper"))
    srv.wait(NS, "slow", phase="Running", timeout=10)
    deadline = time.monotonic() + 10
    while not srv.processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = srv.processes()
    assert pids
    custom.patch_namespaced_custom_object(*WF, "slow", {"spec": {"shutdown": "Stop"}})
    status = srv.wait(NS, "slow", timeout=15)["status"]
    assert status["phase"] == "Failed" and status["message"] == "Stopped with strategy 'Stop'"
    assert srv.processes() == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_deadline_fails_the_workflow(srv):
    wf = workflow("late", "sleeper")
    wf["spec"]["activeDeadlineSeconds"] = 1
    post(srv, wf)
    status = srv.wait(NS, "late", timeout=15)["status"]
    assert status["phase"] == "Failed" and "deadline" in status["message"]


def test_a_jobset_runs_two_torchrun_nodes_and_the_exit_handler_deletes_it(srv, tmp_path):
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "allreduce.py").write_text(ALLREDUCE)
    srv.add_template(jobset_template(tmp_path / "job"))
    assert post(srv, workflow("multi-1", "multi")).status_code == 200
    status = srv.wait(NS, "multi-1", timeout=90)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["outputs"]["parameters"] == [{"name": "state", "value": "Completed"}]
    assert {n["name"] for n in status["nodes"].values()} == {"multi-1", "multi-1.onExit"}
    assert srv.jobsets(NS) == [] and srv.processes() == []


def test_stopping_a_jobset_workflow_runs_the_exit_handler(srv, tmp_path):
    srv.add_template(jobset_template(tmp_path, name="waiter", command="python"))
    post(srv, workflow("multi-stop", "waiter"))
    deadline = time.monotonic() + 20
    while len(srv.processes()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    [jobset] = srv.jobsets(NS)
    assert jobset["metadata"]["ownerReferences"][0]["name"] == "multi-stop"
    custom, _ = kube(srv)
    assert custom.get_namespaced_custom_object(*JS, "multi-stop")["spec"]["replicatedJobs"][0]["replicas"] == 2
    resp = requests.put(f"{srv.url}/api/v1/workflows/{NS}/multi-stop/stop", headers=AUTH, timeout=10,
                        json={"name": "multi-stop", "namespace": NS})
    assert resp.status_code == 200 and resp.json()["spec"]["shutdown"] == "Stop"
    status = srv.wait(NS, "multi-stop", timeout=20)["status"]
    assert status["phase"] == "Failed" and status["message"] == "Stopped with strategy 'Stop'"
    assert status["nodes"]["multi-stop.onExit"]["phase"] == "Succeeded" if "multi-stop.onExit" in status["nodes"] \
        else any(n["name"] == "multi-stop.onExit" and n["phase"] == "Succeeded" for n in status["nodes"].values())
    assert srv.jobsets(NS) == []
    deadline = time.monotonic() + 10
    while srv.processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.processes() == []


def test_jobsets_through_the_kubernetes_api(srv, tmp_path):
    from kubernetes.client.exceptions import ApiException

    custom, core = kube(srv)
    manifest = yaml.safe_load(jobset_template(tmp_path)["spec"]["templates"][0]["resource"]["manifest"]
                              .replace("{{workflow.name}}", "direct"))
    container = manifest["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"][0]
    container.update(command=["python"], args=["-c", "import os; print('index', os.environ['NODE_RANK'])"])
    bad = yaml.safe_load(yaml.safe_dump(manifest))
    bad["spec"]["replicatedJobs"][0]["replicas"] = "two"
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(*JS, bad)
    assert err.value.status == 422 and "spec.replicatedJobs[0].replicas" in err.value.body
    custom.create_namespaced_custom_object(*JS, manifest)
    deadline = time.monotonic() + 20
    while (custom.get_namespaced_custom_object(*JS, "direct").get("status") or {}).get("terminalState") is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    got = custom.get_namespaced_custom_object(*JS, "direct")
    assert got["status"]["terminalState"] == "Completed"
    pods = core.list_namespaced_pod(NS, label_selector="jobset.sigs.k8s.io/jobset-name=direct").items
    logs = sorted(core.read_namespaced_pod_log(p.metadata.name, NS) for p in pods)
    assert logs == ["index 0\n", "index 1\n"]
    listed = custom.list_namespaced_custom_object(*JS, label_selector="app=mlops-ci")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["direct"]
    custom.delete_namespaced_custom_object(*JS, "direct")
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(*JS, "direct")
    assert err.value.status == 404


def test_patches_templates_and_unknown_paths_on_the_kubernetes_face(srv):
    from kubernetes.client.exceptions import ApiException

    custom, _ = kube(srv)
    custom.create_namespaced_custom_object(*WF, workflow("patched", "sleeper", seconds="0"))
    custom.patch_namespaced_custom_object(*WF, "patched", [
        {"op": "add", "path": "/metadata/labels/extra", "value": "yes"}], _content_type="application/json-patch+json")
    assert srv.workflow(NS, "patched")["metadata"]["labels"]["extra"] == "yes"
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(*WF, "patched", {"spec": {"parallelism": "x"}})
    assert err.value.status == 422
    tmpl = custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "workflowtemplates", "sleeper")
    assert tmpl["spec"]["entrypoint"] == "main"
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "cronworkflows", "x")
    assert err.value.status == 404 and '"kind": "Status"' in err.value.body
    srv.wait(NS, "patched", phase="Succeeded", timeout=30)
    custom.delete_namespaced_custom_object(*WF, "patched")
    assert srv.workflow(NS, "patched") is None


def test_authentication_and_authorization(srv):
    from kubernetes.client.exceptions import ApiException

    url = f"{srv.url}/api/v1/workflows/{NS}"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).json()["code"] == 16
    viewer = {"Authorization": "Bearer viewer"}
    assert requests.get(url, headers=viewer, timeout=10).status_code == 200
    refused = requests.post(url, headers=viewer, json={"workflow": workflow("v", "sleeper")}, timeout=10)
    assert refused.status_code == 403 and refused.json()["code"] == 7
    assert requests.get(f"{srv.url}/api/v1/workflows/other", headers=AUTH, timeout=10).status_code == 403
    for token, code in (("wrong", 401), ("viewer", 403)):
        custom, _ = kube(srv, token)
        with pytest.raises(ApiException) as err:
            custom.create_namespaced_custom_object(*WF, workflow("v", "sleeper"))
        assert err.value.status == code
    assert srv.workflows(NS) == []


def test_faults_are_seen_by_the_clients(srv):
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    assert post(srv, workflow("steady", "sleeper", seconds="2")).status_code == 200
    one = f"{srv.url}/api/v1/workflows/{NS}/steady"
    # drop: the connection closes halfway through the answer
    srv.inject("drop", match=r"^GET /api/v1/workflows/ml/steady$")
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(one, headers=AUTH, timeout=10).json()
    # slow: a read timeout
    srv.inject("slow", match="steady", delay=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(one, headers=AUTH, timeout=0.3)
    # status: 503 on both faces
    srv.inject("status", match="steady", status=503)
    assert requests.get(one, headers=AUTH, timeout=10).status_code == 503
    custom, _ = kube(srv)
    srv.inject("status", match="^GET /apis/", status=504)
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(*WF, "steady")
    assert err.value.status == 504
    # restart: refused while down, then back on the same port with the state and the run kept
    srv.inject("restart", match="steady", down=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(one, headers=AUTH, timeout=10)
    time.sleep(0.2)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(one, headers=AUTH, timeout=10)
    srv.inject("restart", match="^GET /apis/", down=0.5)
    with pytest.raises((HTTPError, OSError)):
        custom.get_namespaced_custom_object(*WF, "steady")
    deadline = time.monotonic() + 10
    while True:
        try:
            got = requests.get(one, headers=AUTH, timeout=10)
            break
        except requests.exceptions.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert got.status_code == 200 and got.json()["metadata"]["name"] == "steady"
    assert srv.wait(NS, "steady", timeout=30)["status"]["phase"] == "Succeeded"
    time.sleep(0.6)
    assert custom.get_namespaced_custom_object(*WF, "steady")["status"]["phase"] == "Succeeded"
    assert [r.fault for r in srv.requests(path="steady") if r.fault][:4] == ["drop", "slow", "status", "status"]


def test_load_templates_builds_the_kustomization(srv, tmp_path):
    (tmp_path / "argo").mkdir()
    (tmp_path / "argo" / "t.yaml").write_text(yaml.safe_dump(sleeper_template("from-kustomize")))
    (tmp_path / "argo" / "kustomization.yaml").write_text(textwrap.dedent("""\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [t.yaml]
        """))
    assert srv.load_templates(tmp_path / "argo") == ["from-kustomize"]
    broken = sleeper_template("broken")
    broken["spec"]["templates"][0]["container"]["imagePullPolicy"] = 3
    with pytest.raises(AssertionError, match="imagePullPolicy"):
        srv.add_template(broken)
