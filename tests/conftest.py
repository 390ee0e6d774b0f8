"""Shared fixtures. Every test runs with a throw-away HOME and no CI/GitHub/MLflow settings
from the caller's environment, so nothing touches the developer's machine."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("MLOPS_CI_REGEN_GOLDEN") == "1"
CONTRACTS = ROOT.parent / "shared" / "contracts"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
AUTHOR = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
          "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}
SHARED_CACHE = ROOT / ".cache" / "mlops-ci-test"  # tool environments, kept between sessions

# The slowest files run first, so that `make test`'s two workers (pytest -n 2 --dist loadfile)
# finish together instead of one of them starting the demo last.
# test_demo builds the MLServer environment on a fresh clone while test_features_cli builds Feast's;
# the Prometheus scene, next, needs the MLServer one (under its lock) and finds it built.
SLOW_FIRST = ("pipeline/test_demo.py", "features/test_features_cli.py", "rollout/test_metrics_analysis.py",
              "pipeline/test_example_sklearn.py", "checks/test_check_suites.py", "features/test_feast_worker.py",
              "github/test_github_path.py", "pipeline/test_reviewed.py", "argo/test_argo_training.py",
              "runtime/test_serving_check.py", "pipeline/test_flow.py", "checks/test_suites.py")


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        path = Path(str(item.fspath)).relative_to(ROOT / "tests").as_posix()
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)
    items.sort(key=rank)  # stable: the order within a file and among the rest is kept


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    # one cache for the session (what mlops-ci caches is keyed by content: the migrated MLflow schema)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for key, value in AUTHOR.items():
        monkeypatch.setenv(key, value)
    for key in list(os.environ):
        if key.startswith(("GITHUB_", "MLFLOW_TRACKING", "MLFLOW_RUN", "MLFLOW_EXPERIMENT", "RUNNER_")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("CI", raising=False)


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env={**os.environ, **AUTHOR})
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def dvc(repo: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def cli(repo: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`mlops-ci ARGS` as a user runs it: a new process, in the repository."""
    return subprocess.run([sys.executable, "-m", "mlops_ci", *args], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def tiny_frame(rows: int = 600, seed: int = 0, *, shift: float = 0.0, colors=("red", "green", "blue")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1, rows)
    x2 = rng.normal(0, 1, rows)
    color = rng.choice(list(colors), rows)
    label = (rng.uniform(size=rows) < 1 / (1 + np.exp(-(1.5 * x1 - x2)))).astype(int)
    return pd.DataFrame({"x1": x1.round(4), "x2": x2.round(4), "color": color, "label": label})


def write_tiny_data(repo: Path, **kwargs) -> None:
    frame = tiny_frame(**kwargs)
    (repo / "data").mkdir(exist_ok=True)
    frame.iloc[: len(frame) // 4].to_csv(repo / "data" / "eval.csv", index=False)
    frame.iloc[len(frame) // 4:].to_csv(repo / "data" / "train.csv", index=False)


def set_params(repo: Path, **values) -> None:
    import yaml

    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params.update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def tiny_repo(tmp_path) -> Path:
    """The tiny project as a git repository on `main`, data committed to git, one commit."""
    repo = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "tiny", repo)
    (repo / ".gitignore").write_text(".mlops-ci/\n")
    write_tiny_data(repo)
    git(repo, "init", "--quiet", "--initial-branch=main")
    commit(repo, "tiny model")
    return repo


def tiny_config_serving(folder: Path, serving: str) -> Path:
    """The tiny project's `.mlops-ci.yaml` in ``folder`` with ``serving`` (YAML) as its model's serving section."""
    text = (FIXTURES / "tiny" / ".mlops-ci.yaml").read_text().split("    serving:\n")[0]
    if "check:" not in serving:
        serving += "\ncheck: {enabled: false}"
    path = folder / ".mlops-ci.yaml"
    path.write_text(text + "    serving:\n" + "".join(f"      {line}\n" for line in serving.strip().splitlines()))
    return path


def refused_at(path: Path, line: str, words: str) -> str:
    """Loading ``path`` fails with ``words``, located at the first line starting with ``line``;
    returns the message."""
    from mlops_ci.config import load_config
    from mlops_ci.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert words in message, message
    number = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.strip().startswith(line))
    assert f"{path}:{number}:" in message, message
    return message


def golden(name: str, text: str) -> None:
    """``text`` equals tests/golden/``name`` (written when missing, or with MLOPS_CI_REGEN_GOLDEN=1)."""
    path = GOLDEN / name
    if REGEN or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from the golden file (MLOPS_CI_REGEN_GOLDEN=1 to update)"


@functools.cache
def load_crd_schema(relative: str, version: str) -> dict:
    import yaml

    path = CONTRACTS / relative
    if not path.exists():
        raise AssertionError(f"{path} is missing: the tests need ../shared/contracts beside the project")
    docs = list(yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    for doc in docs:
        for v in doc["spec"]["versions"]:
            if v["name"] == version:
                return v["schema"]["openAPIV3Schema"]
    raise AssertionError(f"{relative} has no version {version}")


def kserve_errors(obj: dict) -> list[str]:
    import jsonschema

    schema = load_crd_schema("kserve/serving.kserve.io_inferenceservices.yaml", "v1beta1")
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj)]


# -- the loop on the tiny project (tests/pipeline/test_flow.py and the tests of what ships) -------------------

def registry(repo: Path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / '.mlops-ci' / 'mlflow.db'}")
    versions = client.search_model_versions("name='tiny'")
    aliases = {}
    if versions:
        aliases = {k: str(v) for k, v in client.get_registered_model("tiny").aliases.items()}
    return sorted(int(v.version) for v in versions), aliases


def run_count(repo: Path) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / '.mlops-ci' / 'mlflow.db'}")
    return len(client.search_runs([client.get_experiment_by_name("mlops-ci/tiny").experiment_id]))


def gitops_commits(repo: Path) -> int:
    bare = repo / ".mlops-ci" / "gitops.git"
    if not (bare / "refs" / "heads" / "main").exists():
        return 0
    return int(git(bare, "rev-list", "--count", "main"))


def one_line_error(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("mlops-ci: error:")]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


@pytest.fixture
def champion_repo(tiny_repo, tmp_path_factory, tmp_path) -> Path:
    """tiny with v1 trained on main and promoted to staging, as a fresh copy for each test.

    Trained once per session (about 13 s saved per test). The copy's MLflow database still names
    the first repository's artifact folder for v1 (MLflow keeps absolute artifact locations);
    that folder stays in place for the session and tests only add runs of their own to it."""
    first = tmp_path_factory.getbasetemp() / "flow-champion" / "tiny"
    if not (first / ".mlops-ci" / "trained").exists():
        shutil.rmtree(first.parent, ignore_errors=True)
        shutil.copytree(tiny_repo, first, symlinks=True)
        proc = cli(first, "run", "--quiet")
        assert proc.returncode == 0, proc.stderr[-3000:]
        proc = cli(first, "promote", "--model", "tiny", "--env", "staging")
        assert proc.returncode == 0, proc.stderr[-3000:]
        (first / ".mlops-ci" / "trained").touch()
    repo = tmp_path / "champion"
    shutil.copytree(first, repo, symlinks=True, ignore=shutil.ignore_patterns("trained"))
    return repo
