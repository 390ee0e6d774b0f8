"""Serving settings, the Deployment + Service + HPA alternative, and validation before commit.

Every rendered variant is a golden file and passes the checks a promotion runs before it
commits: the KServe CRD from ../shared/contracts (MLOPS_CI_CRDS), kubernetes-validate for core
kinds, and `kubectl kustomize` of the environment folder. The settings that a kind or mode does
not support are refused when the config is loaded, at the file:line of the setting.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest
from pydantic import TypeAdapter

from conftest import CONTRACTS, FIXTURES, golden, kserve_errors, load_crd_schema, refused_at
from conftest import tiny_config_serving as write_config
from mlops_ci.config import load_config
from mlops_ci.config.schema import DeploymentServing, InferenceServiceServing, ServingConfig
from mlops_ci.errors import ConfigError, PromotionError
from mlops_ci.serving import deployment, kserve, layout, rules, validate, yamlio

IMAGE = "ghcr.io/acme/model-server@sha256:" + "b" * 64
KSERVE_CRDS = CONTRACTS / "kserve"
SETTINGS = validate.Settings(crd_paths=(KSERVE_CRDS,))

VERSION = kserve.ServedVersion(model="churn", version="7", artifact_uri="s3://models/churn/m-7/artifacts",
                               digest="sha256:" + "d" * 64, env="prod", namespace="churn-prod",
                               lineage={"run-id": "abc", "source-commit": "e" * 40, "source-pr": "12"})

# golden name -> serving settings; each exercises settings the others do not
VARIANTS = {
    "inferenceservice-serverless.yaml": dict(deployment_mode="Serverless", min_replicas=0, max_replicas=4,
                                             autoscaling={"metric": "concurrency", "target": 8},
                                             canary_percent=10, runtime="kserve-mlserver"),
    "inferenceservice-gpu.yaml": dict(min_replicas=1, max_replicas=2, gpus=1,
                                      autoscaling={"metric": "cpu", "target": 70},
                                      requests={"cpu": "4", "memory": "16Gi"},
                                      limits={"cpu": "8", "memory": "32Gi"}),
    "deployment.yaml": dict(kind="deployment", image=IMAGE, port=5000, min_replicas=2, max_replicas=6, gpus=1,
                            args=["mlflow", "models", "serve", "-m", "$(MODEL_URI)", "-h", "0.0.0.0", "-p", "5000"],
                            autoscaling={"metric": "memory", "target": 75}),
    "deployment-defaults.yaml": dict(kind="deployment", image=IMAGE),
    # payload logging: CloudEvents to a URL, and batches of Parquet files in blob storage
    "inferenceservice-logger-events.yaml": dict(logging={
        "mode": "request", "url": "http://payload-sink.monitoring.svc/events",
        "metadata_headers": ["x-request-id", "x-b3-traceid"]}),
    "inferenceservice-logger-storage.yaml": dict(logging={
        "url": "s3://acme-inference-logs", "marshaller": "parquet", "batch_size": 500, "batch_interval": "30s",
        "storage": {"path": "/logs/churn", "key": "logger-credentials", "service_account": "logger-sa",
                    "parameters": {"type": "s3", "region": "eu-west-1"}}}),
}


def as_serving(settings: dict) -> InferenceServiceServing | DeploymentServing:
    """The settings as the config's `serving` section reads them: the class their kind names."""
    return TypeAdapter(ServingConfig).validate_python(settings)


def rendered(settings: dict) -> dict[str, bytes | None]:
    return layout.render_files("environments", VERSION, as_serving(settings), lambda p: None)


# ---------------------------------------------------------------------------------------------
# rendering


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_variant_renders_as_its_golden_file_and_validates(name):
    files = rendered(VARIANTS[name])
    folder = "environments/prod/churn/"
    objects = {p.removeprefix(folder): data for p, data in files.items() if p.startswith(folder)}
    kind = as_serving(VARIANTS[name]).kind
    assert set(objects) == {"kustomization.yaml", *layout.FILES[kind]}
    if kind == "inferenceservice":
        golden(name, objects["inferenceservice.yaml"].decode())
        assert kserve_errors(yamlio.load(objects["inferenceservice.yaml"])) == []
    else:
        stem = name.removesuffix(".yaml")
        for part in deployment.FILES:
            golden(f"{stem}.{part}" if stem != "deployment" else part, objects[part].decode())
    assert yamlio.load(objects["kustomization.yaml"])["resources"] == list(layout.FILES[kind])
    report = validate.validate(files, root="environments", env="prod", settings=SETTINGS)
    assert report.ok, report.problems
    assert any(c.startswith("kubectl kustomize environments/prod") for c in report.checked)
    wanted = {"crd InferenceService"} if kind == "inferenceservice" else {
        "core Deployment", "core Service", "core HorizontalPodAutoscaler"}
    assert {c.split(" (")[0] for c in report.checked} >= wanted, report.checked
    assert not report.skipped


def test_serving_settings_reach_the_inferenceservice():
    isvc = kserve.render(VERSION, as_serving(VARIANTS["inferenceservice-serverless.yaml"]))
    assert isvc["metadata"]["annotations"][kserve.DEPLOYMENT_MODE] == "Serverless"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 4)
    assert (predictor["scaleMetric"], predictor["scaleTarget"], predictor["canaryTrafficPercent"]) == \
        ("concurrency", 8, 10)
    gpu = kserve.render(VERSION, as_serving(VARIANTS["inferenceservice-gpu.yaml"]))["spec"]["predictor"]
    res = gpu["model"]["resources"]
    assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == "1"
    assert "canaryTrafficPercent" not in gpu and gpu["scaleMetric"] == "cpu"
    # the defaults render what they always did, plus the mode they were checked against
    plain = kserve.render(VERSION, InferenceServiceServing())
    assert plain["metadata"]["annotations"][kserve.DEPLOYMENT_MODE] == "RawDeployment"
    assert set(plain["spec"]["predictor"]) == {"minReplicas", "maxReplicas", "model"}
    assert "nvidia.com/gpu" not in plain["spec"]["predictor"]["model"]["resources"]["limits"]


def test_deployment_passes_the_version_to_the_server_and_leaves_replicas_to_the_hpa():
    serving = as_serving(VARIANTS["deployment.yaml"])
    dep = deployment.render("deployment.yaml", VERSION, serving)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"MODEL_NAME": "churn", "MODEL_VERSION": "7", "MODEL_URI": VERSION.artifact_uri,
                   "MODEL_DIGEST": VERSION.digest}
    assert container["image"] == IMAGE and "$(MODEL_URI)" in container["args"]
    assert container["ports"] == [{"name": "http", "containerPort": 5000, "protocol": "TCP"}]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    assert dep["metadata"]["annotations"] == dep["spec"]["template"]["metadata"]["annotations"]
    assert dep["metadata"]["annotations"]["mlops-ci.dev/source-pr"] == "12"
    selector = dep["spec"]["selector"]["matchLabels"]
    assert "mlops-ci.dev/model-version" not in selector, "a Deployment's selector is immutable"
    assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    svc = deployment.render("service.yaml", VERSION, serving)
    assert svc["spec"]["selector"] == selector and svc["spec"]["ports"][0]["targetPort"] == "http"
    hpa = deployment.render("hpa.yaml", VERSION, serving)
    assert hpa["metadata"]["annotations"] == {"argocd.argoproj.io/sync-wave": "1"}
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "memory", "target": {"type": "Utilization", "averageUtilization": 75}}}]
    # only the Deployment changes between versions
    v8 = dataclasses.replace(VERSION, version="8", artifact_uri="s3://models/churn/m-8")
    for name in ("service.yaml", "hpa.yaml"):
        assert deployment.render(name, v8, serving) == deployment.render(name, VERSION, serving)


def test_removed_settings_leave_the_file_and_user_items_stay():
    """Owned fields the settings no longer set are removed; a sidecar and extra env survive."""
    serverless = as_serving(VARIANTS["inferenceservice-serverless.yaml"])
    doc = yamlio.load(yamlio.dump(kserve.render(VERSION, serverless)))
    fewer = InferenceServiceServing(deployment_mode="Serverless", gpus=0)
    yamlio.merge_owned(doc, kserve.owned_fields(VERSION, fewer))
    predictor = doc["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor and "scaleMetric" not in predictor
    assert predictor["model"]["runtime"] == "kserve-mlserver", "runtime is kept unless set (as before)"

    serving = as_serving(VARIANTS["deployment.yaml"])
    text = yamlio.dump(deployment.render("deployment.yaml", VERSION, serving)).decode()
    text = text.replace("        env:\n", "        env:\n        - name: LOG_LEVEL  # ours\n          value: debug\n")
    text += "      - name: proxy\n        image: envoy@sha256:" + "c" * 64 + "\n"
    doc = yamlio.load(text)
    v8 = dataclasses.replace(VERSION, version="8")
    yamlio.merge_owned(doc, deployment.owned_fields("deployment.yaml", v8,
                                                    DeploymentServing(kind="deployment", image=IMAGE)))
    after = yamlio.dump(doc).decode()
    containers = doc["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["model-server", "proxy"]
    env = {e["name"]: e["value"] for e in containers[0]["env"]}
    assert env["LOG_LEVEL"] == "debug" and env["MODEL_VERSION"] == "8"
    assert "args" not in containers[0] and "nvidia.com/gpu" not in containers[0]["resources"]["limits"]
    assert "# ours" in after


# ---------------------------------------------------------------------------------------------
# settings refused at config validation, at the line of the setting


@pytest.mark.parametrize(("serving", "line", "words"), [
    ("min_replicas: 0", "min_replicas: 0", "needs Knative: set deployment_mode: Serverless"),
    (f"kind: deployment\nimage: {IMAGE}\nmin_replicas: 0", "min_replicas: 0", "never scales below 1"),
    ("canary_percent: 10", "canary_percent: 10", "needs kind inferenceservice with deployment_mode: Serverless"),
    (f"kind: deployment\nimage: {IMAGE}\ncanary_percent: 10", "canary_percent: 10", "canary_percent"),
    ("autoscaling: {metric: rps, target: 5}", "autoscaling:", "metric 'rps' needs Knative's autoscaler"),
    (f"kind: deployment\nimage: {IMAGE}\nautoscaling: {{metric: concurrency, target: 5}}", "autoscaling:",
     "kind deployment scales with a Kubernetes HPA"),
    ("deployment_mode: Serverless\nautoscaling: {metric: cpu, target: 70}", "autoscaling:",
     "watches concurrency or rps"),
    ("kind: deployment", "serving:", "kind deployment needs image"),
    ("kind: deployment\nimage: ghcr.io/acme/server:latest", "image:", "is not pinned by digest"),
    (f"image: {IMAGE}", "image:", "image is for kind deployment"),
    (f"kind: deployment\nimage: {IMAGE}\ndeployment_mode: Serverless", "deployment_mode:", "KServe setting"),
    (f"kind: deployment\nimage: {IMAGE}\nruntime: kserve-mlserver", "runtime:", "KServe setting"),
    ("port: 9000", "port: 9000", "port is for kind deployment"),
    ("args: [serve]", "args:", "args is for kind deployment"),
    (f"kind: deployment\nimage: {IMAGE}\nmodel_format: sklearn", "model_format:", "model_format is a KServe"),
    (f"kind: deployment\nimage: {IMAGE}\nprotocol_version: v1", "protocol_version:", "protocol_version is a"),
    ("kind: knative", "kind: knative", "'inferenceservice' or 'deployment'"),
    ("deployment_mode: Standard", "deployment_mode:", "'Serverless' or 'RawDeployment'"),
    ("requests: {cpu: 2 cores}", "requests:", "is not a Kubernetes quantity"),
    ("requests: {cpu: '4'}", "serving:", "limits.cpu 2 is below requests.cpu 4"),
    ("gpus: -1", "gpus: -1", "greater than or equal to 0"),
])
def test_unsupported_settings_are_refused_where_they_are_written(tmp_path, serving, line, words):
    refused_at(write_config(tmp_path, serving), line, words)


@pytest.mark.parametrize("serving", [
    "deployment_mode: Serverless\nmin_replicas: 0\nmax_replicas: 3\ncanary_percent: 20\n"
    "autoscaling: {metric: rps, target: 50}",
    "gpus: 2\nrequests: {cpu: 2, memory: 8Gi}\nlimits: {cpu: 4, memory: 8Gi}\n"
    "autoscaling: {metric: memory, target: 80}",
    f"kind: deployment\nimage: {IMAGE}\nport: 8000\nargs: [serve]\nmin_replicas: 1\nmax_replicas: 5\n"
    "autoscaling: {metric: cpu, target: 60}",
])
def test_supported_combinations_load(tmp_path, serving):
    cfg = load_config(write_config(tmp_path, serving)).config.models["tiny"].serving
    files = layout.render_files("environments", VERSION, cfg, lambda p: None)
    assert validate.validate(files, root="environments", env="prod", settings=SETTINGS).ok


def test_each_kind_is_its_own_class_and_a_section_without_kind_is_an_inferenceservice(tmp_path):
    def serving_of(text: str):
        return load_config(write_config(tmp_path, text)).config.models["tiny"].serving

    assert type(serving_of("max_replicas: 3")) is InferenceServiceServing
    assert type(serving_of(f"kind: deployment\nimage: {IMAGE}")) is DeploymentServing
    assert "image" not in InferenceServiceServing.model_fields
    assert "deployment_mode" not in DeploymentServing.model_fields
    # a setting of the other kind and an error in this kind's own: both reported, each at its line
    path = write_config(tmp_path, f"kind: deployment\nimage: {IMAGE}\nruntime: x\ngpus: -1")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = path.read_text().splitlines()
    for setting, words in (("runtime:", "runtime is a KServe setting"), ("gpus:", "greater than or equal to 0")):
        number = next(i for i, text in enumerate(lines, 1) if text.strip().startswith(setting))
        assert any(f"{path}:{number}:" in m and words in m for m in str(err.value).splitlines()), str(err.value)


def test_the_json_schema_holds_one_definition_per_kind():
    import jsonschema

    from mlops_ci.config import json_schema

    schema = json_schema()
    defs = schema["$defs"]
    assert {"InferenceServiceServing", "DeploymentServing"} <= set(defs)
    assert defs["InferenceServiceServing"]["properties"]["kind"]["default"] == "inferenceservice"
    assert "kind" in defs["DeploymentServing"]["required"]
    assert "KServe modelFormat.name" in defs["InferenceServiceServing"]["properties"]["model_format"]["description"]
    assert defs["DeploymentServing"]["properties"]["args"]["default"] == []
    doc = yamlio.load((FIXTURES / "tiny" / ".mlops-ci.yaml").read_bytes())
    for serving, valid in (({}, True), ({"kind": "deployment", "image": IMAGE}, True), ({"image": IMAGE}, False),
                           ({"kind": "deployment", "image": IMAGE, "runtime": "x"}, False)):
        doc["models"]["tiny"]["serving"] = serving
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
        assert (not errors) == valid, (serving, errors)


# ---------------------------------------------------------------------------------------------
# the validator bites


def _with(doc: dict, dotted: str, value) -> dict:
    doc = yamlio.load(yamlio.dump(doc))
    *parents, last = dotted.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = value
    return doc


@pytest.mark.parametrize(("file", "field", "value", "check", "words"), [
    ("inferenceservice.yaml", "spec.predictor.minReplicas", "two", "crd", "is not of type 'integer'"),
    ("inferenceservice.yaml", "spec.predictor.timeout", "30s", "crd", "is not of type 'integer'"),
    ("inferenceservice.yaml", "spec.predictor.serviceAcountName", "x", "crd", "Additional properties"),
    ("inferenceservice.yaml", "spec.predictor.model.resources.limits.cpu", "2 cores", "crd", "does not match"),
    ("deployment.yaml", "spec.template.spec.containers.0.resources.limits.cpu", "2 cores", "quantity",
     "is not a Kubernetes quantity"),
    ("inferenceservice.yaml", "spec.predictor.model.resources.requests.memory", "64Gi", "quantity",
     "is above limits.memory"),
    ("inferenceservice.yaml", "metadata.labels.team", 7, "metadata", "not a string"),
    ("inferenceservice.yaml", "metadata.name", "9lives", "metadata", "starting with a letter"),
    ("deployment.yaml", "spec.template.spec.containers.0.imagePullPolicy", 3, "core", "is not of type"),
    ("deployment.yaml", "spec.replica", 2, "core", "Additional properties"),
    ("deployment.yaml", "spec.template.spec.containers.0.resources.requests.nvidia.com/gpu", "2", "quantity",
     "cannot be overcommitted"),
    ("hpa.yaml", "spec.maxReplicas", "many", "core", "is not of type"),
    ("service.yaml", "metadata.labels.tier", True, "metadata", "not a string"),
])
def test_validation_names_the_file_the_object_and_the_field(file, field, value, check, words):
    settings = VARIANTS["inferenceservice-gpu.yaml" if file == "inferenceservice.yaml" else "deployment.yaml"]
    files = rendered(settings)
    path = f"environments/prod/churn/{file}"
    if "nvidia.com/gpu" in field:
        doc = yamlio.load(files[path])
        doc["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = value
    else:
        doc = _with(yamlio.load(files[path]), field, value)
    files[path] = yamlio.dump(doc)
    report = validate.validate(files, root="environments", env="prod", settings=SETTINGS)
    mine = [p for p in report.problems if p.check == check]
    assert mine, report.problems
    where = field.replace(".0.", "[0].").removeprefix("metadata.")
    shown = "\n".join(map(str, mine))
    assert any(p.path == path and words in p.message for p in mine), shown
    assert where.split(".")[0] in shown, shown
    with pytest.raises(PromotionError, match="nothing was committed"):
        validate.check(files, root="environments", env="prod", settings=SETTINGS)


def test_kustomize_build_failure_is_a_problem():
    files = rendered({})
    kust = "environments/prod/churn/kustomization.yaml"
    files[kust] = files[kust].replace(b"- inferenceservice.yaml", b"- inferenceservice.yaml\n- missing.yaml")
    report = validate.validate(files, root="environments", env="prod", settings=SETTINGS)
    (problem,) = report.problems
    assert problem.check == "kustomize" and problem.path == "environments/prod"
    assert "missing.yaml" in problem.message


def test_without_crds_the_structural_check_still_runs_and_the_gap_is_reported():
    files = rendered({})
    path = "environments/prod/churn/inferenceservice.yaml"
    ok = validate.validate(files, root="environments", env="prod", settings=validate.Settings())
    assert ok.ok and any("MLOPS_CI_CRDS is not set" in s for s in ok.skipped)
    doc = _with(yamlio.load(files[path]), "spec.predictor.maxReplicas", "3")
    files[path] = yamlio.dump(_with(doc, "spec.predictor.model.resources.limits.memory", "4 GB"))
    bad = validate.validate(files, root="environments", env="prod", settings=validate.Settings())
    assert [(p.check, p.where) for p in bad.problems] == [
        ("structure", "spec.predictor.maxReplicas"), ("quantity", "spec.predictor.model.resources.limits.memory")]


def test_whole_contracts_folder_finds_the_kserve_crd():
    report = validate.validate(rendered({}), root="environments", env="prod",
                               settings=validate.Settings(crd_paths=(CONTRACTS,)))
    assert report.ok and "crd InferenceService (serving.kserve.io_inferenceservices.yaml)" in report.checked


def test_missing_kubectl_is_a_clear_error_unless_skipped(tmp_path):
    files = rendered({})
    missing = validate.Settings(crd_paths=(KSERVE_CRDS,), kustomize=str(tmp_path / "kubectl"))
    with pytest.raises(PromotionError, match="is not an executable.*install kubectl"):
        validate.validate(files, root="environments", env="prod", settings=missing)
    skipped = validate.Settings(crd_paths=(KSERVE_CRDS,), kustomize="skip")
    report = validate.validate(files, root="environments", env="prod", settings=skipped)
    assert report.ok and report.skipped == ["kustomize build of environments/prod: MLOPS_CI_KUSTOMIZE=skip"]
    kustomize = shutil.which("kustomize")
    if kustomize:  # the standalone binary is used the same way
        assert validate.kustomize_command(validate.Settings(kustomize=kustomize))[1] == "build"


def test_settings_come_from_the_environment(tmp_path):
    s = validate.Settings.from_env({"MLOPS_CI_CRDS": f"{tmp_path}/a{os.pathsep}{tmp_path}/b",
                                    "MLOPS_CI_KUSTOMIZE": "skip"})
    assert s.crd_paths == (tmp_path / "a", tmp_path / "b") and s.kustomize == "skip"
    assert validate.Settings.from_env({}) == validate.Settings()
    future = validate.Settings.from_env({"MLOPS_CI_KUBERNETES_VERSION": "9.99", "MLOPS_CI_KUSTOMIZE": "skip"})
    with pytest.raises(PromotionError, match="no schemas for Kubernetes 9.99.*MLOPS_CI_KUBERNETES_VERSION"):
        validate.validate(rendered({"kind": "deployment", "image": IMAGE}), root="environments", env="prod",
                          settings=future)


def test_a_document_that_is_not_an_object_is_a_problem():
    files = rendered({})
    path = "environments/prod/churn/inferenceservice.yaml"
    files[path] = files[path] + b"---\napiVersion: 1\nkind: [x]\n---\n- a list\n"
    report = validate.validate(files, root="environments", env="prod", settings=SETTINGS)
    assert [(p.check, p.path) for p in report.problems if p.check == "yaml"] == [("yaml", path)] * 2


def _types(schema: dict, path: tuple = ()):
    for name, sub in (schema.get("properties") or {}).items():
        yield path + (name,), sub.get("type")
        yield from _types(sub, path + (name,))


def test_structural_check_agrees_with_the_kserve_crd():
    """rules.ISVC_STRUCTURE (used where no CRD is at hand) types each field as the CRD does."""
    crd = load_crd_schema("kserve/serving.kserve.io_inferenceservices.yaml", "v1beta1")
    for path, kind in _types(rules.ISVC_STRUCTURE):
        node = crd
        for part in path:
            assert part in (node.get("properties") or {}), f"{'.'.join(path)} is not in the KServe CRD"
            node = node["properties"][part]
        if path[0] != "metadata":
            assert node.get("type") == kind, f"{'.'.join(path)}: CRD type {node.get('type')}, ours {kind}"
    enum = crd["properties"]["spec"]["properties"]["predictor"]["properties"]["scaleMetric"]["enum"]
    assert sorted(enum) == sorted(rules.SCALE_METRICS)


def test_without_a_local_checkout_the_build_reads_what_the_kustomizations_list():
    """A GitOps remote with no working copy: the kustomize tree is read file by file."""
    other = {"environments/prod/other/kustomization.yaml": b"resources:\n- configmap.yaml\n",
             "environments/prod/other/configmap.yaml":
                 b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata: {a: b}\n",
             "environments/prod/kustomization.yaml": b"resources:\n- other\n"}
    files = layout.render_files("environments", VERSION, InferenceServiceServing(), other.get)
    assert yamlio.load(files["environments/prod/kustomization.yaml"])["resources"] == ["other", "churn"]
    report = validate.validate(files, root="environments", env="prod", settings=SETTINGS, read=other.get)
    assert report.ok, report.problems
    del other["environments/prod/other/configmap.yaml"]
    report = validate.validate(files, root="environments", env="prod", settings=SETTINGS, read=other.get)
    assert [p.check for p in report.problems] == ["kustomize"] and "configmap.yaml" in report.problems[0].message


def test_a_crd_is_parsed_once_per_version_of_its_file(tmp_path, monkeypatch):
    """Parsing the KServe CRD takes about a second: each promotion in a new process reads the
    closed schema from the cache instead, until the file changes."""
    from mlops_ci.serving import crds

    monkeypatch.setenv("MLOPS_CI_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "crds"
    folder.mkdir()
    crd = folder / "isvc.yaml"
    shutil.copy(KSERVE_CRDS / "serving.kserve.io_inferenceservices.yaml", crd)
    index = crds.CrdIndex((folder,))
    isvc = kserve.render(VERSION, InferenceServiceServing())
    first, _ = index.validator(kserve.API_VERSION, kserve.KIND)
    assert list(first.iter_errors(isvc)) == [] and len(list((tmp_path / "cache" / "crds").glob("*.json"))) == 1

    def no_parsing(*args):
        raise AssertionError("the CRD was parsed again")

    crds._crd_schema.cache_clear()  # as a new process
    monkeypatch.setattr(crds, "_load_all", no_parsing)
    again, _ = index.validator(kserve.API_VERSION, kserve.KIND)
    assert again.schema == first.schema
    broken = dict(isvc, spec={"predictor": {"unknown": 1}})
    assert list(again.iter_errors(broken)), "the cached schema is still closed"
    # a new version of the file is parsed again
    crds._crd_schema.cache_clear()
    os.utime(crd, ns=(crd.stat().st_atime_ns, crd.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="parsed again"):
        index.validator(kserve.API_VERSION, kserve.KIND)
