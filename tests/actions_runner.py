"""Run our reusable workflows the way a GitHub runner would, on this machine, from their YAML.

:class:`Runner` reads a workflow file (workflows/*.yml) and runs its jobs in order of ``needs``,
honouring job and step ``if:`` conditions and evaluating every ``${{ }}`` it passes on
(tests/actions_expr.py fails on any form it does not know). What each step does:

- ``run:`` scripts run for real with bash, in the job's workspace, with the step's env, a fresh
  ``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY``. The GitHub CLI is the one simulated command:
  a ``gh`` on ``PATH`` answers the one call our workflows make (the artifacts of a run) from the
  artifacts uploaded here, and refuses any other.
- ``uses: ./<path>`` runs a composite action from the workspace (our action.yml): its ``run:``
  steps for real; ``actions/setup-python`` answers with this interpreter, and
  ``actions/cache/restore`` with a cache hit whose environment is the one running the tests (the
  action's install step is therefore skipped, as on a warm runner); where the action restores no
  cache (a job with secrets or a write token), its install step is simulated with that same
  environment.
- ``actions/checkout`` clones "GitHub's" git repository (a bare repository per owner/name):
  for ``pull_request`` the test merge commit ``refs/pull/N/merge``, else ``GITHUB_SHA``; a
  checkout of mlops-ci itself (``job.workflow_repository``) links this working tree.
- ``actions/upload-artifact`` / ``download-artifact`` copy to and from a folder per workflow run
  (paths made relative to their common folder, hidden files left out unless asked for).

Every job gets its own token on the local GitHub server (``github.token``), read-only unless the
job's ``permissions:`` grant a write; as on GitHub, the runner does not export it: mlops-ci gets
``GITHUB_TOKEN`` from action.yml's ``github-token`` input. Secrets are what the caller passes for
the run (declared ones only); an unset secret is ``''``, as on GitHub. Each job has its own
``HOME`` (merge-promote's ``git config --global`` credential helper lands there, unused: the
GitOps remote here is a local path) and workspace under the runner's folder.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from actions_expr import ExpressionError, condition, interpolate, to_string
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_REPOSITORY = "mlops-ci/mlops-ci"  # where the reusable workflows live (job.workflow_repository)
STEP_TIMEOUT_S = 420
JQ_ARTIFACT_SIZE = "[.artifacts[] | select(.expired | not)] | first | .size_in_bytes // empty"


def load_yaml(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def read_outputs(path: Path) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` as the runner reads it: ``name=value`` lines and ``name<<DELIMITER`` blocks."""
    out: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").split("\n") if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            out[name] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        if line:
            name, _, value = line.partition("=")
            out[name] = value
        i += 1
    return out


@dataclass
class StepResult:
    outcome: str  # success, failure or skipped
    outputs: dict[str, str] = field(default_factory=dict)

    def context(self) -> dict:
        return {"outputs": self.outputs, "outcome": self.outcome, "conclusion": self.outcome}


@dataclass
class JobResult:
    result: str  # success, failure or skipped
    outputs: dict[str, str] = field(default_factory=dict)
    steps: dict[str, StepResult] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    evaluated: dict[str, Any] = field(default_factory=dict)  # name, concurrency, environment, ...
    workspace: Path | None = None
    log: list[str] = field(default_factory=list)

    def tail(self, chars: int = 6000) -> str:
        return "\n".join(self.log)[-chars:]


@dataclass
class WorkflowRun:
    run_id: int
    jobs: dict[str, JobResult]
    outputs: dict[str, str]
    artifacts: Path


class Runner:
    """``Runner(root, github_url, git_repos, add_token).run(...)`` runs one workflow file."""

    def __init__(self, root: Path, *, api_url: str, git_repos: dict[str, Path], add_token) -> None:
        self.root, self.api_url, self.git_repos, self.add_token = root, api_url, git_repos, add_token
        self.artifacts = root / "artifacts"
        self.bin = root / "bin"
        self._ids = itertools.count(4_100_000_001)
        self.bin.mkdir(parents=True, exist_ok=True)
        gh = self.bin / "gh"
        gh.write_text(f"#!{sys.executable}\n" + GH_SHIM.replace("@ARTIFACTS@", str(self.artifacts)))
        gh.chmod(0o755)
        self.workflow_sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                           text=True, check=True).stdout.strip()

    # -- a workflow ----------------------------------------------------------------------------------
    def run(self, workflow: Path, *, event_name: str, payload: dict, sha: str, ref: str, actor: str,
            inputs: dict[str, Any] | None = None, secrets: dict[str, str] | None = None) -> WorkflowRun:
        doc = load_yaml(workflow)
        call = doc["on"]["workflow_call"]
        run_id = next(self._ids)
        github = {"event": payload, "event_name": event_name, "sha": sha, "ref": ref,
                  "ref_name": ref.removeprefix("refs/heads/").removeprefix("refs/pull/"),
                  "ref_type": "branch", "repository": payload["repository"]["full_name"],
                  "repository_owner": payload["repository"]["owner"]["login"], "actor": actor,
                  "triggering_actor": actor, "run_id": str(run_id), "run_number": "1", "run_attempt": "1",
                  "server_url": "https://github.com", "api_url": self.api_url, "workflow": doc.get("name", ""),
                  "head_ref": "", "base_ref": ""}
        if event_name.startswith("pull_request"):
            github |= {"head_ref": payload["pull_request"]["head"]["ref"],
                       "base_ref": payload["pull_request"]["base"]["ref"]}
        ctx = {"github": github, "inputs": self._inputs(call.get("inputs") or {}, inputs or {}),
               "secrets": self._secrets(call.get("secrets") or {}, secrets or {}),
               "vars": {}, "artifacts": self.artifacts / str(run_id)}
        jobs: dict[str, JobResult] = {}
        for job_id, job in doc["jobs"].items():  # our files list jobs after the jobs they need
            jobs[job_id] = self._job(job_id, job, ctx, jobs)
        outputs = {name: to_string(interpolate(spec["value"], {"jobs": {k: {"result": v.result, "outputs": v.outputs}
                                                                         for k, v in jobs.items()}}))
                   for name, spec in (call.get("outputs") or {}).items()}
        return WorkflowRun(run_id, jobs, outputs, self.artifacts / str(run_id))

    @staticmethod
    def _inputs(declared: dict, given: dict) -> dict:
        unknown = set(given) - set(declared)
        if unknown:
            raise ExpressionError(f"inputs {sorted(unknown)} are not declared by the workflow")
        out = {}
        for name, spec in declared.items():
            if name not in given and spec.get("required"):
                raise ExpressionError(f"input {name!r} is required")
            value = given.get(name, spec.get("default", {"boolean": False, "number": 0}.get(spec["type"], "")))
            out[name] = value
        return out

    @staticmethod
    def _secrets(declared: dict, given: dict) -> dict:
        unknown = set(given) - set(declared)
        if unknown:
            raise ExpressionError(f"secrets {sorted(unknown)} are not declared by the workflow")
        return {name: given.get(name, "") for name in declared}

    # -- a job -----------------------------------------------------------------------------------------
    def _job(self, job_id: str, job: dict, ctx: dict, done: dict[str, JobResult]) -> JobResult:
        needs = job.get("needs") or []
        needs = [needs] if isinstance(needs, str) else needs
        needs_ctx = {n: {"result": done[n].result, "outputs": done[n].outputs} for n in needs}
        results = [done[n].result for n in needs]
        job_status = {"success": lambda: all(r == "success" for r in results), "always": lambda: True,
                      "failure": lambda: any(r == "failure" for r in results), "cancelled": lambda: False}
        base = {"github": ctx["github"], "inputs": ctx["inputs"], "needs": needs_ctx, "vars": ctx["vars"]}
        if not condition(job.get("if"), base, lambda f: job_status[f]()):
            return JobResult("skipped")
        folder = (self.root / "runs" / ctx["github"]["run_id"] / job_id).resolve()
        workspace, temp, home = folder / "workspace", folder / "temp", folder / "home"
        for d in (workspace, temp, home):
            d.mkdir(parents=True)
        permissions = job.get("permissions") or {}
        token = f"ghs_{ctx['github']['run_id']}_{job_id}"
        self.add_token(token, read_only="write" not in permissions.values(),
                       checks_forbidden=permissions.get("checks") != "write")
        github = ctx["github"] | {"token": token, "job": job_id, "workspace": str(workspace)}
        event = temp / "_github_workflow" / "event.json"
        event.parent.mkdir()
        event.write_text(json.dumps(github["event"]), encoding="utf-8")
        contexts = base | {"github": github, "secrets": ctx["secrets"],
                           "runner": {"os": "Linux", "arch": "X64", "temp": str(temp), "name": "local"},
                           "job": {"workflow_repository": WORKFLOW_REPOSITORY, "workflow_sha": self.workflow_sha,
                                   "status": "success"}, "steps": {}, "env": {}}
        result = JobResult("success", workspace=workspace)
        result.evaluated = {key: interpolate(job[key], contexts) for key in ("name", "runs-on", "timeout-minutes",
                                                                             "environment") if key in job}
        if "concurrency" in job:
            result.evaluated["concurrency"] = interpolate(job["concurrency"]["group"], contexts)
        result.env = self._runner_env(github, workspace, temp, home, event) | {
            k: to_string(interpolate(v, contexts)) for k, v in (job.get("env") or {}).items()}
        contexts["env"] = dict(result.env)
        status = {"success": lambda: result.result == "success", "failure": lambda: result.result == "failure",
                  "always": lambda: True, "cancelled": lambda: False}
        for index, step in enumerate(job["steps"]):
            step_id = step.get("id", f"__step{index}")
            if not condition(step.get("if"), contexts, lambda f: status[f]()):
                outcome = StepResult("skipped")
                result.log.append(f"--- skipped: {step.get('name', step_id)}")
            else:
                result.log.append(f"--- {step.get('name', step_id)}")
                env = result.env | {k: to_string(interpolate(v, contexts)) for k, v in (step.get("env") or {}).items()}
                with_ = {k: to_string(interpolate(v, contexts)) for k, v in (step.get("with") or {}).items()}
                outcome = self._step(step, env, with_, contexts, ctx, result)
                if outcome.outcome == "failure":
                    result.result = "failure"
            result.steps[step_id] = outcome
            contexts["steps"] = {k: v.context() for k, v in result.steps.items()}
        result.outputs = {k: to_string(interpolate(v, contexts)) for k, v in (job.get("outputs") or {}).items()}
        (folder / "log.txt").write_text("\n".join(result.log), encoding="utf-8")  # for a person debugging
        return result

    def _runner_env(self, github: dict, workspace: Path, temp: Path, home: Path, event: Path) -> dict[str, str]:
        keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in os.environ}
        keep["PATH"] = f"{self.bin}:{keep.get('PATH', '/usr/bin:/bin')}"
        return keep | {  # one XDG cache for the runner's jobs, as the action's cache would give them
            "HOME": str(home), "XDG_CACHE_HOME": str(self.root / "cache"), "CI": "true", "GITHUB_ACTIONS": "true", "GIT_CONFIG_NOSYSTEM": "1",
            "GITHUB_EVENT_NAME": github["event_name"], "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REPOSITORY": github["repository"], "GITHUB_REPOSITORY_OWNER": github["repository_owner"],
            "GITHUB_SHA": github["sha"], "GITHUB_REF": github["ref"], "GITHUB_REF_NAME": github["ref_name"],
            "GITHUB_REF_TYPE": "branch", "GITHUB_HEAD_REF": github["head_ref"], "GITHUB_BASE_REF": github["base_ref"],
            "GITHUB_ACTOR": github["actor"], "GITHUB_TRIGGERING_ACTOR": github["actor"],
            "GITHUB_WORKFLOW": github["workflow"], "GITHUB_JOB": github["job"], "GITHUB_RUN_ID": github["run_id"],
            "GITHUB_RUN_NUMBER": "1", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_SERVER_URL": github["server_url"],
            "GITHUB_API_URL": self.api_url, "GITHUB_WORKSPACE": str(workspace), "GITHUB_ENV": str(temp / "env"),
            "GITHUB_PATH": str(temp / "path"), "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64",
            "RUNNER_TEMP": str(temp), "RUNNER_TOOL_CACHE": str(self.root / "toolcache"), "RUNNER_NAME": "local",
        }

    # -- a step ------------------------------------------------------------------------------------------
    def _step(self, step: dict, env: dict, with_: dict, contexts: dict, ctx: dict, job: JobResult) -> StepResult:
        if "run" in step:
            return self._script(step["run"], step.get("shell"), env, Path(job.workspace), job)
        uses = step["uses"]
        action, _, _pin = uses.partition("@")
        if uses.startswith("./"):
            return self._composite(job.workspace / uses, env, with_, contexts, job)
        handlers = {"actions/checkout": self._checkout, "actions/upload-artifact": self._upload,
                    "actions/download-artifact": self._download}
        if action not in handlers:
            raise ExpressionError(f"the runner does not know the action {uses!r}")
        try:
            outputs = handlers[action](with_, contexts, ctx, job)
        except (OSError, subprocess.CalledProcessError, ValueError) as err:
            job.log.append(f"{action} failed: {err}\n{getattr(err, 'stderr', '') or ''}")
            return StepResult("failure")
        return StepResult("success", outputs)

    def _script(self, script: str, shell: str | None, env: dict, cwd: Path, job: JobResult) -> StepResult:
        temp = Path(env["RUNNER_TEMP"])
        n = len(list(temp.glob("step-*.sh")))
        path, output = temp / f"step-{n}.sh", temp / f"output-{n}"
        path.write_text(script, encoding="utf-8")
        summary = temp / f"summary-{n}.md"
        argv = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"]}.get(shell)
        if argv is None:
            raise ExpressionError(f"shell {shell!r} is not supported")
        proc = subprocess.run([*argv, str(path)], cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
                              check=False, env=env | {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)})
        job.log.append(proc.stdout + proc.stderr + f"[exit {proc.returncode}]")
        return StepResult("success" if proc.returncode == 0 else "failure", read_outputs(output))

    def _composite(self, path: Path, env: dict, with_: dict, outer: dict, job: JobResult) -> StepResult:
        action = load_yaml(path / "action.yml")
        declared = action.get("inputs") or {}
        if set(with_) - set(declared):
            raise ExpressionError(f"{path.name}: unexpected inputs {sorted(set(with_) - set(declared))}")
        github = outer["github"] | {"action_path": str(path)}
        inputs = {k: with_[k] if k in with_ else to_string(interpolate(spec.get("default", ""), {"github": github}))
                  for k, spec in declared.items()}
        contexts = {"github": github, "inputs": inputs, "runner": outer["runner"], "env": env, "steps": {},
                    "job": outer["job"]}
        steps: dict[str, StepResult] = {}
        failed = False
        status = {"success": lambda: not failed, "failure": lambda: failed, "always": lambda: True,
                  "cancelled": lambda: False}
        for index, step in enumerate(action["runs"]["steps"]):
            step_id = step.get("id", f"__step{index}")
            if not condition(step.get("if"), contexts, lambda f: status[f]()):
                steps[step_id] = StepResult("skipped")
            else:
                step_env = env | {"GITHUB_ACTION_PATH": str(path)} | {
                    k: to_string(interpolate(v, contexts)) for k, v in (step.get("env") or {}).items()}
                if step_id == "install":  # a fresh install from the pinned set: the venv running the tests
                    steps[step_id] = self._fresh_install(step_env, job)
                elif "run" in step:
                    if "shell" not in step:
                        raise ExpressionError(f"{path.name}: a composite run step needs shell:")
                    steps[step_id] = self._script(step["run"], step["shell"], step_env, job.workspace, job)
                else:
                    step_with = {k: to_string(interpolate(v, contexts)) for k, v in (step.get("with") or {}).items()}
                    steps[step_id] = self._tool(step["uses"], step_with, job)
                failed = failed or steps[step_id].outcome == "failure"
            contexts["steps"] = {k: v.context() for k, v in steps.items()}
        outputs = {k: to_string(interpolate(spec["value"], contexts)) for k, spec in (action.get("outputs") or {}).items()}
        return StepResult("failure" if failed else "success", outputs)

    def _fresh_install(self, env: dict, job: JobResult) -> StepResult:
        """The action's install step (no cache restored: a job with secrets or a write token): the
        environment it would build from the pinned set is the one running the tests."""
        venv = Path(env["VENV"])
        venv.parent.mkdir(parents=True, exist_ok=True)
        if not venv.exists():
            venv.symlink_to(sys.prefix, target_is_directory=True)
        job.log.append(f"fresh install from the pinned set (simulated: {sys.prefix})")
        return StepResult("success")

    def _tool(self, uses: str, with_: dict, job: JobResult) -> StepResult:
        """The environment steps of our composite action, as on a warm runner."""
        action = uses.partition("@")[0]
        if action == "actions/setup-python":
            return StepResult("success", {"python-path": sys.executable, "python-version": platform.python_version()})
        if action == "actions/cache/restore":
            for line in filter(None, (p.strip() for p in with_["path"].splitlines())):
                target = Path(line)
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.name == "venv":
                    target.symlink_to(sys.prefix, target_is_directory=True)  # the venv running the tests
                else:
                    target.mkdir(exist_ok=True)
            job.log.append(f"cache hit for {with_['key']} ({sys.prefix})")
            return StepResult("success", {"cache-hit": "true", "cache-primary-key": with_["key"],
                                          "cache-matched-key": with_["key"]})
        raise ExpressionError(f"the runner does not know the action {uses!r} (in a composite action)")

    # -- actions -----------------------------------------------------------------------------------------
    def _checkout(self, with_: dict, contexts: dict, ctx: dict, job: JobResult) -> dict:
        github = contexts["github"]
        repository = with_.get("repository") or github["repository"]
        dest = job.workspace / with_.get("path", "")
        if repository == WORKFLOW_REPOSITORY:
            if with_.get("ref") not in (self.workflow_sha, None):
                raise ValueError(f"mlops-ci is checked out at {with_.get('ref')}, not this tree")
            dest.symlink_to(ROOT, target_is_directory=True)
            return {}
        if repository != github["repository"]:
            raise ExpressionError(f"checkout of {repository!r}: only the event's repository is known here")
        ref = with_.get("ref") or github["ref"]
        sha = github["sha"] if ref == github["ref"] else ref
        remote = "file://" + str(self.git_repos[repository])
        git = lambda *a: subprocess.run(["git", *a], cwd=dest, capture_output=True, text=True, check=True,
                                        env=job.env)
        dest.mkdir(parents=True, exist_ok=True)
        depth = [] if str(with_.get("fetch-depth", "1")) == "0" else ["--depth", str(with_.get("fetch-depth", 1))]
        git("init", "--quiet")
        git("remote", "add", "origin", remote)
        git("fetch", "--quiet", "--no-tags", *depth, "origin", "+refs/heads/*:refs/remotes/origin/*")
        if ref.startswith("refs/pull/"):
            git("fetch", "--quiet", *depth, "origin", f"+{ref}:refs/remotes/pull/{ref.split('/')[2]}/merge")
            git("checkout", "--quiet", "--detach", sha)
        elif ref.startswith("refs/heads/"):
            git("checkout", "--quiet", "-B", ref.removeprefix("refs/heads/"), sha)
        else:
            git("checkout", "--quiet", "--detach", sha)
        if git("rev-parse", "HEAD").stdout.strip() != sha:
            raise ValueError(f"checked out {ref}, which is not {sha}")
        return {"ref": ref, "commit": sha}

    def _upload(self, with_: dict, contexts: dict, ctx: dict, job: JobResult) -> dict:
        name = with_.get("name") or "artifact"
        store = ctx["artifacts"] / name
        if store.exists():
            raise ValueError(f"an artifact named {name!r} was uploaded in this run already")
        hidden = with_.get("include-hidden-files", "false") == "true"
        files = []
        for line in filter(None, (p.strip() for p in with_["path"].splitlines())):
            if any(c in line for c in "*?[!"):
                raise ExpressionError(f"upload-artifact: globs are not supported ({line!r})")
            path = Path(line) if Path(line).is_absolute() else job.workspace / line
            found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
            below = lambda p: p.relative_to(job.workspace).parts if p.is_relative_to(job.workspace) else p.parts
            files += [p for p in found if hidden or not any(part.startswith(".") for part in below(p))]
        if not files:
            if with_.get("if-no-files-found", "warn") == "error":
                raise ValueError(f"no files found for artifact {name!r}")
            job.log.append(f"warning: no files found for artifact {name!r}")
            return {}
        common = Path(os.path.commonpath([str(p.parent) for p in files]))
        for p in files:
            (store / p.relative_to(common)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, store / p.relative_to(common))
        return {"artifact-id": str(abs(hash(store)) % 10**9)}

    def _download(self, with_: dict, contexts: dict, ctx: dict, job: JobResult) -> dict:
        run_id = with_.get("run-id") or contexts["github"]["run_id"]
        if with_.get("run-id") and not with_.get("github-token"):
            raise ValueError("download-artifact needs github-token with run-id")
        source = self.artifacts / run_id / with_["name"]
        if not source.is_dir():
            raise ValueError(f"run {run_id} has no artifact {with_['name']!r}")
        dest = Path(with_.get("path") or job.workspace)
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return {"download-path": str(dest)}


def artifact_size(folder: Path) -> int:
    """The zipped size GitHub reports as ``size_in_bytes``."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder).as_posix())
    return len(buffer.getvalue())


# The simulated GitHub CLI: only `gh api --method GET repos/R/actions/runs/ID/artifacts -f name=N
# -f per_page=100 --jq <the size query>`, answered from the artifacts uploaded by this runner.
GH_SHIM = textwrap.dedent('''
    import os, sys
    from pathlib import Path
    sys.path.insert(0, "@TESTS@")
    from actions_runner import JQ_ARTIFACT_SIZE, artifact_size
    args = sys.argv[1:]
    def refuse(why):
        print(f"gh (simulated): {why}: {args}", file=sys.stderr)
        sys.exit(2)
    if not os.environ.get("GH_TOKEN"):
        refuse("no GH_TOKEN")
    if args[:3] != ["api", "--method", "GET"] or len(args) != 10 or args[4::2] != ["-f", "-f", "--jq"]:
        refuse("unsupported call")
    path, fields, jq = args[3], dict(a.split("=", 1) for a in args[5:8:2]), args[9]
    parts = path.split("/")
    if len(parts) != 7 or parts[0] != "repos" or parts[3:5] != ["actions", "runs"] or parts[6] != "artifacts":
        refuse("unsupported endpoint")
    if jq != JQ_ARTIFACT_SIZE or set(fields) != {"name", "per_page"}:
        refuse("unsupported query")
    folder = Path("@ARTIFACTS@") / parts[5] / fields["name"]
    if folder.is_dir():
        print(artifact_size(folder))
''').replace("@TESTS@", str(Path(__file__).resolve().parent))
