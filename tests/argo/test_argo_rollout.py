"""argo/rollout-advance.yaml: `mlops-ci rollout advance` in a loop in the cluster, and the suspended
CronWorkflow that starts it.

Validated with manifest_support's validators against the upstream contracts in
../shared/contracts/ (the WorkflowTemplate CRD and schema.json; schema.json's CronWorkflow and the
Workflow CRD for the Workflow it creates). The loop's two containers are parsed by the real CLI
parser as Argo substitutes them, and its one decision ("again or stop") is evaluated on what the
real `mlops-ci rollout status --json` prints, with the rollout stage stubbed. Argo itself does not
run here: the `when` expression is evaluated by a model of expr's `contains`, `asInt` and `<`,
which the test pins to the exact expression text.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from manifest_support import load_all, schema_errors, set_field
from ruamel.yaml import YAML

from mlops_ci.cli.main import build_parser, main
from mlops_ci.records.rollout import RolloutRecord

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "argo" / "rollout-advance.yaml"
TEMPLATE, CRON = "mlops-ci-rollout-advance", "mlops-ci-rollout"
SECRET = "mlops-ci-rollout"
PARAMETERS = ["repo", "revision", "config", "workdir", "env", "interval", "rounds", "image", "mlflow-tracking-uri",
              "github-repository"]
REQUIRED = {"repo", "env", "image"}
CREDENTIAL = re.compile(r"TOKEN|PASSWORD|SECRET|_KEY(_ID)?$|CONNECTION_STRING|CREDENTIAL", re.IGNORECASE)
# the one decision the loop makes: go round again while some model's rollout waits, within `rounds`
AGAIN = ("{{=steps.status.outputs.result contains '\"action\": \"wait\"' && "
         "asInt(inputs.parameters.round) < asInt(workflow.parameters.rounds)}}")
ARGO_MAX_DEPTH = 100  # workflow/controller: maxAllowedStackDepth, nested template calls


def docs() -> dict[str, dict]:
    return {d["kind"]: d for d in load_all(FILE)}


def template() -> dict:
    return docs()["WorkflowTemplate"]


def spec() -> dict:
    return template()["spec"]


def templates() -> dict[str, dict]:
    return {t["name"]: t for t in spec()["templates"]}


def params() -> dict[str, dict]:
    return {p["name"]: p for p in spec()["arguments"]["parameters"]}


def containers() -> dict[str, dict]:
    return {name: t["container"] for name, t in templates().items() if "container" in t}


def _substitute(values: list[str]) -> list[str]:
    given = {"env": "prod", "config": ".mlops-ci.yaml"}
    return [re.sub(r"\{\{workflow\.parameters\.([a-z-]+)\}\}", lambda m: given[m[1]], v) for v in values]


# ---------------------------------------------------------------------------------------------
# the contract


def test_both_objects_match_the_upstream_schemas() -> None:
    found = docs()
    assert sorted(found) == ["CronWorkflow", "WorkflowTemplate"]
    assert (found["WorkflowTemplate"]["metadata"]["name"], found["CronWorkflow"]["metadata"]["name"]) == (
        TEMPLATE, CRON)
    for kind, obj in found.items():
        errors = schema_errors(obj)
        assert not errors, f"{kind}:\n  " + "\n  ".join(errors)
        assert "namespace" not in obj["metadata"], "argo/ is applied into the namespace the user picks (-n)"
    kustomization = YAML(typ="safe").load((ROOT / "argo" / "kustomization.yaml").read_text(encoding="utf-8"))
    assert FILE.name in kustomization["resources"]


BROKEN = [
    # (kind, dotted path, value, the check expected to refuse it, words in its message)
    ("WorkflowTemplate", "spec.activeDeadlineSeconds", "12h", "[crd]", "is not of type 'integer'"),
    ("WorkflowTemplate", "spec.templates.0.steps.0.0.whenn", "x", "[crd]", "Additional properties are not allowed"),
    ("WorkflowTemplate", "spec.templates.1.suspend.duration", 300, "[crd]", "is not of type 'string'"),
    ("WorkflowTemplate", "spec.templates.2.retryStrategy.expresion", "x", "[crd]",
     "Additional properties are not allowed"),
    ("CronWorkflow", "spec.schedules", "*/10 * * * *", "[schema.json]", "is not of type 'array'"),
    ("CronWorkflow", "spec.workflowSpec.workflowTemplateRef.nam", "x", "[crd]",
     "Additional properties are not allowed"),
    ("CronWorkflow", "metadata.name", "Mlops_CI_Rollout", "[metadata]", "not a DNS label"),
]


@pytest.mark.parametrize(("kind", "field", "value", "check", "words"), BROKEN,
                         ids=[f"{b[0]}:{b[1]}" for b in BROKEN])
def test_validators_refuse_a_broken_copy(kind: str, field: str, value: Any, check: str, words: str) -> None:
    obj = copy.deepcopy(docs()[kind])
    set_field(obj, field, value)
    errors = schema_errors(obj)
    assert any(e.startswith(check) and words in e for e in errors), errors


def test_parameters() -> None:
    p = params()
    assert list(p) == PARAMETERS
    assert {name for name, spec_ in p.items() if "value" not in spec_} == REQUIRED
    # `rounds` is compared in `when`: a closed set, and each round nests one template call deeper
    assert p["rounds"]["enum"] == [str(i) for i in range(1, 91)] and p["rounds"]["value"] in p["rounds"]["enum"]
    assert int(p["rounds"]["enum"][-1]) + 2 < ARGO_MAX_DEPTH, "the entry round, the deepest round and its pod"
    # seconds, or a Go duration (Argo's suspend duration)
    assert re.fullmatch(r"\d+|(\d+(h|m|s))+", p["interval"]["value"])
    assert not [name for name in p if CREDENTIAL.search(name)], "no credential is a parameter"
    # the deadline is a backstop the defaults never reach: every round waits `interval` and runs two pods
    rounds, interval = int(p["rounds"]["value"]), int(p["interval"]["value"])
    assert rounds * (interval + 2 * 120) < spec()["activeDeadlineSeconds"]


def test_uses_only_declared_parameters() -> None:
    text = json.dumps(spec())
    simple = set(re.findall(r"\{\{\s*([^=}][^}]*?)\s*\}\}", text))
    for ref in simple:
        scope, _, name = ref.rpartition(".")
        assert scope == "workflow.parameters" and name in params(), f"{{{{{ref}}}}} is not declared"
    # expression tags read only the status step's stdout, the round and `rounds`
    expressions = re.findall(r"\{\{=(.*?)\}\}", json.dumps(spec(), ensure_ascii=False).replace('\\"', '"'))
    identifiers = {i for e in expressions for i in re.findall(r"[a-z]+(?:\.[a-z-]+)+", re.sub(r"'[^']*'", "", e))}
    assert identifiers == {"steps.status.outputs.result", "inputs.parameters.round", "workflow.parameters.rounds"}
    unused = {p for p in params() if f"{{{{workflow.parameters.{p}}}}}" not in text} - {"rounds"}
    assert not unused, unused


# ---------------------------------------------------------------------------------------------
# the loop


def test_the_loop_advances_then_asks_status_and_goes_round_again_only_while_a_rollout_waits() -> None:
    s = spec()
    assert s["entrypoint"] == "loop"
    loop = templates()["loop"]
    assert loop["inputs"]["parameters"] == [{"name": "round", "value": "1"}]
    groups = loop["steps"]
    assert [[step["name"] for step in group] for group in groups] == [["advance"], ["status"], ["wait"], ["again"]]
    (advance,), (status,), (wait,), (again,) = groups
    assert (advance["template"], status["template"], wait["template"], again["template"]) == (
        "advance", "status", "wait", "loop")
    assert "when" not in advance and "when" not in status
    assert wait["when"] == again["when"] == AGAIN
    assert again["arguments"]["parameters"] == [{"name": "round", "value": "{{=asInt(inputs.parameters.round) + 1}}"}]
    # waiting is Argo's own: no pod, no shell
    assert templates()["wait"] == {"name": "wait", "suspend": {"duration": "{{workflow.parameters.interval}}"}}
    assert set(templates()) == {"loop", "wait", "advance", "status"}


def test_the_containers_run_the_cli_s_rollout_advance_and_status() -> None:
    c = containers()
    assert set(c) == {"advance", "status"}
    for name in c:
        assert c[name]["command"] == ["mlops-ci"]
        parsed = build_parser().parse_args(_substitute(c[name]["args"]))
        assert (parsed.command, parsed.action, parsed.env, str(parsed.config), parsed.model) == (
            "rollout", name, "prod", "/workspace/src/.mlops-ci.yaml", None), "every model of the environment"
        assert not parsed.force and not parsed.dry_run and parsed.reason is None
        assert parsed.json is (name == "status"), "status prints JSON for the decision; advance prints its log"
    assert c["advance"]["args"][:2] == ["rollout", "advance"] and c["status"]["args"][:2] == ["rollout", "status"]


def test_only_a_failed_source_is_tried_again() -> None:
    for name in ("advance", "status"):
        retry = templates()[name]["retryStrategy"]
        assert retry["expression"] == "asInt(lastRetry.exitCode) == 5", "exit 1 (aborted) fails the Workflow"
        assert int(retry["limit"]) <= 3 and retry["backoff"]["duration"]


def _again(stdout: str, round_: int, rounds: int) -> bool:
    """AGAIN as expr evaluates it: `a contains b` is a substring test, asInt parses the number."""
    match = re.fullmatch(r"\{\{=steps\.status\.outputs\.result contains '([^']*)' && "
                         r"asInt\(inputs\.parameters\.round\) < asInt\(workflow\.parameters\.rounds\)\}\}", AGAIN)
    assert match
    return match[1] in stdout and round_ < rounds


def _status_stdout(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                   actions: dict[str, str], reason: str = "") -> str:
    """What `mlops-ci rollout status --env prod --json` prints (the container's argv, the real command),
    with the workspace and the rollout stage stubbed to give each model the action given."""
    import mlops_ci.commands._common as common
    import mlops_ci.stages.rollout as stage
    from mlops_ci import pipeline

    ws = SimpleNamespace(env={}, environment=lambda env: env, config=SimpleNamespace(models=dict.fromkeys(actions)))
    monkeypatch.setattr(common, "workspace", lambda args: ws)
    import contextlib

    # the command reads every model's state from one checkout of the GitOps repository: an empty one here
    gitops = SimpleNamespace(checkout=contextlib.nullcontext)
    monkeypatch.setattr(pipeline, "default_backends", lambda ws: SimpleNamespace(tracking=None, gitops=gitops))

    def advance(ws, model, env, *, act, force_reason, **kwargs):
        assert act is False and force_reason is None, "status changes nothing"
        return RolloutRecord(model=model, env=env, action=actions[model], version="3", step="step 1/3",
                             reason=reason or f"{model}: {actions[model]}")

    monkeypatch.setattr(stage, "advance", advance)
    capsys.readouterr()
    assert main(_substitute(containers()["status"]["args"])) == 0
    out = capsys.readouterr().out
    json.loads(out)  # nothing but the JSON on stdout: it is the step's `outputs.result`
    return out


DECISIONS = [
    # (each model's action as status reports it, again?)
    ({"churn": "wait"}, True),
    ({"churn": "none"}, False),
    ({"churn": "held"}, False),  # a person decides
    ({"churn": "none", "fraud": "wait"}, True),  # several models: a list of records
    ({"churn": "held", "fraud": "none"}, False),
]


@pytest.mark.parametrize(("actions", "again"), DECISIONS, ids=[json.dumps(a) for a, _ in DECISIONS])
def test_the_decision_on_the_real_status_output(monkeypatch, capsys, actions: dict[str, str], again: bool) -> None:
    out = _status_stdout(monkeypatch, capsys, actions)
    assert _again(out, 1, 72) is again
    assert _again(out, 72, 72) is False, "never past `rounds`"


def test_a_reason_that_quotes_the_marker_does_not_decide(monkeypatch, capsys) -> None:
    out = _status_stdout(monkeypatch, capsys, {"churn": "none"}, reason='no rollout; "action": "wait" is not one')
    assert r'\"action\": \"wait\"' in out, "JSON escapes the quotes inside a string"
    assert _again(out, 1, 72) is False


# ---------------------------------------------------------------------------------------------
# credentials and the pods


def test_credentials_come_only_from_the_secret() -> None:
    for name, container in containers().items():
        assert "envFrom" not in container, f"{name}: every variable named, each from its key"
        for entry in container["env"]:
            if "valueFrom" in entry:
                assert entry["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": entry["name"], "optional": True}
            else:
                assert not CREDENTIAL.search(entry["name"]), entry
                assert not re.search(r"(ghp_|gho_|ghs_|github_pat_|AKIA)[A-Za-z0-9]", entry["value"]), entry
                assert "@" not in entry["value"], f"{entry['name']}: no userinfo in a URL"
        secrets = {e["name"] for e in container["env"] if "valueFrom" in e}
        assert {e["name"] for e in container["env"] if CREDENTIAL.search(e["name"])} <= secrets
        common = {"ARGOCD_TOKEN", "PROMETHEUS_TOKEN", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
                  "MLFLOW_TRACKING_PASSWORD", "MLOPS_CI_GITOPS_TOKEN"}
        # only advance marks the GitHub Deployment; status changes nothing
        assert secrets == common | ({"GITHUB_TOKEN"} if name == "advance" else set()), name
        git = {e["name"]: e.get("value") for e in container["env"] if e["name"].startswith("GIT_CONFIG_")}
        assert git["GIT_CONFIG_COUNT"] == "1" and git["GIT_CONFIG_KEY_0"] == "credential.https://github.com.helper"
        assert '"password=$MLOPS_CI_GITOPS_TOKEN"' in git["GIT_CONFIG_VALUE_0"]
        assert "$(" not in git["GIT_CONFIG_VALUE_0"], "Kubernetes would expand $(VAR) itself"


def test_pods_run_unprivileged_without_a_shell() -> None:
    s = spec()
    rbac = {d["kind"]: d for d in load_all(ROOT / "argo" / "rbac.yaml")}
    assert s["serviceAccountName"] == rbac["ServiceAccount"]["metadata"]["name"]
    pod = s["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 1001
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert s["activeDeadlineSeconds"] > 0
    assert s["ttlStrategy"]["secondsAfterSuccess"] < s["ttlStrategy"]["secondsAfterFailure"]
    assert s["podGC"]["strategy"] == "OnPodSuccess"
    for name, t in templates().items():
        assert "script" not in t, f"{name} interpolates into a script; use container args"
        if "container" not in t:
            continue
        c = t["container"]
        assert c["image"] == "{{workflow.parameters.image}}"
        assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        (source,) = t["inputs"]["artifacts"]
        assert source["path"] == "/workspace/src"
        assert source["git"] == {"repo": "{{workflow.parameters.repo}}", "revision": "{{workflow.parameters.revision}}"}
        assert c["workingDir"] == "/workspace/src/{{workflow.parameters.workdir}}"


# ---------------------------------------------------------------------------------------------
# the CronWorkflow


def test_the_cron_workflow_starts_the_loop_one_at_a_time_and_is_installed_suspended() -> None:
    cron = docs()["CronWorkflow"]["spec"]
    (schedule,) = cron["schedules"]
    assert re.fullmatch(r"\*/\d+ \* \* \* \*", schedule)
    assert cron["suspend"] is True and cron["concurrencyPolicy"] == "Forbid" and cron["timezone"] == "UTC"
    assert 0 < cron["startingDeadlineSeconds"] <= 3600
    wf = cron["workflowSpec"]
    assert wf["workflowTemplateRef"] == {"name": TEMPLATE}
    assert set(wf) == {"workflowTemplateRef", "arguments"}, "everything else comes from the template"
    # it names the parameters the template leaves without a value, for the patch to set
    assert {p["name"] for p in wf["arguments"]["parameters"]} == REQUIRED


def test_the_readme_documents_it_and_its_patch_sets_the_parameters(tmp_path: Path) -> None:
    readme = (ROOT / "argo" / "README.md").read_text(encoding="utf-8")
    assert "`rollout-advance.yaml`" in readme
    section = readme[readme.index("## mlops-ci-rollout-advance"):]
    assert "mlops-ci rollout advance" in section and "mlops-ci rollout status" in section
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)
                if f"kind: CronWorkflow, name: {CRON}" in b]
    overlay = YAML(typ="safe").load(block)
    shutil.copytree(ROOT / "argo", tmp_path / "argo")  # kustomize takes relative paths only
    overlay["resources"] = ["../argo"]
    (tmp_path / "overlay").mkdir()
    (tmp_path / "overlay" / "kustomization.yaml").write_text(json.dumps(overlay), encoding="utf-8")
    proc = subprocess.run([kubectl, "kustomize", str(tmp_path / "overlay")], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (built,) = [d for d in YAML(typ="safe").load_all(proc.stdout)
                if d and d["kind"] == "CronWorkflow" and d["metadata"]["name"] == CRON]
    assert built["spec"]["suspend"] is False
    values = {p["name"]: p.get("value") for p in built["spec"]["workflowSpec"]["arguments"]["parameters"]}
    assert set(values) == REQUIRED and all(values.values()), values
    assert "@sha256:" in values["image"], "the image by digest"
    assert not schema_errors(built)
