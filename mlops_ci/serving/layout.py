"""The kustomize layout a promotion maintains in the GitOps repository.

    <gitops.path>/<env>/kustomization.yaml                resources: one folder per model
    <gitops.path>/<env>/<model>/kustomization.yaml         namespace + the model's resources
    <gitops.path>/<env>/<model>/inferenceservice.yaml      the served version

An Argo CD Application per environment (see manifests/) points at <gitops.path>/<env>.
Existing files are edited as ruamel.yaml round-trips; missing files are created.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from mlops_ci.config.schema import ServingConfig
from mlops_ci.serving import kserve, yamlio

KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}

Reader = Callable[[str], bytes | None]


def model_dir(root: str, env: str, model: str) -> str:
    return posixpath.join(root, env, model)


def render_files(root: str, v: kserve.ServedVersion, serving: ServingConfig, read: Reader) -> dict[str, bytes]:
    """New contents for every file the promotion of ``v`` touches (unchanged ones included)."""
    files: dict[str, bytes] = {}
    folder = model_dir(root, v.env, v.model)

    isvc_path = posixpath.join(folder, "inferenceservice.yaml")
    current = read(isvc_path)
    if current is None:
        files[isvc_path] = yamlio.dump(kserve.render(v, serving))
    else:
        doc = yamlio.load(current)
        yamlio.merge_owned(doc, kserve.owned_fields(v, serving))
        files[isvc_path] = yamlio.dump(doc)

    kust_path = posixpath.join(folder, "kustomization.yaml")
    current = read(kust_path)
    if current is None:
        files[kust_path] = yamlio.dump({**KUSTOMIZATION, "namespace": v.namespace,
                                        "resources": ["inferenceservice.yaml"]})
    else:
        files[kust_path] = _ensure_resource(current, "inferenceservice.yaml")

    env_path = posixpath.join(root, v.env, "kustomization.yaml")
    current = read(env_path)
    if current is None:
        files[env_path] = yamlio.dump({**KUSTOMIZATION, "resources": [v.model]})
    else:
        files[env_path] = _ensure_resource(current, v.model)
    return files


def _ensure_resource(current: bytes, entry: str) -> bytes:
    doc = yamlio.load(current)
    resources = doc.get("resources")
    if resources is None:
        doc["resources"] = [entry]
    elif entry not in resources:
        resources.append(entry)
    else:
        return current
    return yamlio.dump(doc)
