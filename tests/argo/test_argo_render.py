"""argo/ (the training WorkflowTemplates, their RBAC and semaphore), the Workflow mlops-ci builds
from them, `mlops-ci render training`, and the example's training image.

Every object is checked against the upstream schemas in ../shared/contracts/ with the
validators of manifest_support (the WorkflowTemplate and Workflow CRDs and schema.json, the
JobSet CRD for the manifest the JobSet template creates).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from manifest_support import assert_hadolint_clean, load_all, schema_errors, set_field

from mlops_ci.argo import MlflowRun, build_workflow, label_value, workflow_name
from mlops_ci.config.schema import ARGO_TEMPLATES, Config
from mlops_ci.errors import ConfigError, InputError, UsageError

ROOT = Path(__file__).resolve().parents[2]
ARGO = ROOT / "argo"
TORCHRUN, JOBSET = ARGO_TEMPLATES["torchrun"], ARGO_TEMPLATES["jobset"]
SHA = "0123456789abcdef0123456789abcdef01234567"
IMAGE = "ghcr.io/acme/churn-train@sha256:" + "ab" * 32
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PARAMETERS = ["repo", "revision", "model", "image", "config", "workdir", "script", "nproc-per-node", "gpus",
              "checkpoint-uri", "mlflow-tracking-uri", "mlflow-experiment-id", "mlflow-run-id", "args", "env"]
CONTAINER_ENV = {"MLOPS_CI_MODEL", "MLOPS_CI_CHECKPOINT_URI", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID",
                 "MLFLOW_RUN_ID", "MLOPS_CI_RESULT", "MLOPS_CI_PG_TIMEOUT_S", "NCCL_DEBUG",
                 "NCCL_ASYNC_ERROR_HANDLING", "TORCH_NCCL_ASYNC_ERROR_HANDLING", "MLOPS_CI_TRAIN_ARGS",
                 "MLOPS_CI_TRAIN_ENV"}
LAUNCH = ["-m", "mlops_ci.argo.launch"]  # torchrun runs the launcher, which runs the script
# Argo's own variables the templates may use besides workflow.parameters
ARGO_VARIABLES = {"workflow.name", "workflow.status", "steps.result.outputs.parameters.result"}


# ---------------------------------------------------------------------------------------------
# argo/: what kustomize builds


@pytest.fixture(scope="module")
def built() -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    proc = subprocess.run([kubectl, "kustomize", str(ARGO)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [d for d in YAML(typ="safe").load_all(proc.stdout) if d]


def _by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _template(name: str) -> dict:
    (wt,) = [d for p in ARGO.glob("training-*.yaml") for d in load_all(p) if d["metadata"]["name"] == name]
    return wt


def _params(wt: dict) -> dict[str, dict]:
    return {p["name"]: p for p in wt["spec"]["arguments"]["parameters"]}


def test_kustomize_builds_templates_rbac_and_semaphore(built: list[dict]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in built)
    assert kinds == sorted([
        ("ServiceAccount", "mlops-ci-trainer"), ("Role", "mlops-ci-trainer"), ("RoleBinding", "mlops-ci-trainer"),
        ("ConfigMap", "mlops-ci-gpu-slots"), ("WorkflowTemplate", TORCHRUN), ("WorkflowTemplate", JOBSET),
        ("CronWorkflow", "mlops-ci-monitor"), ("WorkflowTemplate", "mlops-ci-rollout-advance"),
        ("CronWorkflow", "mlops-ci-rollout")])
    for obj in built:
        assert "namespace" not in obj["metadata"], "argo/ is applied into the namespace the user picks (-n)"
        errors = schema_errors(obj)
        assert not errors, f"{obj['kind']} {obj['metadata']['name']}:\n  " + "\n  ".join(errors)


def test_core_objects_pass_kubernetes_validate(built: list[dict]) -> None:
    pytest.importorskip("kubernetes_validate")
    from manifest_support import core_errors

    for obj in built:
        if obj["kind"] not in ("WorkflowTemplate", "CronWorkflow"):
            assert not core_errors(obj), core_errors(obj)


@pytest.mark.parametrize("name", [TORCHRUN, JOBSET])
def test_template_uses_only_declared_parameters(name: str) -> None:
    wt = _template(name)
    declared = set(_params(wt))
    used = set(re.findall(r"\{\{\s*([^}]*?)\s*\}\}", json.dumps(wt)))
    for ref in used - ARGO_VARIABLES:
        scope, _, param = ref.rpartition(".")
        assert scope == "workflow.parameters", f"{{{{{ref}}}}} is neither a parameter nor an Argo variable"
        assert param in declared, f"{name}: {{{{{ref}}}}} is not declared"
    unused = {p for p in declared if f"{{{{workflow.parameters.{p}}}}}" not in json.dumps(wt)}
    assert not unused, f"{name}: declared but never used: {unused}"


@pytest.mark.parametrize("name", [TORCHRUN, JOBSET])
def test_template_parameters_are_the_contract(name: str) -> None:
    params = _params(_template(name))
    expected = PARAMETERS[:7] + (["nodes"] if name == JOBSET else []) + PARAMETERS[7:]
    assert list(params) == expected
    required = {p for p, spec in params.items() if "value" not in spec}
    assert required == {"repo", "revision", "model", "image"} | ({"checkpoint-uri"} if name == JOBSET else set())
    # numbers spliced into argv, the pod spec patch or the JobSet manifest are closed sets
    for p, top in (("nproc-per-node", 64), ("gpus", 16), ("nodes", 64)):
        if p in params:
            low = 0 if p == "gpus" else 1
            assert params[p]["enum"] == [str(i) for i in range(low, top + 1)]
            assert params[p]["value"] in params[p]["enum"]


@pytest.mark.parametrize("name", [TORCHRUN, JOBSET])
def test_template_limits_its_runs(name: str, built: list[dict]) -> None:
    spec = _template(name)["spec"]
    assert spec["serviceAccountName"] in _by_kind(built, "ServiceAccount")
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["ttlStrategy"]["secondsAfterSuccess"] < spec["ttlStrategy"]["secondsAfterFailure"]
    assert spec["podGC"]["strategy"] == "OnPodSuccess"
    (semaphore,) = spec["synchronization"]["semaphores"]
    ref = semaphore["configMapKeyRef"]
    slots = _by_kind(built, "ConfigMap")[ref["name"]]
    assert ref == {"name": "mlops-ci-gpu-slots", "key": "training"}
    assert int(slots["data"]["training"]) >= 1
    assert spec["nodeSelector"]
    for t in spec["templates"]:
        assert "script" not in t, f"{t['name']} interpolates into a script; use container args"
        assert t.get("container", {}).get("command", ["x"])[0] not in ("sh", "bash", "/bin/sh")


def test_rbac_grants_what_the_templates_do(built: list[dict]) -> None:
    (role,) = _by_kind(built, "Role").values()
    grants = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
              for v in rule["verbs"]}
    needed = {("argoproj.io", "workflowtaskresults", v) for v in ("create", "patch")}
    needed |= {("jobset.x-k8s.io", "jobsets", v) for v in ("create", "get", "delete", "patch")}
    needed |= {("", r, v) for r in ("pods", "pods/log") for v in ("get", "list", "watch")}
    assert needed <= grants, needed - grants
    assert not any("*" in item for g in grants for item in g), "no wildcards"
    (binding,) = _by_kind(built, "RoleBinding").values()
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mlops-ci-trainer"}]


def _env(container: dict) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_torchrun_template_outputs_the_result() -> None:
    spec = _template(TORCHRUN)["spec"]
    train = next(t for t in spec["templates"] if t["name"] == spec["entrypoint"])
    assert train["outputs"]["parameters"] == [{"name": "result", "valueFrom": {"path": "/tmp/mlops-ci/result.json"}}]
    container = train["container"]
    assert container["command"] == ["torchrun"]
    assert container["args"] == ["--standalone", "--nproc-per-node", "{{workflow.parameters.nproc-per-node}}",
                                 *LAUNCH, "{{workflow.parameters.script}}"]
    assert container["workingDir"] == "/workspace/src/{{workflow.parameters.workdir}}"
    (source,) = train["inputs"]["artifacts"]
    assert source["path"] == "/workspace/src"
    assert source["git"] == {"repo": "{{workflow.parameters.repo}}", "revision": "{{workflow.parameters.revision}}"}
    env = _env(container)
    assert CONTAINER_ENV <= set(env)
    assert env["MLOPS_CI_RESULT"] == "/tmp/mlops-ci/result.json"
    assert env["MLFLOW_RUN_ID"] == "{{workflow.parameters.mlflow-run-id}}"
    assert (env["MLOPS_CI_TRAIN_ARGS"], env["MLOPS_CI_TRAIN_ENV"]) == (
        "{{workflow.parameters.args}}", "{{workflow.parameters.env}}")


# ---------------------------------------------------------------------------------------------
# the JobSet template


def _jobset_templates() -> dict[str, dict]:
    return {t["name"]: t for t in _template(JOBSET)["spec"]["templates"]}


def _substitute(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        assert match[1] in values, f"no test value for {{{{{match[1]}}}}}"
        return values[match[1]]

    return re.sub(r"\{\{([^}]*)\}\}", one, text)


def _values(nodes: str = "2", gpus: str = "8", name: str = "mlops-ci-churn-pr7-0123456-ab703083") -> dict[str, str]:
    wt = _template(JOBSET)
    values = {f"workflow.parameters.{p}": spec.get("value", "x") for p, spec in _params(wt).items()}
    values.update({"workflow.name": name, "workflow.parameters.nodes": nodes, "workflow.parameters.gpus": gpus,
                   "workflow.parameters.nproc-per-node": gpus if gpus != "0" else "2",
                   "workflow.parameters.repo": "https://github.com/acme/churn.git",
                   "workflow.parameters.revision": SHA, "workflow.parameters.model": "churn",
                   "workflow.parameters.image": IMAGE, "workflow.parameters.workdir": "examples/churn",
                   "workflow.parameters.checkpoint-uri": "s3://ckpt/churn/run"})
    return values


def _jobset(**kwargs: str) -> dict:
    manifest = _jobset_templates()["jobset"]["resource"]["manifest"]
    return YAML(typ="safe").load(_substitute(manifest, _values(**kwargs)))


@pytest.mark.parametrize(("nodes", "gpus"), [("1", "0"), ("2", "8"), ("16", "4"), ("64", "16")])
def test_jobset_manifest_matches_the_jobset_crd(nodes: str, gpus: str) -> None:
    jobset = _jobset(nodes=nodes, gpus=gpus)
    errors = schema_errors(jobset)
    assert not errors, "\n".join(errors)
    (rjob,) = jobset["spec"]["replicatedJobs"]
    assert rjob["replicas"] == int(nodes)
    job = rjob["template"]["spec"]
    assert (job["parallelism"], job["completions"]) == (1, 1)
    pod = job["template"]["spec"]
    (trainer,) = pod["containers"]
    assert trainer["resources"]["limits"]["nvidia.com/gpu"] == gpus


def test_jobset_pods_rendezvous_at_rank_zero() -> None:
    name = "mlops-ci-churn-pr7-0123456-ab703083"
    jobset = _jobset(name=name)
    spec = jobset["spec"]
    assert jobset["metadata"]["name"] == name
    assert spec["network"]["enableDNSHostnames"] is True and "subdomain" not in spec["network"]
    assert spec["failurePolicy"]["maxRestarts"] >= 1
    (rjob,) = spec["replicatedJobs"]
    pod = rjob["template"]["spec"]["template"]["spec"]
    (trainer,) = pod["containers"]
    assert trainer["command"] == ["torchrun"]
    args = trainer["args"]
    # the subdomain defaults to the JobSet's name: <jobset>-<rjob>-<job index>-<pod index>.<subdomain>
    assert args == ["--nnodes", "2", "--nproc-per-node", "8", "--node-rank", "$(JOB_INDEX)",
                    "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{name}-{rjob['name']}-0-0.{name}:29400",
                    "--rdzv-id", name, *LAUNCH, "train.py"]
    env = {e["name"]: e for e in trainer["env"]}
    assert env["JOB_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['jobset.sigs.k8s.io/job-index']"
    assert CONTAINER_ENV <= set(env)
    assert trainer["workingDir"] == "/workspace/src/examples/churn"
    assert [c["command"] + c["args"] for c in pod["initContainers"]] == [
        ["git", "clone", "--quiet", "--no-checkout", "--", "https://github.com/acme/churn.git", "/workspace/src"],
        ["git", "-C", "/workspace/src", "checkout", "--quiet", "--detach", SHA]]
    mounts = {m["mountPath"]: m["name"] for m in trainer["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert pod["tolerations"] and pod["nodeSelector"] and pod["restartPolicy"] == "Never"
    # pod hostnames of the largest JobSet are still DNS labels for a Workflow name of 52 characters
    longest = "x" * 52
    assert len(f"{longest}-{rjob['name']}-63-0") <= 63


def test_jobset_template_waits_cleans_up_and_outputs_the_result() -> None:
    wt = _template(JOBSET)
    spec = wt["spec"]
    templates = _jobset_templates()
    create = templates["jobset"]["resource"]
    assert create["action"] == "create" and create["setOwnerReference"] is True
    assert create["successCondition"] == "status.terminalState == Completed"
    assert create["failureCondition"] == "status.terminalState == Failed"
    main = templates[spec["entrypoint"]]
    assert [s["template"] for group in main["steps"] for s in group] == ["jobset", "result"]
    assert main["outputs"]["parameters"] == [
        {"name": "result", "valueFrom": {"parameter": "{{steps.result.outputs.parameters.result}}"}}]
    result = templates["result"]
    assert result["outputs"]["parameters"] == [{"name": "result", "valueFrom": {"path": "/tmp/mlops-ci/result.json"}}]
    assert result["container"]["command"] == ["mlflow"]
    assert "{{workflow.parameters.checkpoint-uri}}/result.json" in result["container"]["args"]
    # the exit handler deletes the JobSet unless the Workflow succeeded
    cleanup = templates[spec["onExit"]]
    ((step,),) = cleanup["steps"]
    assert step["when"] == "{{workflow.status}} != Succeeded"
    delete = templates[step["template"]]["resource"]
    assert delete["action"] == "delete" and "--ignore-not-found" in delete["flags"]
    target = YAML(typ="safe").load(_substitute(delete["manifest"], _values()))
    assert not schema_errors(target)
    assert (target["kind"], target["metadata"]["name"]) == ("JobSet", _jobset()["metadata"]["name"])


BROKEN = [
    # (object, dotted path, value, the check expected to refuse it, words in its message)
    ("jobset", "spec.replicatedJobs.0.replicas", "two", "[crd]", "is not of type 'integer'"),
    ("jobset", "spec.network.enableDNSHostname", True, "[crd]", "Additional properties are not allowed"),
    ("jobset", "spec.failurePolicy.restartStrategy", "Always", "[crd]", "is not one of"),
    ("workflow", "spec.activeDeadlineSeconds", "20m", "[crd]", "is not of type 'integer'"),
    ("workflow", "spec.activeDeadlineSeconds", "20m", "[schema.json]", "is not of type 'integer'"),
    ("workflow", "spec.workflowTemplateRef.nam", "x", "[schema.json]", "Additional properties are not allowed"),
    ("workflow", "metadata.name", "Mlops_CI", "[metadata]", "not a DNS label"),
]


@pytest.mark.parametrize(("what", "field", "value", "check", "words"), BROKEN,
                         ids=[f"{b[0]}:{b[1]}:{b[3]}" for b in BROKEN])
def test_validators_refuse_broken_objects(what: str, field: str, value: Any, check: str, words: str) -> None:
    obj = _jobset() if what == "jobset" else _build()
    assert not schema_errors(obj)
    set_field(obj, field, value)
    errors = schema_errors(obj)
    assert any(e.startswith(check) and words in e for e in errors), errors


# ---------------------------------------------------------------------------------------------
# the Workflow mlops-ci builds


def _config(**argo: Any) -> Config:
    section = {"image": IMAGE, "server_url": "https://argo.example.com", "repo": "https://github.com/acme/churn.git",
               "checkpoint_uri": "s3://ckpt/mlops-ci", **argo}
    return Config.model_validate({
        "version": 1, "environments": {"staging": {"namespace": "churn-staging"}},
        "models": {"churn": {"data": {"train": "data/train.csv", "eval": "data/eval.csv", "label": "churned"},
                             "train": {"backend": "argo", "nproc_per_node": 3, "timeout_minutes": 20,
                                       "argo": section}}}})


def _build(config: Config | None = None, **kwargs: Any) -> dict:
    args: dict[str, Any] = {"repo": None, "head_sha": SHA, "pr": 7, "repository": "acme/churn"}
    args.update(kwargs)
    return build_workflow(config or _config(), "churn", **args)


def _args(wf: dict) -> dict[str, str]:
    return {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}


def test_workflow_for_one_node_references_the_torchrun_template() -> None:
    wf = _build(mlflow=MlflowRun(tracking_uri="https://mlflow.example.com", experiment_id="3", run_id="abc123"),
                config_path="examples/churn/.mlops-ci.yaml")
    name = workflow_name("acme/churn", 7, SHA, "churn")
    assert wf == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": "mlops-ci",
            "labels": {"app.kubernetes.io/managed-by": "mlops-ci", "mlops-ci.dev/repository": "acme.churn",
                       "mlops-ci.dev/pr": "7", "mlops-ci.dev/head-sha": SHA, "mlops-ci.dev/model": "churn"},
            "annotations": {"mlops-ci.dev/repository": "acme/churn", "mlops-ci.dev/nodes": "1",
                            "mlops-ci.dev/gpus-per-node": "1", "workflows.argoproj.io/title": "train churn",
                            "workflows.argoproj.io/description": "acme/churn PR #7 at 0123456789ab"},
        },
        "spec": {
            "workflowTemplateRef": {"name": TORCHRUN},
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in {
                "repo": "https://github.com/acme/churn.git", "revision": SHA, "model": "churn", "image": IMAGE,
                "config": "examples/churn/.mlops-ci.yaml", "workdir": "examples/churn", "script": "train.py",
                "nproc-per-node": "1", "gpus": "1", "checkpoint-uri": f"s3://ckpt/mlops-ci/churn/{name}",
                "mlflow-tracking-uri": "https://mlflow.example.com", "mlflow-experiment-id": "3",
                "mlflow-run-id": "abc123"}.items()]},
            "activeDeadlineSeconds": 1200,
        },
    }


@pytest.mark.parametrize(("nodes", "gpus"), [(None, None), (1, 0), (2, 8), (64, 16)])
def test_workflow_matches_the_workflow_crd_and_its_template(nodes: int | None, gpus: int | None) -> None:
    wf = _build(nodes=nodes, gpus_per_node=gpus)
    errors = schema_errors(wf)
    assert not errors, "\n".join(errors)
    template = _template(wf["spec"]["workflowTemplateRef"]["name"])
    declared = _params(template)
    args = _args(wf)
    assert set(args) <= set(declared), set(args) - set(declared)
    assert {p for p, spec in declared.items() if "value" not in spec} <= set(args), "a required parameter is missing"
    for p, value in args.items():
        if "enum" in declared[p]:
            assert value in declared[p]["enum"], f"{p}={value} is outside the template's enum"
    assert template["metadata"]["name"] == (TORCHRUN if (nodes or 1) == 1 else JOBSET)


def test_cpu_training_runs_the_configured_processes() -> None:
    args = _args(_build(gpus_per_node=0))
    assert (args["gpus"], args["nproc-per-node"]) == ("0", "3")
    args = _args(_build(nodes=4, gpus_per_node=2))
    assert (args["nodes"], args["gpus"], args["nproc-per-node"]) == ("4", "2", "2")


def test_timeout_and_template_come_from_the_argo_section() -> None:
    wf = _build(_config(timeout_minutes=90.5, template=JOBSET, nodes=1))
    assert wf["spec"]["activeDeadlineSeconds"] == 5430
    assert wf["spec"]["workflowTemplateRef"]["name"] == JOBSET and _args(wf)["nodes"] == "1"
    with pytest.raises(UsageError, match="one node"):
        _build(_config(template=TORCHRUN), nodes=2)


def test_names_are_deterministic_distinct_and_dns_labels() -> None:
    first = workflow_name("acme/churn", 7, SHA, "churn")
    assert first == workflow_name("acme/churn", 7, SHA.upper(), "churn") == _build()["metadata"]["name"]
    inputs = [("acme/churn", 7, SHA, "churn"), ("acme/churn", 8, SHA, "churn"), ("acme/churn", None, SHA, "churn"),
              ("acme/other", 7, SHA, "churn"), ("acme/churn", 7, "f" * 40, "churn"), ("acme/churn", 7, SHA, "churn2"),
              ("acme/churn", 7, SHA, "a" * 40), ("acme/churn", 7, SHA, "a" * 39 + "b"),
              ("acme/churn", 1234567890, SHA, "x" * 40), ("acme/churn", 71, SHA, "churn")]
    names = [workflow_name(*i) for i in inputs]
    assert len(set(names)) == len(names)
    for name in names:
        assert len(name) <= 52 and DNS_LABEL.match(name) and name.startswith("mlops-ci-"), name
    assert workflow_name("acme/churn", None, SHA, "churn").startswith("mlops-ci-churn-0123456-")


def test_labels_are_valid_label_values() -> None:
    assert label_value("acme/churn") == "acme.churn"
    assert label_value("Org_Name/repo.name-") == "Org_Name.repo.name"
    assert label_value("-" + "r" * 80) == "r" * 63
    wf = _build(pr=None, repository="An-Org/" + "r" * 90)
    labels = wf["metadata"]["labels"]
    assert labels["mlops-ci.dev/pr"] == "none" and len(labels["mlops-ci.dev/repository"]) <= 63
    assert not schema_errors(wf)


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"nodes": 0}, UsageError, "from 1 to 64"),
    ({"nodes": 65}, UsageError, "from 1 to 64"),
    ({"gpus_per_node": 17}, UsageError, "from 0 to 16"),
    ({"gpus_per_node": -1}, UsageError, "from 0 to 16"),
    ({"head_sha": "main"}, InputError, "40 hex"),
    ({"head_sha": SHA[:7]}, InputError, "40 hex"),
    ({"repo": "https://github.com/acme/churn.git\nkind: Pod"}, ConfigError, "repo"),
    ({"mlflow": MlflowRun(run_id='x" evil')}, ConfigError, "mlflow-run-id"),
])
def test_builder_refuses_bad_inputs(kwargs: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        _build(**kwargs)


def test_builder_needs_an_argo_section_a_clone_url_and_checkpoints_for_many_nodes() -> None:
    plain = Config.model_validate({
        "version": 1, "environments": {"s": {"namespace": "s"}},
        "models": {"churn": {"data": {"train": "a.csv", "eval": "b.csv", "label": "y"}}}})
    with pytest.raises(ConfigError, match="no 'argo' section"):
        _build(plain)
    with pytest.raises(ConfigError, match="argo.repo"):
        _build(_config(repo=None))
    with pytest.raises(ConfigError, match="checkpoint_uri"):
        _build(_config(checkpoint_uri=None), nodes=2)
    assert "checkpoint-uri" not in _args(_build(_config(checkpoint_uri=None)))

# ---------------------------------------------------------------------------------------------
# examples/churn/Dockerfile: the training image


DOCKERFILE = ROOT / "examples" / "churn" / "Dockerfile"


def test_training_dockerfile_passes_hadolint() -> None:
    assert_hadolint_clean(DOCKERFILE)


def test_training_dockerfile_is_pinned_unprivileged_and_has_git() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [ln for ln in re.sub(r"\\\n", " ", text).splitlines() if ln and not ln.lstrip().startswith("#")]
    froms = [ln.split()[1] for ln in lines if ln.startswith("FROM ")]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", froms[0])
    user = [ln.split()[1] for ln in lines if ln.startswith("USER ")][-1]
    assert user.split(":")[0] not in ("root", "0") and user.split(":")[0].isdigit(), "numeric non-root user"
    assert any(ln.startswith("WORKDIR ") for ln in lines)
    install = " ".join(ln for ln in lines if "pip install" in ln)
    assert "-c /tmp/mlops-ci/requirements/constraints.txt" in install and "torch==" in install
    assert "install -y --no-install-recommends git" in text, "the JobSet template's pods clone with git"
    ignore = [ln.strip() for ln in (DOCKERFILE.parent / ".dockerignore").read_text(encoding="utf-8").splitlines()
              if ln.strip() and not ln.startswith("#")]
    assert ignore[0] == "*" and not any(e.startswith(("!data", "!.mlops-ci/", "!mlruns")) for e in ignore), \
        "an allow-list that keeps data and runs out"
    copied = next(ln for ln in lines if ln.startswith("COPY "))
    for name in copied.split()[2:-1]:
        assert f"!{name}" in ignore, f"{name} is copied but left out by .dockerignore"
        assert (DOCKERFILE.parent / name).is_file(), name


def test_jobset_manifest_is_plain_yaml() -> None:
    """Argo substitutes into the manifest text, then parses it: no anchors or tags to trip on."""
    manifest = _jobset_templates()["jobset"]["resource"]["manifest"]
    assert not re.search(r"[&*!][A-Za-z]", re.sub(r"\$\(JOB_INDEX\)", "", manifest))


def test_credentials_in_the_tracking_uri_never_reach_the_workflow() -> None:
    """A Workflow's parameters are plain text in the cluster and become pod environment: the URI
    goes without userinfo or query tokens (pods authenticate through the mlops-ci-trainer Secret)."""
    import json

    for uri in ("https://ci:S3cret!pass@mlflow.example.com/ml", "https://mlf_tok_9f8e7d6c5b4a@mlflow.example.com/ml",
                "https://mlflow.example.com/ml?token=mlf_tok_9f8e7d6c5b4a", "https://u:pa/ss@mlflow.example.com/ml"):
        wf = _build(mlflow=MlflowRun(tracking_uri=uri, experiment_id="3", run_id="abc123"))
        assert _args(wf)["mlflow-tracking-uri"] == "https://mlflow.example.com/ml", uri
        text = json.dumps(wf)
        for secret in ("S3cret", "mlf_tok", "pa/ss", "ci:"):
            assert secret not in text, (uri, secret)
