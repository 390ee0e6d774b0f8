"""The kustomize layout a promotion maintains in the GitOps repository.

    <gitops.path>/<env>/kustomization.yaml                resources: one folder per model
    <gitops.path>/<env>/<model>/kustomization.yaml         namespace + the model's resources
    <gitops.path>/<env>/<model>/inferenceservice.yaml      the served version (serving.kind inferenceservice)
    <gitops.path>/<env>/<model>/deployment.yaml            or, for serving.kind deployment, the served
    <gitops.path>/<env>/<model>/service.yaml               version in a Deployment, its Service and
    <gitops.path>/<env>/<model>/hpa.yaml                   its HorizontalPodAutoscaler

An Argo CD Application per environment (see manifests/) points at <gitops.path>/<env>.
Existing files are edited as ruamel.yaml round-trips; missing files are created. When a model
changes kind, the other kind's files are deleted (None) and leave its kustomization.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence

from mlops_ci.config.schema import InferenceServiceServing, ServingConfig
from mlops_ci.serving import deployment, kserve, yamlio

KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
ISVC_FILE = "inferenceservice.yaml"
FILES = {"inferenceservice": (ISVC_FILE,), "deployment": deployment.FILES}

Reader = Callable[[str], bytes | None]


def model_dir(root: str, env: str, model: str) -> str:
    return posixpath.join(root, env, model)


def workload_path(root: str, env: str, model: str, serving: ServingConfig) -> str:
    """The file that pins the served version (its mlops-ci.dev/* annotations): rollback reads it."""
    return posixpath.join(model_dir(root, env, model), FILES[serving.kind][0])


def pinned(data: bytes | None) -> tuple[str, str, str] | None:
    """(version, artifact URI, digest) that a workload manifest we wrote pins (its mlops-ci.dev/*
    annotations); None if there is no such file or it pins no version."""
    if data is None:
        return None
    doc = yamlio.load(data)
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    notes = (meta.get("annotations") if isinstance(meta, dict) else None) or {}
    version = notes.get(f"{kserve.LABEL_PREFIX}/model-version")
    if not version:
        return None
    return (str(version), str(notes.get(f"{kserve.LABEL_PREFIX}/artifact-uri", "")),
            str(notes.get(f"{kserve.LABEL_PREFIX}/digest", "")))


def _render(name: str, v: kserve.ServedVersion, serving: ServingConfig, track: str | None = None):
    if isinstance(serving, InferenceServiceServing):
        return kserve.render(v, serving, track=track), kserve.owned_fields(v, serving, track=track)
    return deployment.render(name, v, serving), deployment.owned_fields(name, v, serving)


def render_files(root: str, v: kserve.ServedVersion, serving: ServingConfig,
                 read: Reader, *, rollout: bool = False) -> dict[str, bytes | None]:
    """New contents for every file the promotion of ``v`` touches (unchanged ones included).

    None: a file to delete (the other kind's, after a change of ``serving.kind``). ``rollout``: the
    environment rolls versions out step by step (its predictor is labelled as the primary).
    """
    files: dict[str, bytes | None] = {}
    folder = model_dir(root, v.env, v.model)
    wanted = FILES[serving.kind]
    for name in wanted:
        path = posixpath.join(folder, name)
        current = read(path)
        fresh, owned = _render(name, v, serving, "primary" if rollout else None)
        if current is None:
            files[path] = yamlio.dump(fresh)
        else:
            doc = yamlio.load(current)
            yamlio.drop_unowned(doc, owned, kserve.LABEL_PREFIX + "/")
            yamlio.merge_owned(doc, owned)
            files[path] = yamlio.dump(doc)
    # after a change of kind, the other kind's files are the ones its kustomization still lists
    kust_path = posixpath.join(folder, "kustomization.yaml")
    current = read(kust_path)
    listed = _resources(current)
    stale = [name for kind, names in FILES.items() if kind != serving.kind for name in names if name in listed]
    for name in stale:
        if read(posixpath.join(folder, name)) is not None:
            files[posixpath.join(folder, name)] = None
    if current is None:
        files[kust_path] = yamlio.dump({**KUSTOMIZATION, "namespace": v.namespace, "resources": list(wanted)})
    else:
        files[kust_path] = _ensure_resources(current, list(wanted), remove=stale)

    env_path = posixpath.join(root, v.env, "kustomization.yaml")
    current = read(env_path)
    if current is None:
        files[env_path] = yamlio.dump({**KUSTOMIZATION, "resources": [v.model]})
    else:
        files[env_path] = _ensure_resources(current, [v.model])
    return files


def _resources(current: bytes | None) -> list[str]:
    doc = yamlio.load(current) if current is not None else None
    entries = doc.get("resources") if isinstance(doc, dict) else None
    return [e for e in entries if isinstance(e, str)] if isinstance(entries, list) else []


def _ensure_resources(current: bytes, entries: list[str], *, remove: Sequence[str] = ()) -> bytes:
    doc = yamlio.load(current)
    resources = doc.get("resources")
    changed = False
    if resources is None:
        doc["resources"] = resources = []
        changed = True
    for entry in remove:
        while entry in resources:
            resources.remove(entry)
            changed = True
    for entry in entries:
        if entry not in resources:
            yamlio.append_item(resources, entry)
            changed = True
    return yamlio.dump(doc) if changed else current
