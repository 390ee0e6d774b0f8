"""argo/: the training WorkflowTemplate."""

from __future__ import annotations

import json
import re

from manifest_support import ROOT, load_one
from ruamel.yaml import YAML

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
