"""The structure of the reusable workflows in workflows/: who may do what, where.

tests/github/test_workflow_rules.py checks the rules every file follows (SHA pins, no expression in
`run:`, persist-credentials, actionlint, zizmor). These tests pin down the design of the set:
the triggers, the permissions of every job, that the poster never checks out code, that slash
command follow-ups act on the pinned head SHA, and that jobs which push run one at a time per
environment and are never cancelled midway.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"

CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"
UPLOAD = "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02"
DOWNLOAD = "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093"
ACTION = "./.mlops-ci-action"
ACTION_REPOSITORY = "${{ inputs.mlops-ci-repository || job.workflow_repository }}"
ACTION_REF = "${{ inputs.mlops-ci-ref || job.workflow_sha }}"
HEAD_SHA = "${{ needs.command.outputs.head-sha }}"

# workflow -> job -> the exact permissions it holds (least privilege, reviewed)
PERMISSIONS: dict[str, dict[str, dict[str, str]]] = {
    "pr-checks.yml": {"checks": {"contents": "read"}},
    "pr-report.yml": {"report": {"actions": "read", "checks": "write", "contents": "read", "issues": "write",
                                 "pull-requests": "read", "statuses": "write"}},
    "slash-commands.yml": {
        "command": {"contents": "read", "issues": "write", "pull-requests": "read"},
        "train": {"contents": "read"},
        "report": {"checks": "write", "contents": "read", "issues": "write", "pull-requests": "read",
                   "statuses": "write"},
        "promote": {"contents": "read", "deployments": "write"},
        "rollback": {"contents": "read"},
    },
    # no job token may push: the GitOps push uses the gitops-token secret, wherever the repository is
    "rollback.yml": {"rollback": {"contents": "read"}},
    "rollout.yml": {"rollout": {"contents": "read", "deployments": "write", "pull-requests": "write"}},
    "merge-promote.yml": {"train": {"contents": "read"}, "promote": {"contents": "read", "deployments": "write"}},
    "pr-closed.yml": {"stop": {"contents": "read"}},
    "monitor.yml": {"monitor": {"contents": "read", "issues": "write"},
                    "retrain": {"contents": "write", "pull-requests": "write"}},
}
# workflow -> the mlops-ci commands its steps run through the action (`command:` input)
COMMANDS = {
    "pr-checks.yml": ["run"],
    "pr-report.yml": ["publish"],
    "slash-commands.yml": ["command", "run", "publish", "promote", "rollback"],
    "rollback.yml": ["rollback"],
    "rollout.yml": ["rollout"],
    "merge-promote.yml": ["run", "promote"],
    "pr-closed.yml": ["train"],
    "monitor.yml": [],  # `mlops-ci monitor` runs from a pinned install of the same checkout
}
ALLOWED_COMMANDS = {"run", "publish", "command", "promote", "rollback", "rollout", "train"}
# jobs that run the code of the pull request or of the pushed commit (besides mlops-ci)
RUNS_REPOSITORY_CODE = {("pr-checks.yml", "checks"), ("slash-commands.yml", "train"),
                        ("merge-promote.yml", "train"), ("monitor.yml", "retrain")}
# jobs whose own token pushes: a branch of this repository (the retraining pull request), never the
# GitOps repository
PUSH_WITH_JOB_TOKEN = {("monitor.yml", "retrain")}
# jobs that hold the training cluster's token (and nothing else) to stop runs; they run no code
# of the pull request
CLUSTER_JOBS = {("pr-closed.yml", "stop")}
COMMAND_OUTPUTS = ["accepted", "action", "env", "nodes", "gpus", "pr", "head-sha", "head-repository", "fork",
                   "version"]
# event text anyone can write: it may be tested in an `if:` but never passed anywhere
UNTRUSTED = re.compile(r"github\.event\.(comment\.body|issue\.title|issue\.body|pull_request\.title|"
                       r"pull_request\.body|pull_request\.head\.ref|workflow_run\.head_branch|"
                       r"workflow_run\.display_title|head_commit\.message)|github\.head_ref")


def load(name: str) -> dict:
    return YAML(typ="safe").load((WORKFLOWS / name).read_text(encoding="utf-8"))


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def checkouts(job: dict) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").startswith("actions/checkout@")]


def action_steps(job: dict) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").startswith("./")]


def walk(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, string) for every string in a parsed YAML document, keys included."""
    if isinstance(node, dict):
        out = []
        for key, value in node.items():
            out += [(f"{path}.{key}", str(key))] + walk(value, f"{path}.{key}")
        return out
    if isinstance(node, list):
        return [item for i, value in enumerate(node) for item in walk(value, f"{path}[{i}]")]
    return [(path, node)] if isinstance(node, str) else []


def test_the_set_of_workflows() -> None:
    files = sorted(p.name for p in WORKFLOWS.glob("*.y*ml"))
    assert files == sorted(PERMISSIONS), "a new workflow needs its permissions reviewed in PERMISSIONS"
    readme = (WORKFLOWS / "README.md").read_text(encoding="utf-8")
    for name in files:
        assert f"`{name}`" in readme, f"workflows/README.md does not describe {name}"


@pytest.mark.parametrize("name", sorted(PERMISSIONS))
def test_workflow_permissions_are_least_privilege(name: str) -> None:
    doc = load(name)
    assert set(doc["on"]) == {"workflow_call"}
    top = doc["permissions"]
    assert top in ({}, {"contents": "read"}), f"{name}: the top level grants {top}"
    jobs = doc["jobs"]
    assert {job: spec.get("permissions") for job, spec in jobs.items()} == PERMISSIONS[name]
    assert not any(p.get("contents") == "write" for job, p in PERMISSIONS[name].items()
                   if (name, job) not in PUSH_WITH_JOB_TOKEN), "no job token pushes"


@pytest.mark.parametrize("name", sorted(PERMISSIONS))
def test_action_runs_only_known_commands_from_its_own_checkout(name: str) -> None:
    doc = load(name)
    used = []
    for job_name, job in doc["jobs"].items():
        for step in action_steps(job):
            assert step["uses"].split(" ")[0] == ACTION, f"{name} {job_name}: local action {step['uses']}"
            command = step.get("with", {}).get("command")
            assert command in ALLOWED_COMMANDS, f"{name} {job_name}: command {command!r} is not a fixed one"
            used.append(command)
            # the action comes from this repository at this workflow's commit, never the caller's
            mine = [c for c in checkouts(job) if c.get("with", {}).get("path") == ".mlops-ci-action"]
            assert len(mine) == 1, f"{name} {job_name}: the action is not checked out once"
            assert mine[0]["with"]["repository"] == ACTION_REPOSITORY
            assert mine[0]["with"]["ref"] == ACTION_REF
            assert steps(job).index(mine[0]) < steps(job).index(step)
    assert used == COMMANDS[name]


@pytest.mark.parametrize("name", sorted(PERMISSIONS))
def test_jobs_that_push_run_one_at_a_time_per_environment(name: str) -> None:
    for job_name, job in load(name)["jobs"].items():
        concurrency = job.get("concurrency")
        if "${{ secrets.gitops-token }}" in [t for _, t in walk(job)]:  # the only credential that may push
            env = job.get("environment")
            assert env, f"{name} {job_name}: a job that pushes uses a GitHub environment (protection rules)"
            assert concurrency["cancel-in-progress"] is False, f"{name} {job_name}: never cancel a push midway"
            # one group for promote and rollback across every workflow, keyed on the environment;
            # the rollout schedule has its own (a pending scheduled run must never replace a waiting
            # promote or rollback: GitHub keeps one pending run per group), its push races handled
            group = "rollout" if name == "rollout.yml" else "deploy"
            assert concurrency["group"] == f"mlops-ci-{group}-${{{{ github.repository }}}}-{env}", \
                f"{name} {job_name}: {concurrency['group']}"
        elif any(v == "write" for v in job["permissions"].values()):
            # jobs that post also finish what they started
            assert concurrency and concurrency["cancel-in-progress"] is False, f"{name} {job_name}"
        if concurrency and concurrency["cancel-in-progress"] is True:
            assert job["permissions"] == {"contents": "read"}, f"{name} {job_name}: only read-only jobs cancel"


# the model registry's (optional) secrets: the only ones code of a pull request may see. GitHub gives
# them to pull requests from branches of the repository (written by people with write access) and
# never to forks; with them, a pull request's run registers its candidate for the merge to ship
REGISTRY_SECRETS = {f"${{{{ secrets.mlflow-tracking-{name} }}}}" for name in ("uri", "token", "username", "password")}


TEAMS_SECRET = "${{ secrets.teams-token }}"


@pytest.mark.parametrize("name", sorted(PERMISSIONS))
def test_secrets_never_reach_jobs_that_run_repository_code(name: str) -> None:
    for job_name, job in load(name)["jobs"].items():
        texts = [text for _, text in walk(job)]
        secrets = {t for t in texts if "secrets." in t}
        if (name, job_name) in RUNS_REPOSITORY_CODE and name != "merge-promote.yml":
            assert secrets <= REGISTRY_SECRETS, f"{name} {job_name}: PR code runs here: {secrets - REGISTRY_SECRETS}"
        if (name, job_name) in CLUSTER_JOBS:
            assert [t for t in texts if "secrets." in t] == ["${{ secrets.argo-token }}"], f"{name} {job_name}"
            continue
        if (name, job_name) == ("slash-commands.yml", "command"):
            # a read-only token (members: read on the org) to read approver teams; it pushes nothing,
            # and the job runs only mlops-ci on the default branch's code
            secrets -= {TEAMS_SECRET}
        if secrets and not secrets <= REGISTRY_SECRETS and (name, job_name) not in RUNS_REPOSITORY_CODE:
            assert "${{ secrets.gitops-token }}" in secrets, f"{name} {job_name}: secrets in a job that does not push"
            assert job.get("environment"), f"{name} {job_name}: secrets belong to a GitHub environment"


@pytest.mark.parametrize("name", sorted(PERMISSIONS))
def test_untrusted_event_text_goes_nowhere(name: str) -> None:
    doc = load(name)
    for path, text in walk(doc):
        if UNTRUSTED.search(text):
            assert path == ".jobs.command.if" and name == "slash-commands.yml", \
                f"{name} {path}: untrusted event text is passed on: {text!r}"


def test_pr_checks_stays_on_pull_request() -> None:
    (job,) = load("pr-checks.yml")["jobs"].values()
    refuse = steps(job)[0]
    assert refuse["if"] == "github.event_name == 'pull_request_target'" and "exit 1" in refuse["run"]
    assert not any(s.get("uses", "").startswith("actions/download-artifact@") for s in steps(job))


def test_pr_report_never_checks_out_the_pull_request() -> None:
    doc = load("pr-report.yml")
    (job,) = doc["jobs"].values()
    condition = " ".join(job["if"].split())
    assert "github.event_name == 'workflow_run'" in condition
    assert "github.event.workflow_run.event == 'pull_request'" in condition
    # the only checkout is mlops-ci itself, beside an otherwise empty workspace
    (checkout,) = checkouts(job)
    assert checkout["with"]["path"] == ".mlops-ci-action"
    assert checkout["with"]["repository"] == ACTION_REPOSITORY
    assert not any("head_sha" in str(v) or "head.sha" in str(v) for v in checkout["with"].values())
    assert not any(s.get("uses", "").startswith("actions/cache") for s in steps(job))

    (download,) = [s for s in steps(job) if s.get("uses", "").startswith("actions/download-artifact@")]
    assert download["uses"] == DOWNLOAD
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    assert download["with"]["github-token"] == "${{ github.token }}"
    assert download["with"]["path"].startswith("${{ runner.temp }}/"), "never into the workspace"

    # a missing or oversized artifact is found through the API before anything is downloaded
    find = steps(job)[0]
    assert find["id"] == "artifact" and "size_in_bytes" in find["run"] and "MAX_BYTES" in find["run"]
    assert 'echo "found=false"' in find["run"]
    later = steps(job)[1:]
    assert all(s.get("if") == "steps.artifact.outputs.found == 'true'" for s in later)

    (publish,) = action_steps(job)
    assert publish["with"]["command"] == "publish"
    assert publish["with"]["args"] == "--record ${{ runner.temp }}/mlops-ci-record/record.json"
    # nothing from the artifact is run: no step but the action's refers to the downloaded folder
    for step in steps(job):
        if "run" in step:
            assert "mlops-ci-record" not in step["run"]


def test_slash_command_job_is_guarded_and_exposes_the_outputs() -> None:
    jobs = load("slash-commands.yml")["jobs"]
    command = jobs["command"]
    condition = " ".join(command["if"].split())
    for part in ("github.event_name == 'issue_comment'", "github.event.action == 'created'",
                 "github.event.issue.pull_request", "startsWith(github.event.comment.body, '/mlops-ci')"):
        assert part in condition
    (step,) = action_steps(command)
    assert step["with"]["command"] == "command"
    assert command["outputs"] == {name: f"${{{{ steps.{step['id']}.outputs.{name} }}}}" for name in COMMAND_OUTPUTS}
    # the command job reads the default branch: no ref, so never the pull request's code
    assert all("ref" not in c.get("with", {}) for c in checkouts(command) if c["with"].get("path") is None)


@pytest.mark.parametrize("action", ["train", "promote", "rollback"])
def test_slash_follow_ups_act_on_an_accepted_command(action: str) -> None:
    job = load("slash-commands.yml")["jobs"][action]
    assert job["needs"] == "command"
    condition = " ".join(job["if"].split())
    assert "needs.command.outputs.accepted == 'true'" in condition
    assert f"needs.command.outputs.action == '{action}'" in condition


def test_slash_train_checks_out_the_pinned_sha_not_the_branch() -> None:
    job = load("slash-commands.yml")["jobs"]["train"]
    code = [c for c in checkouts(job) if c["with"].get("path") is None]
    assert len(code) == 1
    (checkout,) = code
    assert checkout["with"]["ref"] == HEAD_SHA
    assert checkout["with"]["repository"] == "${{ github.repository }}"  # holds refs/pull/N/head, forks too
    assert checkout["with"]["persist-credentials"] is False
    texts = " ".join(text for _, text in walk(job))
    assert "head_ref" not in texts and "head.ref" not in texts and "head-branch" not in texts
    # and checks it got exactly that commit before running anything
    order = steps(job)
    verify = next(s for s in order if "git rev-parse HEAD" in s.get("run", ""))
    assert verify["env"]["HEAD_SHA"] == HEAD_SHA
    (run,) = action_steps(job)
    assert order.index(checkout) < order.index(verify) < order.index(run)
    assert run["with"]["command"] == "run"
    upload = next(s for s in order if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["uses"] == UPLOAD and upload["with"]["name"] == "mlops-ci-record"


def test_slash_train_report_posts_for_the_pinned_head_without_code() -> None:
    job = load("slash-commands.yml")["jobs"]["report"]
    assert job["needs"] == ["command", "train"]
    (checkout,) = checkouts(job)
    assert checkout["with"]["path"] == ".mlops-ci-action"
    download = next(s for s in steps(job) if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["uses"] == DOWNLOAD and download["continue-on-error"] is True
    (publish,) = action_steps(job)
    assert publish["if"] == "steps.download.outcome == 'success'"
    args = " ".join(publish["with"]["args"].split())
    assert f"--head-sha {HEAD_SHA}" in args
    assert "--pr ${{ needs.command.outputs.pr }}" in args


@pytest.mark.parametrize("action", ["promote", "rollback"])
def test_slash_deploy_jobs_run_only_the_default_branch(action: str) -> None:
    job = load("slash-commands.yml")["jobs"][action]
    for checkout in checkouts(job):
        if checkout["with"].get("path") is None:
            assert "ref" not in checkout["with"] and "repository" not in checkout["with"], \
                f"{action} checks out the default branch (issue_comment runs there), never the PR"
    assert job["environment"] == "${{ needs.command.outputs.env }}"
    (step,) = action_steps(job)
    assert step["with"]["model"] == "${{ inputs.model }}"
    assert step["with"]["args"].startswith("--env ${{ needs.command.outputs.env }}")


def test_slash_promote_takes_the_registry_s_version_for_the_pinned_head_never_a_record() -> None:
    job = load("slash-commands.yml")["jobs"]["promote"]
    assert not any(s.get("uses", "").startswith("actions/download-artifact@") for s in steps(job))
    assert "actions" not in job["permissions"]
    check = next(s for s in steps(job) if "run" in s)
    assert check["env"]["HEAD_SHA"] == HEAD_SHA and check["env"]["VERSION"] == "${{ needs.command.outputs.version }}"
    (step,) = action_steps(job)
    args = " ".join(step["with"]["args"].split())
    for part in ("--pull-request ${{ needs.command.outputs.pr }}", f"--head-sha {HEAD_SHA}",
                 "--version ${{ needs.command.outputs.version }}",
                 "${{ needs.command.outputs.fork == 'true' && '--fork' || '' }}"):
        assert part in args
    assert "--record" not in args


def test_rollback_workflow_inputs() -> None:
    doc = load("rollback.yml")
    inputs = doc["on"]["workflow_call"]["inputs"]
    assert {n: inputs[n].get("required", False) for n in ("model", "env", "to-version", "reason")} == {
        "model": True, "env": True, "to-version": False, "reason": True}
    (job,) = doc["jobs"].values()
    assert job["environment"] == "${{ inputs.env }}"
    check = steps(job)[0]
    assert set(check["env"].values()) >= {"${{ inputs.model }}", "${{ inputs.env }}", "${{ inputs.to-version }}",
                                          "${{ inputs.reason }}"}
    (step,) = action_steps(job)
    # free text never goes through `args` (split on whitespace): the reason travels by env
    assert step["with"]["args"] == "${{ steps.inputs.outputs.args }}"
    assert step["env"]["MLOPS_CI_REASON"] == "${{ inputs.reason }}"
    assert "inputs.reason" not in str(step["with"])



ROLLOUT_SECRETS = {"gitops-token", "mlflow-tracking-uri", "mlflow-tracking-token", "mlflow-tracking-username",
                   "mlflow-tracking-password", "argocd-token", "prometheus-token"}


def test_rollout_workflow_inputs() -> None:
    doc = load("rollout.yml")
    call = doc["on"]["workflow_call"]
    inputs = call["inputs"]
    assert {n: (inputs[n]["type"], inputs[n].get("required", False), inputs[n].get("default"))
            for n in ("action", "model", "env", "reason", "force", "dry-run")} == {
        "action": ("string", False, "advance"), "model": ("string", False, ""), "env": ("string", True, None),
        "reason": ("string", False, ""), "force": ("boolean", False, False), "dry-run": ("boolean", False, False)}
    assert set(inputs) == {"action", "model", "env", "reason", "force", "dry-run", "working-directory", "config",
                           "python-version", "runs-on", "mlops-ci-repository", "mlops-ci-ref"}
    assert set(call["secrets"]) == ROLLOUT_SECRETS
    assert not any(s.get("required") for s in call["secrets"].values())
    (job,) = doc["jobs"].values()
    assert job["environment"] == "${{ inputs.env }}"
    assert job["concurrency"] == {"group": "mlops-ci-rollout-${{ github.repository }}-${{ inputs.env }}",
                                  "cancel-in-progress": False}
    check = steps(job)[0]
    assert check["id"] == "inputs"
    assert set(check["env"].values()) == {"${{ inputs.action }}", "${{ inputs.model }}", "${{ inputs.env }}",
                                          "${{ inputs.reason }}", "${{ inputs.force }}", "${{ inputs.dry-run }}"}
    (step,) = action_steps(job)
    assert step["with"]["command"] == "rollout" and step["with"]["cache"] == "false"
    assert step["with"]["model"] == "${{ inputs.model }}"
    # free text never goes through `args` (split on whitespace): the reason travels by env
    assert step["with"]["args"] == "${{ steps.inputs.outputs.args }}"
    assert step["env"] == {"MLOPS_CI_GITOPS_TOKEN": "${{ secrets.gitops-token }}",
                           "ARGOCD_TOKEN": "${{ secrets.argocd-token }}",
                           "PROMETHEUS_TOKEN": "${{ secrets.prometheus-token }}",
                           "MLOPS_CI_REASON": "${{ inputs.reason }}"}
    assert "inputs.reason" not in str(step["with"])
    # the only secrets outside that step are the registry's, for the whole job
    assert set(job["env"].values()) == REGISTRY_SECRETS


STUB_MLOPS_CI = """#!/usr/bin/env bash
printf '%s\\0' "$@" > "$STUB_ARGV"
"""


def _rollout_argv(tmp_path: Path, **given: str) -> tuple[subprocess.CompletedProcess, list[str] | None]:
    """rollout.yml's check step run as the runner runs it (bash -eo pipefail, inputs as env), then
    action/entrypoint.sh with its `args` output and the workflow's `model`, with a stub `mlops-ci`
    that records its argv."""
    (job,) = load("rollout.yml")["jobs"].values()
    check = steps(job)[0]
    values = {"action": "advance", "model": "", "env": "prod", "reason": "", "force": "false", "dry-run": "false",
              **given}
    env = {name: values[ref.removeprefix("${{ inputs.").removesuffix(" }}")] for name, ref in check["env"].items()}
    output = tmp_path / "github-output"
    output.write_text("")
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", check["run"]],
                          env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output), **env},
                          capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        return proc, None
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "mlops-ci").write_text(STUB_MLOPS_CI)
    (bin_dir / "mlops-ci").chmod(0o755)
    argv_file = tmp_path / "argv"
    argv_file.write_text("")
    run = subprocess.run([str(ROOT / "action" / "entrypoint.sh")], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, check=False, env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                                          "STUB_ARGV": str(argv_file), "INPUT_COMMAND": "rollout",
                                          "INPUT_MODEL": values["model"], "INPUT_ARGS": outputs["args"],
                                          "MLOPS_CI_REASON": values["reason"]})
    assert run.returncode == 0, run.stdout + run.stderr
    return run, argv_file.read_text().split("\0")[:-1]


ROLLOUT_CASES = [
    # (inputs, the argv mlops-ci gets)
    ({}, ["rollout", "advance", "--env", "prod"]),  # the schedule
    ({"action": "status", "env": "staging", "dry-run": "true"}, ["rollout", "status", "--env", "staging", "--dry-run"]),
    ({"model": "churn", "force": "true", "reason": "metrics lag; checked by hand"},
     ["rollout", "advance", "--env", "prod", "--force", "--model", "churn"]),
    ({"action": "abort", "model": "churn", "reason": "p99 latency doubled"},
     ["rollout", "abort", "--env", "prod", "--model", "churn"]),
]


@pytest.mark.parametrize(("given", "expected"), ROLLOUT_CASES, ids=["schedule", "status", "force", "abort"])
def test_rollout_workflow_runs_the_cli_s_rollout_command(tmp_path: Path, given: dict[str, str],
                                                         expected: list[str]) -> None:
    from mlops_ci.cli.main import build_parser

    _, argv = _rollout_argv(tmp_path, **given)
    assert argv == expected
    # the real CLI takes it: the action first, as the entrypoint puts `args` right after the command
    parsed = build_parser().parse_args(argv)
    assert (parsed.command, parsed.action, parsed.env, parsed.model) == (
        "rollout", given.get("action", "advance"), given.get("env", "prod"), given.get("model") or None)
    assert parsed.force is (given.get("force") == "true") and parsed.reason is None  # the reason comes by env


ROLLOUT_REFUSED = [
    ({"action": "advance; id"}, "'action' input must be advance, status or abort"),
    ({"action": ""}, "'action' input must be advance, status or abort"),
    ({"env": "prod --force"}, "'env' input must be one name"),
    ({"env": ""}, "'env' input must be one name"),
    ({"model": "churn $(id)"}, "'model' input must be one name"),
    ({"action": "abort", "reason": "broken"}, "abort stops one model's rollout"),
    ({"action": "abort", "model": "churn", "reason": "  "}, "'reason' input is required"),
    ({"force": "true"}, "'reason' input is required"),
    ({"action": "status", "force": "true", "reason": "x"}, "'force' input goes with advance only"),
]


@pytest.mark.parametrize(("given", "words"), ROLLOUT_REFUSED, ids=[w for _, w in ROLLOUT_REFUSED])
def test_rollout_workflow_refuses_bad_inputs_before_anything_runs(tmp_path: Path, given: dict[str, str],
                                                                  words: str) -> None:
    proc, argv = _rollout_argv(tmp_path, **given)
    assert proc.returncode == 2 and argv is None
    assert "::error title=mlops-ci::" in proc.stdout and words in proc.stdout
    assert "$(id)" not in proc.stdout and "; id" not in proc.stdout, "the untrusted value is not echoed"

def test_pr_closed_stops_the_training_of_the_closed_pull_request_with_the_base_branchs_config() -> None:
    doc = load("pr-closed.yml")
    (job,) = doc["jobs"].values()
    condition = " ".join(job["if"].split())
    assert "github.event.action == 'closed'" in condition and "github.event_name == 'pull_request'" in condition
    # the checks job of the same pull request goes first: it may be about to submit a Workflow
    checks = load("pr-checks.yml")["jobs"]["checks"]["concurrency"]["group"]
    assert job["concurrency"]["group"] == checks.replace(" || github.ref", "")
    assert job["concurrency"]["cancel-in-progress"] is True
    code = [c for c in checkouts(job) if c["with"].get("path") is None]
    assert [c["with"] for c in code] == [{"ref": "${{ github.event.pull_request.base.sha }}",
                                          "persist-credentials": False}], "the base branch, never the PR's head"
    (step,) = action_steps(job)
    assert (step["with"]["command"], step["with"]["args"]) == ("train", "--stop")
    assert step["env"] == {"ARGO_TOKEN": "${{ secrets.argo-token }}"}
    assert doc["on"]["workflow_call"]["secrets"]["argo-token"]["required"] is False


@pytest.mark.parametrize("name", sorted(PERMISSIONS))
def test_jobs_that_hold_tokens_or_run_pr_code_in_the_base_scope_use_no_cache(name: str) -> None:
    """A job with a write permission or a secret installs from the pinned set: it never restores a
    cache that code of a pull request could have written (that code can write one through the
    runner's token whatever `save-cache` says). The slash `train` runs a pull request's code in the
    default branch's scope: it neither restores nor saves."""
    for job_name, job in load(name)["jobs"].items():
        writes = any(v == "write" for v in job.get("permissions", {}).values())
        secrets = any("secrets." in t for _, t in walk(job))
        base_scope_pr_code = (name, job_name) == ("slash-commands.yml", "train")
        held = {t for _, t in walk(job) if "secrets." in t}
        if writes or base_scope_pr_code or (secrets and not held <= REGISTRY_SECRETS):
            for step in action_steps(job):
                assert step["with"].get("cache") == "false", f"{name} {job_name}: restores a cache"
        # the registry's secrets alone: the action refuses the cache itself when they are set
