"""manifests/ and argo/ as `kubectl kustomize` builds them (what Argo CD applies), and the Applications the
ApplicationSet generates."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from manifest_support import (
    ALTERNATIVE,
    APPSET,
    ENVIRONMENTS,
    MODEL,
    PROJECT,
    ROOT,
    kustomization_files,
    load_one,
    rel,
    schema_errors,
)
from ruamel.yaml import YAML

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
