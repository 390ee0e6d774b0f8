"""Every manifest and kustomization of manifests/ and argo/ against the upstream schemas, and the validators
biting: each broken copy of a real manifest is refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from manifest_support import (
    APP,
    APPSET,
    ARGO_JSON_SCHEMA,
    CRDS,
    DEPLOYMENT,
    DNS_LABEL,
    EXPECTED_FILES,
    HPA,
    ISVC,
    KUSTOMIZATION,
    PROJECT,
    ROOT,
    SERVICE_ACCOUNT,
    WT,
    contracts_dir,
    gvk,
    kustomization_files,
    load_all,
    load_one,
    manifest_files,
    rel,
    resource_files,
    schema_errors,
)

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
# ---------------------------------------------------------------------------------------------
# the validators bite: each broken copy of a real manifest must be refused


_DELETE = object()

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
