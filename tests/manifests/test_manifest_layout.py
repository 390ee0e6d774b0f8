"""manifests/: the layout a promotion writes (and its Deployment alternative), and the Argo CD apps that
sync it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from manifest_support import (
    ALTERNATIVE,
    DEPLOYMENT_FILES,
    ENVIRONMENTS,
    MODEL,
    PROJECT,
    ROOT,
    load_all,
    load_one,
    schema_errors,
)
from ruamel.yaml import YAML

# ---------------------------------------------------------------------------------------------
# manifests/: the layout a promotion writes, and the Argo CD apps that sync it



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
