"""workflows/monitor.yml: `mlops-ci monitor` on a schedule, in two jobs with two tokens.

The rules every workflow follows (pins, no expression in `run:`, actionlint, zizmor, the caller
snippet in workflows/README.md) are checked by test_workflow_rules.py, test_workflow_security.py
and test_workflows.py. These tests pin down this one: its inputs and the caller's triggers, each
job's exact permissions, that retraining runs only when the monitor job asks for it and for the
same windows, and the command lines its scripts run (executed here with bash and a stand-in
`mlops-ci` that records its argv, which the real CLI parser then reads).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from mlops_ci.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "workflows" / "monitor.yml"
README = ROOT / "workflows" / "README.md"
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"  # as action.yml pins it
UPLOAD = "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02"
REGISTRY = {f"MLFLOW_TRACKING_{n.upper()}": f"${{{{ secrets.mlflow-tracking-{n} }}}}"
            for n in ("uri", "token", "username", "password")}
UNTIL = "${{ needs.monitor.outputs.until }}"


def load() -> dict:
    return YAML(typ="safe").load(WORKFLOW.read_text(encoding="utf-8"))


def step(job: dict, name: str) -> dict:
    (found,) = [s for s in job["steps"] if s.get("name") == name]
    return found


def caller() -> dict:
    """The caller workflow workflows/README.md tells users to copy."""
    blocks = re.findall(r"```ya?ml\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    found = [YAML(typ="safe").load(b) for b in blocks if "workflows/monitor.yml@" in b]
    assert len(found) == 1, "workflows/README.md shows one caller of monitor.yml"
    return found[0]


# ---------------------------------------------------------------------------------------------
# triggers and inputs


def test_it_is_called_and_its_caller_runs_daily_and_by_hand() -> None:
    doc = load()
    assert set(doc["on"]) == {"workflow_call"}
    inputs = doc["on"]["workflow_call"]["inputs"]
    for name in ("model", "env", "window", "windows", "logs"):
        assert inputs[name]["type"] == "string" and inputs[name]["default"] == "", name  # empty: the config's
        assert not inputs[name].get("required", False), name
    assert set(doc["on"]["workflow_call"]["secrets"]) == {f"mlflow-tracking-{n}" for n in
                                                          ("uri", "token", "username", "password")}
    assert set(doc["on"]["workflow_call"]["outputs"]) == {"status", "version", "retrain", "issue"}

    call = caller()
    triggers = call.get("on", call.get(True))  # YAML 1.1 readers see `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    (cron,) = [entry["cron"] for entry in triggers["schedule"]]
    minute, hour, *rest = cron.split()
    assert rest == ["*", "*", "*"] and 0 <= int(minute) < 60 and 0 <= int(hour) < 24, "daily"
    dispatch = triggers["workflow_dispatch"]["inputs"]
    assert set(dispatch) == {"model", "env", "window", "windows"}
    assert all(spec["type"] == "string" and not spec.get("required") for spec in dispatch.values())
    assert call["permissions"] == {}
    (job,) = call["jobs"].values()
    assert job["uses"].startswith("mlops-ci/mlops-ci/workflows/monitor.yml@")
    # the caller grants the union of the jobs' permissions; each job keeps only its own
    assert job["permissions"] == {"contents": "write", "issues": "write", "pull-requests": "write"}
    assert {k: job["with"][k] for k in dispatch} == {k: f"${{{{ inputs.{k} }}}}" for k in dispatch}


# ---------------------------------------------------------------------------------------------
# two jobs, two tokens


def test_each_job_holds_exactly_its_permissions() -> None:
    doc = load()
    assert doc["permissions"] == {}
    jobs = doc["jobs"]
    assert set(jobs) == {"monitor", "retrain"}
    assert jobs["monitor"]["permissions"] == {"contents": "read", "issues": "write"}
    assert jobs["retrain"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    for job in jobs.values():
        assert "environment" not in job
        assert job["env"] == REGISTRY, "the registry's secrets, and no other"
        for s in job["steps"]:
            if s.get("uses", "").startswith("actions/checkout@"):
                assert s["uses"] == CHECKOUT and s["with"]["persist-credentials"] is False
            if s.get("uses", "").startswith("actions/setup-python@"):
                assert s["uses"] == SETUP_PYTHON
            if s.get("uses", "").startswith("actions/upload-artifact@"):
                assert s["uses"] == UPLOAD
            assert not s.get("uses", "").startswith("actions/cache"), "jobs with write tokens use no cache"


def test_retraining_runs_only_when_the_monitor_job_asks_for_it() -> None:
    jobs = load()["jobs"]
    assert jobs["retrain"]["needs"] == "monitor"
    assert jobs["retrain"]["if"] == "needs.monitor.outputs.retrain == 'true'"
    assert jobs["monitor"]["outputs"]["retrain"] == "${{ steps.monitor.outputs.retrain }}"
    assert jobs["monitor"]["outputs"]["until"] == "${{ steps.monitor.outputs.until }}"
    assert "if" not in jobs["monitor"]
    # the full history to branch from the default branch, and the token only in the mlops-ci step
    (code,) = [s for s in jobs["retrain"]["steps"]
               if s.get("uses", "").startswith("actions/checkout@") and "path" not in s["with"]]
    assert code["with"]["fetch-depth"] == 0
    for name, job in jobs.items():
        holders = [s["name"] for s in job["steps"] if "github.token" in json.dumps(s)]
        assert holders == [step(job, "mlops-ci monitor" if name == "monitor" else "mlops-ci monitor (retrain)")["name"]]


def test_runs_serialise_per_model_and_environment_and_are_never_cancelled() -> None:
    jobs = load()["jobs"]
    monitor, retrain = jobs["monitor"]["concurrency"], jobs["retrain"]["concurrency"]
    assert monitor == {"group": "mlops-ci-monitor-${{ github.repository }}-${{ inputs.model }}-${{ inputs.env }}",
                       "cancel-in-progress": False}
    # one retraining branch and pull request per model, whichever environment drifted
    assert retrain == {"group": "mlops-ci-retrain-${{ github.repository }}-${{ inputs.model }}",
                       "cancel-in-progress": False}


def test_no_expression_reaches_a_script() -> None:
    for job in load()["jobs"].values():
        for s in job["steps"]:
            if "run" in s:
                assert "${{" not in s["run"], s["name"]
    retrain = step(load()["jobs"]["retrain"], "mlops-ci monitor (retrain)")
    assert retrain["env"]["UNTIL"] == UNTIL
    assert '--until "$UNTIL"' in retrain["run"]


# ---------------------------------------------------------------------------------------------
# the scripts, run


def _fake_runner(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """RUNNER_TEMP with a stand-in mlops-ci in the venv the install step makes; it records argv."""
    temp = tmp_path / "runner-temp"
    bin_dir = temp / "mlops-ci" / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "argv.json"
    fake = bin_dir / "mlops-ci"
    fake.write_text(f"#!/usr/bin/env python3\nimport json, os, sys\n"
                    f"json.dump({{'argv': sys.argv[1:], 'cwd': os.getcwd()}}, open({str(log)!r}, 'w'))\n")
    fake.chmod(0o755)
    (tmp_path / "work" / "examples" / "churn").mkdir(parents=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "RUNNER_TEMP": str(temp)}
    return env, log


def _run(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-c", script], check=False, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=30)


INPUTS = {"WORKING_DIRECTORY": "examples/churn", "CONFIG": "", "MODEL": "churn", "ENVIRONMENT": "prod",
          "WINDOW": "12h", "WINDOWS": "14", "LOGS": "s3://kserve-logs/payloads"}


@pytest.mark.parametrize("job", ["monitor", "retrain"])
@pytest.mark.parametrize("given", ["all", "none"])
def test_the_command_lines(job: str, given: str, tmp_path: Path) -> None:
    env, log = _fake_runner(tmp_path)
    values = dict(INPUTS) if given == "all" else {**dict.fromkeys(INPUTS, ""), "WORKING_DIRECTORY": "."}
    values["UNTIL"] = "2026-12-06T06:17:03+00:00"
    s = step(load()["jobs"][job], "mlops-ci monitor" if job == "monitor" else "mlops-ci monitor (retrain)")
    assert set(s["env"]) == {*values, "GITHUB_TOKEN"} - ({"UNTIL"} if job == "monitor" else set())
    proc = _run(s["run"], {**env, **values}, tmp_path / "work")
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(log.read_text())
    argv = seen["argv"]
    assert Path(seen["cwd"]) == (tmp_path / "work" / values["WORKING_DIRECTORY"]).resolve()
    assert argv[0] == "monitor" and argv[argv.index("--out") + 1].endswith("/mlops-ci/monitor-record.json")
    if job == "monitor":
        assert "--no-retrain" in argv and "--no-issue" not in argv and "--until" not in argv
    else:
        assert "--no-issue" in argv and "--no-retrain" not in argv
        assert argv[argv.index("--until") + 1] == values["UNTIL"]
    flags = {"--model": "MODEL", "--env": "ENVIRONMENT", "--window": "WINDOW", "--windows": "WINDOWS",
             "--logs": "LOGS"}
    for flag, name in flags.items():
        if values[name]:
            assert argv[argv.index(flag) + 1] == values[name]
        else:
            assert flag not in argv, "an empty input leaves the config's default"
    # the real CLI takes that command line
    args = build_parser().parse_args(argv)
    assert (args.command, args.no_retrain, args.no_issue) == ("monitor", job == "monitor", job == "retrain")


def test_a_value_stays_one_argument(tmp_path: Path) -> None:
    env, log = _fake_runner(tmp_path)
    s = step(load()["jobs"]["monitor"], "mlops-ci monitor")
    hostile = {**INPUTS, "WORKING_DIRECTORY": ".", "LOGS": "s3://b/p $(touch pwned) ; --no-issue"}
    assert _run(s["run"], {**env, **hostile}, tmp_path / "work").returncode == 0
    argv = json.loads(log.read_text())["argv"]
    assert argv[argv.index("--logs") + 1] == hostile["LOGS"] and argv.count("--no-issue") == 0
    assert not (tmp_path / "work" / "pwned").exists()


@pytest.mark.parametrize(("name", "value", "ok"), [
    ("MODEL", "churn", True), ("MODEL", "", True), ("MODEL", "--config=/etc/x", False), ("MODEL", "a b", False),
    ("ENVIRONMENT", "prod", True), ("ENVIRONMENT", "prod;x", False),
    ("WINDOW", "1d", True), ("WINDOW", "30m", True), ("WINDOW", "", True), ("WINDOW", "1 day", False),
    ("WINDOW", "0d", False), ("WINDOWS", "7", True), ("WINDOWS", "", True), ("WINDOWS", "-1", False),
    ("WINDOWS", "seven", False), ("EXTRAS", "train,argo", True), ("EXTRAS", "train; rm", False),
    ("PACKAGES", "s3fs==2026.9.0 gcsfs", True), ("PACKAGES", "adlfs[x]>=2024,<2027 pandas~=2.2", True),
    ("PACKAGES", "--index-url=https://evil", False), ("PACKAGES", "s3fs -e.", False),
    ("PACKAGES", "git+https://evil/x", False), ("PACKAGES", "./local", False),
])
def test_inputs_are_checked_before_anything_is_installed(name: str, value: str, ok: bool, tmp_path: Path) -> None:
    jobs = load()["jobs"]
    check = jobs["monitor"]["steps"][0]
    assert check["name"] == "Check the inputs"
    env = {"PATH": os.environ["PATH"], "MODEL": "", "ENVIRONMENT": "", "WINDOW": "", "WINDOWS": "", "EXTRAS": "",
           "PACKAGES": "", name: value}
    proc = _run(check["run"], env, tmp_path)
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr


@pytest.mark.parametrize("job", ["monitor", "retrain"])
def test_mlops_ci_comes_from_its_pinned_checkout_without_a_cache(job: str) -> None:
    spec = load()["jobs"][job]
    steps = spec["steps"]
    (mine,) = [s for s in steps if s.get("with", {}).get("path") == ".mlops-ci-action"]
    assert mine["with"]["repository"] == "${{ inputs.mlops-ci-repository || job.workflow_repository }}"
    assert mine["with"]["ref"] == "${{ inputs.mlops-ci-ref || job.workflow_sha }}"
    install = step(spec, "Install mlops-ci")
    assert "-c \"$GITHUB_WORKSPACE/.mlops-ci-action/requirements/constraints.txt\"" in install["run"]
    order = [s.get("name") for s in steps]
    assert order.index(mine.get("name")) < order.index("Install mlops-ci") < order.index(
        "mlops-ci monitor" if job == "monitor" else "mlops-ci monitor (retrain)")
    # git's credential helper answers from the mlops-ci step's environment, which mlops-ci keeps
    # out of the data-refresh command's
    helper = next(s for s in steps if "credential.https://github.com.helper" in s.get("run", ""))
    assert "GITHUB_TOKEN" in helper["run"] and "env" not in helper

