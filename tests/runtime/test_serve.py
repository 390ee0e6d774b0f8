"""`mlops-ci serve` and the MLServer runtime it starts: real MLServer processes on 127.0.0.1.

The runtime environment (MLServer 1.7.1 with its MLflow runtime and the tiny model's requirements,
which are examples/churn's: the demo's test shares it) is built once under the tests' shared cache, as the
deepchecks one is; a rebuild takes about a minute.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import SHARED_CACHE

from mlops_ci.config.schema import DeploymentServing, InferenceServiceServing
from mlops_ci.errors import InputError
from mlops_ci.runtime import mlserver, runtime_for, v2

pytestmark = pytest.mark.slow


@pytest.fixture
def cache(monkeypatch) -> Path:
    monkeypatch.setenv("MLOPS_CI_CACHE_DIR", str(SHARED_CACHE))
    return SHARED_CACHE


def staging(repo: Path):
    """(the repository's tracking backend, the version its staging alias names): what serve serves."""
    from mlops_ci.config import load_config
    from mlops_ci.pipeline import default_backends
    from mlops_ci.workspace import Workspace

    tracking = default_backends(Workspace.from_config(load_config(repo / ".mlops-ci.yaml"))).tracking
    return tracking, tracking.version_by_alias("tiny", "staging")


def test_serve_answers_the_printed_curl_and_stops_on_ctrl_c(champion_repo, cache):
    env = {**os.environ, "MLOPS_CI_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mlops_ci", "serve", "--model", "tiny"], cwd=champion_repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    try:
        deadline = time.monotonic() + 420  # a first build of the environment included
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops it" in line:
                break
        out = "".join(lines)
        assert "Ctrl-C stops it" in out, out + proc.stderr.read() if proc.poll() is not None else out
        assert "serving tiny v1 with MLServer (mlserver_mlflow.MLflowRuntime)" in out
        curl = next(line.strip() for line in lines if line.strip().startswith("curl "))
        answer = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=60, check=True)
        served = v2.outputs(json.loads(answer.stdout)).ravel()
        # the same row through mlflow.pyfunc, as the evaluation scores it
        import pandas as pd

        body = json.loads(shlex.split(curl)[-1])
        row = pd.DataFrame({i["name"]: i["data"] for i in body["inputs"]})
        tracking, info = staging(champion_repo)
        expected = tracking.predict(f"models:/tiny/{info.version}", row)
        assert served == pytest.approx(list(expected), abs=1e-9)
        url = curl.split()[4].strip("'")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "stopped" in rest
    assert not (champion_repo / ".metrics").exists(), "MLServer wrote its metrics into the user's folder"
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json=body, timeout=5)


def test_sigterm_stops_the_server_as_ctrl_c_does(champion_repo, cache):
    """A CI timeout or a service manager sends SIGTERM: nothing is left serving."""
    env = {**os.environ, "MLOPS_CI_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mlops_ci", "serve", "--model", "tiny", "--version", "1"],
                            cwd=champion_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = None
    try:
        for line in iter(proc.stdout.readline, ""):
            if "/v2/models/tiny" in line and url is None:
                url = line.split()[0]
            if "Ctrl-C stops it" in line:
                break
        assert url is not None and requests.get(url + "/ready", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped" in rest, err
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/ready", timeout=5)


def test_an_alias_no_version_holds_is_not_found(champion_repo):
    proc = subprocess.run([sys.executable, "-m", "mlops_ci", "serve", "--model", "tiny", "--alias", "nope"],
                          cwd=champion_repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4 and "no version of tiny holds the alias 'nope'" in proc.stderr, proc.stderr


def test_a_taken_port_is_refused_before_anything_is_built(champion_repo):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "mlops_ci", "serve", "--model", "tiny", "--port", str(port)],
                              cwd=champion_repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"port {port} on 127.0.0.1 is already taken" in proc.stderr and "pick another" in proc.stderr


@pytest.mark.parametrize("line", ["--index-url https://evil.example/simple", "-e git+https://x/y#egg=y",
                                  "pkg @ https://evil.example/pkg.whl", "-r ../other.txt", "./local-dir"])
def test_a_model_s_requirements_never_choose_where_pip_downloads(tmp_path, line):
    (tmp_path / "requirements.txt").write_text(f"numpy\n{line}\n")
    with pytest.raises(InputError, match="is not a plain requirement"):
        mlserver.model_requirements(tmp_path)


def test_plain_requirements_are_kept_and_key_the_environment(tmp_path):
    (tmp_path / "requirements.txt").write_text("mlflow==3.17.2\n# a comment\nnumpy\npandas>=2  # why\n")
    assert mlserver.model_requirements(tmp_path) == ["mlflow==3.17.2", "numpy", "pandas>=2"]
    spec = mlserver.spec_for(tmp_path, tmp_path / "cache")
    assert spec.requirements.read_text().endswith(mlserver.REQUIREMENTS.read_text())
    (tmp_path / "requirements.txt").write_text("numpy\n")
    assert mlserver.spec_for(tmp_path, tmp_path / "cache").requirements != spec.requirements


def test_which_runtime_serves_a_model_and_why_none_can():
    assert runtime_for(InferenceServiceServing()) == ("mlserver", "")
    for serving, words in [
        (InferenceServiceServing(model_format="sklearn"), "no runtime here serves modelFormat 'sklearn'"),
        (InferenceServiceServing(protocol_version="v1"), "over protocol v1"),
        (InferenceServiceServing(runtime="my-triton"), "'my-triton' is a ServingRuntime of your cluster"),
        (DeploymentServing(kind="deployment", image="ghcr.io/a/b@sha256:" + "b" * 64), "no container engine"),
    ]:
        name, why = runtime_for(serving)
        assert name is None and words in why, why


def test_a_v2_request_carries_each_column_with_its_type():
    import pandas as pd

    frame = pd.DataFrame({"x": [1.5, None], "n": [1, 2], "c": ["a", "b"], "f": [True, False]})
    body = v2.request(v2.sendable(frame))
    assert body["parameters"] == {"content_type": "pd"}
    assert [(i["name"], i["datatype"], i["shape"], i["data"]) for i in body["inputs"]] == [
        ("x", "FP64", [1], [1.5]), ("n", "INT64", [1], [1]), ("c", "BYTES", [1], ["a"]), ("f", "BOOL", [1], [True])]
    assert body["inputs"][2]["parameters"] == {"content_type": "str"}
