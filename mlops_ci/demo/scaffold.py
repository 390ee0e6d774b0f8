"""Build the demo's scratch repository: a copy of examples/churn as its own git + DVC repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from mlops_ci import gitutil
from mlops_ci.errors import BackendError, UsageError

MARKER = ".mlops-ci-demo"
AUTHOR = {"GIT_AUTHOR_NAME": "Dana Demo", "GIT_AUTHOR_EMAIL": "dana@example.com",
          "GIT_COMMITTER_NAME": "Dana Demo", "GIT_COMMITTER_EMAIL": "dana@example.com"}


def example_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "examples" / "churn"
    if not (here / ".mlops-ci.yaml").is_file():
        raise UsageError(f"the demo needs examples/churn from the mlops-ci source tree (looked in {here})",
                         hint="run `make demo` from a clone of the mlops-ci repository")
    return here


def fresh_workdir(workdir: Path) -> Path:
    """Empty ``workdir`` for a clean run; refuse to delete a folder the demo did not create."""
    workdir = workdir.resolve()
    if workdir.exists():
        if not (workdir / MARKER).exists():
            if any(workdir.iterdir()):
                raise UsageError(f"{workdir} exists and was not created by `mlops-ci demo`; not deleting it",
                                 hint="pass --workdir with a new or empty folder")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("created by `mlops-ci demo`; deleted when the demo re-runs\n")
    return workdir


def copy_example(dest: Path) -> Path:
    src = example_dir()
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.csv", ".mlops-ci", "__pycache__", "*.dvc", "mlruns"))
    return dest


def tool_env() -> dict[str, str]:
    env = {**os.environ, **AUTHOR, "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
    # the demo must not pick up a caller's tracking server or GitHub event
    for key in ("MLFLOW_TRACKING_URI", "GITHUB_ACTIONS", "GITHUB_EVENT_PATH"):
        env.pop(key, None)
    return env


def run(cmd: list[str], cwd: Path, what: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BackendError(f"demo step '{what}' failed ({' '.join(cmd[:4])}): {' | '.join(tail)}")
    return proc.stdout


def git(repo: Path, *args: str) -> str:
    return gitutil.git(list(args), repo, env=AUTHOR).stdout


def dvc(repo: Path, *args: str) -> str:
    return run([sys.executable, "-m", "dvc", *args], repo, f"dvc {args[0]}")


def generate(repo: Path, *args: str) -> str:
    return run([sys.executable, "generate_data.py", *args], repo, "generate data").strip()


def init_repo(repo: Path, remote: Path) -> None:
    git(repo, "init", "--quiet", "--initial-branch=main")
    dvc(repo, "init", "--quiet")
    dvc(repo, "config", "core.analytics", "false")
    dvc(repo, "remote", "add", "--default", "local", str(remote))


def track_data(repo: Path, *paths: str) -> None:
    dvc(repo, "add", "--quiet", *paths)
    dvc(repo, "push", "--quiet")


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def edit_params(repo: Path, **train: object) -> None:
    """Change params.yaml's train section as a round-trip edit (comments stay)."""
    from mlops_ci.serving import yamlio

    path = repo / "params.yaml"
    doc = yamlio.load(path.read_bytes())
    for key, value in train.items():
        doc["train"][key] = value
    path.write_bytes(yamlio.dump(doc))
