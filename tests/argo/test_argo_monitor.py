"""argo/monitor-cron.yaml: `mlops-ci monitor` on a schedule in the cluster.

Validated with manifest_support's validators against the upstream contracts in
../shared/contracts/ (schema.json's CronWorkflow, and the Workflow CRD for the Workflow it
creates: the contracts hold no CronWorkflow CRD). The DAG is walked as Argo would for each value
of `shards`: the default (1) runs exactly one `mlops-ci monitor --no-retrain` container, which
the real CLI parser accepts; the fan-out's sub-commands run only when shards > 1.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from manifest_support import load_all, schema_errors, set_field
from ruamel.yaml import YAML

from mlops_ci.cli.main import build_parser
from mlops_ci.config.monitoring import parse_duration

ROOT = Path(__file__).resolve().parents[2]
CRON = ROOT / "argo" / "monitor-cron.yaml"
SECRET = "mlops-ci-monitor"
PARAMETERS = ["repo", "revision", "config", "workdir", "model", "env", "window", "windows", "image", "shards",
              "mlflow-tracking-uri", "github-repository"]
# Argo's own variables (and the fan-out's) the template may use besides workflow.parameters
ARGO_VARIABLES = {"workflow.name", "workflow.creationTimestamp", "item", "inputs.parameters.shard",
                  "tasks.list-shards.outputs.parameters.shards"}
CREDENTIAL = re.compile(r"TOKEN|PASSWORD|SECRET|_KEY(_ID)?$|CONNECTION_STRING|CREDENTIAL", re.IGNORECASE)
FAN_OUT = {"shards", "profile", "merge"}  # sub-commands of `mlops-ci monitor` the fan-out calls


def cron() -> dict:
    (doc,) = load_all(CRON)
    return doc


def spec() -> dict:
    return cron()["spec"]["workflowSpec"]


def templates() -> dict[str, dict]:
    return {t["name"]: t for t in spec()["templates"]}


def params() -> dict[str, dict]:
    return {p["name"]: p for p in spec()["arguments"]["parameters"]}


def containers() -> dict[str, dict]:
    return {name: t["container"] for name, t in templates().items() if "container" in t}


def running(shards: str) -> list[str]:
    """The DAG's tasks that run for this value of `shards`: `when` is true and `depends` holds
    (a task that is skipped or omitted does not satisfy `<task>.Succeeded`)."""
    tasks = templates()[spec()["entrypoint"]]["dag"]["tasks"]
    done: list[str] = []
    for task in tasks:  # listed in dependency order
        when = task.get("when", "true").replace("{{workflow.parameters.shards}}", shards)
        match = re.fullmatch(r"\s*(\d+)\s*(==|>)\s*(\d+)\s*", when) if when != "true" else None
        assert when == "true" or match, f"{task['name']}: `when: {task['when']}` is not `shards == N` / `shards > N`"
        holds = True if match is None else (int(match[1]) == int(match[3]) if match[2] == "==" else
                                            int(match[1]) > int(match[3]))
        depends = task.get("depends")
        if depends is not None:
            (needed,) = re.fullmatch(r"([a-z-]+)\.Succeeded", depends).groups()
            holds = holds and needed in done
        if holds:
            done.append(task["name"])
    return done


def _substitute(values: list[str], shards: str = "1") -> list[str]:
    given = {"model": "churn", "env": "prod", "config": ".mlops-ci.yaml", "shards": shards,
             **{p: spec.get("value", "") for p, spec in params().items() if p in ("window", "windows")}}
    out = []
    for v in values:
        v = re.sub(r"\{\{workflow\.parameters\.([a-z-]+)\}\}", lambda m: given[m[1]], v)
        out.append(v.replace("{{workflow.creationTimestamp}}", "2026-12-06T06:17:03Z"))
    return out


# ---------------------------------------------------------------------------------------------
# the contract


def test_cron_workflow_matches_the_upstream_schemas() -> None:
    errors = schema_errors(cron())
    assert not errors, "\n".join(errors)
    assert "namespace" not in cron()["metadata"], "argo/ is applied into the namespace the user picks (-n)"


BROKEN = [
    # (dotted path, value, the check expected to refuse it, words in its message)
    ("spec.schedule", "17 6 * * *", "[schema.json]", "Additional properties are not allowed"),  # gone in v4
    ("spec.schedules", "17 6 * * *", "[schema.json]", "is not of type 'array'"),
    ("spec.startingDeadlineSeconds", "1h", "[schema.json]", "is not of type 'integer'"),
    ("spec.workflowSpec.activeDeadlineSeconds", "2h", "[crd]", "is not of type 'integer'"),
    ("spec.workflowSpec.templates.0.dag.tasks.0.dependz", "x", "[crd]", "Additional properties are not allowed"),
    ("spec.workflowSpec.podGC.strategy", {"x": 1}, "[crd]", "is not of type 'string'"),
    ("metadata.name", "Mlops_CI_Monitor", "[metadata]", "not a DNS label"),
]


@pytest.mark.parametrize(("field", "value", "check", "words"), BROKEN, ids=[f"{b[0]}:{b[2]}" for b in BROKEN])
def test_validators_refuse_a_broken_cron_workflow(field: str, value: Any, check: str, words: str) -> None:
    obj = copy.deepcopy(cron())
    set_field(obj, field, value)
    errors = schema_errors(obj)
    assert any(e.startswith(check) and words in e for e in errors), errors


# ---------------------------------------------------------------------------------------------
# schedule and limits


def test_runs_daily_one_at_a_time_and_starts_suspended() -> None:
    s = cron()["spec"]
    (schedule,) = s["schedules"]
    minute, hour, *rest = schedule.split()
    assert rest == ["*", "*", "*"] and 0 <= int(minute) < 60 and 0 <= int(hour) < 24, "daily"
    assert s["timezone"] == "UTC"
    assert s["concurrencyPolicy"] == "Forbid"
    assert 0 < s["startingDeadlineSeconds"] <= 24 * 3600
    assert s["successfulJobsHistoryLimit"] >= 1 and s["failedJobsHistoryLimit"] >= 1
    # installed with the training templates before its parameters are set: no failing daily run
    assert s["suspend"] is True
    wf = spec()
    assert wf["activeDeadlineSeconds"] > 0
    assert wf["ttlStrategy"]["secondsAfterSuccess"] < wf["ttlStrategy"]["secondsAfterFailure"]
    assert wf["podGC"]["strategy"] == "OnPodSuccess"


def test_parameters() -> None:
    p = params()
    assert list(p) == PARAMETERS
    required = {name for name, spec_ in p.items() if "value" not in spec_}
    assert required == {"repo", "model", "env"}
    parse_duration(p["window"]["value"])
    assert 1 <= int(p["windows"]["value"]) <= 366
    assert p["image"]["value"].startswith("ghcr.io/mlops-ci/mlops-ci")  # as manifests/monitor/receiver.yaml
    # `shards` is compared in `when` and reaches argv: a closed set
    assert p["shards"]["value"] == "1" and p["shards"]["enum"] == [str(i) for i in range(1, 65)]
    assert not [name for name in p if CREDENTIAL.search(name)], "no credential is a parameter"


def test_uses_only_declared_parameters() -> None:
    text = json.dumps(spec())
    used = set(re.findall(r"\{\{\s*([^}]*?)\s*\}\}", text))
    for ref in used - ARGO_VARIABLES:
        scope, _, name = ref.rpartition(".")
        assert scope == "workflow.parameters" and name in params(), f"{{{{{ref}}}}} is not declared"
    unused = {p for p in params() if f"{{{{workflow.parameters.{p}}}}}" not in text}
    assert not unused, unused


# ---------------------------------------------------------------------------------------------
# the default path and the fan-out


def test_default_path_runs_one_monitor_container_that_never_retrains() -> None:
    assert running("1") == ["monitor"]
    container = containers()["monitor"]
    assert container["command"] == ["mlops-ci"]
    args = container["args"]
    assert args[0] == "monitor" and args[1].startswith("--"), "the command that exists, no sub-command"
    assert "--no-retrain" in args
    for flag, value in (("--model", "{{workflow.parameters.model}}"), ("--env", "{{workflow.parameters.env}}"),
                        ("--until", "{{workflow.creationTimestamp}}")):
        assert args[args.index(flag) + 1] == value
    # the real CLI takes it, as Argo substitutes it
    parsed = build_parser().parse_args(_substitute(args))
    assert (parsed.command, parsed.action, parsed.no_retrain, parsed.model, parsed.env) == (
        "monitor", None, True, "churn", "prod")
    assert parsed.until.isoformat() == "2026-12-06T06:17:03+00:00"
    # and nothing else runs `mlops-ci monitor` without a fan-out sub-command
    plain = [name for name, c in containers().items() if c["args"][1:2] and c["args"][1] not in FAN_OUT]
    assert plain == ["monitor"]


@pytest.mark.parametrize("shards", ["2", "8", "64"])
def test_fan_out_runs_only_when_shards_is_above_one(shards: str) -> None:
    assert running(shards) == ["list-shards", "profile-shard", "merge"]
    tasks = {t["name"]: t for t in templates()[spec()["entrypoint"]]["dag"]["tasks"]}
    profile = tasks["profile-shard"]
    assert profile["withParam"] == "{{tasks.list-shards.outputs.parameters.shards}}"
    assert profile["arguments"]["parameters"] == [{"name": "shard", "value": "{{item}}"}]
    t = templates()
    assert [o["name"] for o in t["list-shards"]["outputs"]["parameters"]] == ["shards"]
    for name, sub in (("list-shards", "shards"), ("profile-shard", "profile"), ("merge", "merge")):
        args = t[name]["container"]["args"]
        assert args[:2] == ["monitor", sub] and t[name]["container"]["command"] == ["mlops-ci"]
        assert args[args.index("--until") + 1] == "{{workflow.creationTimestamp}}", "every pod: the same windows"
    assert "--no-retrain" in t["merge"]["container"]["args"]
    # each shard's profile lands under one prefix, which merge reads back as a folder
    (out,) = t["profile-shard"]["outputs"]["artifacts"]
    (inp,) = [a for a in t["merge"]["inputs"]["artifacts"] if a["name"] == "profiles"]
    assert out["s3"]["key"] == "{{workflow.name}}/profiles/{{inputs.parameters.shard}}.json"
    assert out["s3"]["key"].startswith(inp["s3"]["key"] + "/")
    profile_args = t["profile-shard"]["container"]["args"]
    assert profile_args[profile_args.index("--out") + 1] == out["path"]
    merge_args = t["merge"]["container"]["args"]
    assert merge_args[merge_args.index("--profiles") + 1] == inp["path"]


def test_the_fan_out_commands_are_the_cli_s_and_documented() -> None:
    readme = (ROOT / "argo" / "README.md").read_text(encoding="utf-8")
    assert "`monitor-cron.yaml`" in readme
    section = readme[readme.index("## mlops-ci-monitor"):]
    for sub in FAN_OUT:
        assert f"mlops-ci monitor {sub}" in section
    t = templates()
    for name, sub in (("list-shards", "shards"), ("profile-shard", "profile"), ("merge", "merge")):
        args = [a.replace("{{inputs.parameters.shard}}", "1") for a in _substitute(t[name]["container"]["args"], "3")]
        parsed = build_parser().parse_args(args)
        assert (parsed.command, parsed.action) == ("monitor", sub)


# ---------------------------------------------------------------------------------------------
# credentials and the pod


def test_credentials_come_only_from_the_secret() -> None:
    for name, container in containers().items():
        assert "envFrom" not in container, f"{name}: every variable named, each from its key"
        for entry in container["env"]:
            if "valueFrom" in entry:
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref == {"name": SECRET, "key": entry["name"], "optional": True}, entry
            else:
                value = entry["value"]
                assert not CREDENTIAL.search(entry["name"]), entry
                # parameters and fixed settings only, never a token or a URL's userinfo
                assert not re.search(r"(ghp_|gho_|ghs_|github_pat_|AKIA)[A-Za-z0-9]", value), entry
                assert "@" not in value, f"{entry['name']}: no userinfo in a URL"
        secrets = {e["name"] for e in container["env"] if "valueFrom" in e}
        assert {"MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "GITHUB_TOKEN", "MLOPS_CI_GITOPS_TOKEN",
                "AWS_SECRET_ACCESS_KEY"} <= secrets
        assert {e["name"] for e in container["env"] if CREDENTIAL.search(e["name"])} <= secrets
        # git reads a private GitOps repository with the token through a helper that names the
        # variable (no shell of ours: git's GIT_CONFIG_* variables set it)
        git = {e["name"]: e.get("value") for e in container["env"] if e["name"].startswith("GIT_CONFIG_")}
        assert git["GIT_CONFIG_COUNT"] == "1" and git["GIT_CONFIG_KEY_0"] == "credential.https://github.com.helper"
        assert '"password=$MLOPS_CI_GITOPS_TOKEN"' in git["GIT_CONFIG_VALUE_0"]
        assert "$(" not in git["GIT_CONFIG_VALUE_0"], "Kubernetes would expand $(VAR) itself"
    text = json.dumps(spec())
    for ref in re.findall(r'"secretKeyRef": \{[^}]*\}', text):
        assert f'"name": "{SECRET}"' in ref


def test_pods_run_unprivileged_without_a_shell() -> None:
    wf = spec()
    rbac = {d["kind"]: d for d in load_all(ROOT / "argo" / "rbac.yaml")}
    assert wf["serviceAccountName"] == rbac["ServiceAccount"]["metadata"]["name"]
    pod = wf["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 1001
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    for name, t in templates().items():
        assert "script" not in t, f"{name} interpolates into a script; use container args"
        if "container" not in t:
            continue
        c = t["container"]
        assert c["command"] == ["mlops-ci"] and c["image"] == "{{workflow.parameters.image}}"
        assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        (source,) = [a for a in t["inputs"]["artifacts"] if a["name"] == "source"]
        assert source["path"] == "/workspace/src"
        assert source["git"] == {"repo": "{{workflow.parameters.repo}}", "revision": "{{workflow.parameters.revision}}"}
        assert c["workingDir"] == "/workspace/src/{{workflow.parameters.workdir}}"


def test_the_readme_patch_sets_the_parameters_and_resumes_it(tmp_path: Path) -> None:
    """The overlay argo/README.md shows, built with kustomize against this folder."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    readme = (ROOT / "argo" / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)
                if "kind: CronWorkflow, name: mlops-ci-monitor" in b]
    overlay = YAML(typ="safe").load(re.sub(r"^  ", "", block, flags=re.MULTILINE))
    shutil.copytree(ROOT / "argo", tmp_path / "argo")  # kustomize takes relative paths only
    overlay["resources"] = ["../argo"]
    (tmp_path / "overlay").mkdir()
    (tmp_path / "overlay" / "kustomization.yaml").write_text(json.dumps(overlay), encoding="utf-8")
    proc = subprocess.run([kubectl, "kustomize", str(tmp_path / "overlay")], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (built,) = [d for d in YAML(typ="safe").load_all(proc.stdout)
                if d and d["kind"] == "CronWorkflow" and d["metadata"]["name"] == "mlops-ci-monitor"]
    assert built["spec"]["suspend"] is False
    values = {p["name"]: p.get("value") for p in built["spec"]["workflowSpec"]["arguments"]["parameters"]}
    assert list(values) == PARAMETERS, "the patch replaced the parameters it names, at their places"
    assert (values["repo"], values["model"], values["env"]) == ("https://github.com/acme/churn.git", "churn", "prod")
    assert not schema_errors(built)
