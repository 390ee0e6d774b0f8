"""The tool environment runner (mlops_ci.toolenv): the cache key, the lock and the atomic rename with a
tiny tool and a stand-in builder; the deepchecks environment through it; the worker call with stand-in
workers."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlops_ci import toolenv
from mlops_ci.checks.suites import env as envs
from mlops_ci.checks.suites.worker import PROTOCOL
from mlops_ci.errors import BackendError
from mlops_ci.toolenv import ToolEnvSpec
from mlops_ci.toolenv import env as toolenv_env

ROOT = Path(__file__).resolve().parents[2]
SHARED_CACHE = ROOT / ".cache" / "mlops-ci-test"



@pytest.fixture(autouse=True)
def shared_cache(monkeypatch):
    """The real environment is ~1 GB and ~1 min to build: every test run reuses one."""
    monkeypatch.setenv("MLOPS_CI_CACHE_DIR", str(SHARED_CACHE))


# --- the tool environment runner (mlops_ci.toolenv), with a tiny tool and a stand-in builder ----

def tiny(requirements: Path, **over) -> ToolEnvSpec:
    """A tool environment whose supported range holds this interpreter."""
    major, minor = sys.version_info[:2]
    fields = {"name": "tiny", "requirements": requirements, "python": ((major, minor, 0), (major, minor + 1, 0)),
              "python_var": "MLOPS_CI_TINY_PYTHON", "protocol": 1, **over}
    return ToolEnvSpec(**fields)


def test_cache_key_follows_requirements_protocol_and_python(tmp_path, monkeypatch):
    base = toolenv.env_key("deepchecks==0.19.1\n", (3, 11, 7), protocol=PROTOCOL)
    assert base == toolenv.env_key("deepchecks==0.19.1\n", (3, 11, 9), protocol=PROTOCOL)
    assert base != toolenv.env_key("deepchecks==0.19.1\nnumpy==1.26.4\n", (3, 11, 7), protocol=PROTOCOL)
    assert base != toolenv.env_key("deepchecks==0.19.1\n", (3, 12, 0), protocol=PROTOCOL)
    assert base != toolenv.env_key("deepchecks==0.19.1\n", (3, 11, 7), protocol=99)
    assert toolenv.env_path(tmp_path, "deepchecks", base) == tmp_path / "envs" / f"deepchecks-{base[:16]}"


def test_cache_root_precedence(tmp_path, monkeypatch):
    assert toolenv.cache_root() == SHARED_CACHE
    monkeypatch.delenv("MLOPS_CI_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert toolenv.cache_root() == tmp_path / "xdg" / "mlops-ci"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert toolenv.cache_root() == Path.home() / ".cache" / "mlops-ci"
    assert toolenv.cache_root(tmp_path / "given") == tmp_path / "given"


def counting_builder(target: Path, requirements: Path, python: str, log: Path, timeout_s: float) -> None:
    """Stands in for venv + pip: slow enough for racers to meet, counts its builds."""
    with open(target.parent / "builds.txt", "a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(0.5)
    (target / "bin").mkdir()
    (target / "bin" / "python").symlink_to(sys.executable)
    if "fail" in requirements.read_text().splitlines():
        raise BackendError("pip failed")


def _ensure_in_child(root: str, requirements: str) -> None:
    toolenv.ensure(tiny(Path(requirements)), cache_dir=Path(root), builder=counting_builder)


def test_concurrent_ensure_builds_once(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tiny==1\n")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_ensure_in_child, args=(str(tmp_path / "cache"), str(requirements)))
             for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    envs_dir = tmp_path / "cache" / "envs"
    assert len((envs_dir / "builds.txt").read_text().split()) == 1
    env = toolenv.ensure(tiny(requirements), cache_dir=tmp_path / "cache", builder=counting_builder)
    assert env.python.exists() and (env.path / toolenv.MARKER).is_file()
    assert env.path.name.startswith("tiny-")
    assert len((envs_dir / "builds.txt").read_text().split()) == 1
    assert not list(envs_dir.glob(".tiny-*.tmp-*"))


def test_a_half_built_env_is_never_used(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tiny==1\nfail\n")
    with pytest.raises(BackendError, match="pip failed"):
        toolenv.ensure(tiny(requirements), cache_dir=tmp_path, builder=counting_builder)
    assert [p.name for p in (tmp_path / "envs").iterdir() if p.is_dir()] == []
    requirements.write_text("tiny==1\n")
    env = toolenv.ensure(tiny(requirements), cache_dir=tmp_path, builder=counting_builder)
    (env.path / toolenv.MARKER).unlink()  # as if a copy stopped half-way
    again = toolenv.ensure(tiny(requirements), cache_dir=tmp_path, builder=counting_builder)
    assert again.path == env.path and (env.path / toolenv.MARKER).is_file()
    assert len((tmp_path / "envs" / "builds.txt").read_text().split()) == 3


def test_a_held_lock_times_out_with_a_clear_error(tmp_path):
    import fcntl

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tiny==1\n")
    key = toolenv.env_key("tiny==1\n", sys.version_info[:3], protocol=1)
    lock = toolenv.env_path(tmp_path, "tiny", key).with_suffix(".lock")
    lock.parent.mkdir(parents=True)
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(toolenv.EnvBuildError, match="waited 1s for the lock .* creating the tiny environment"):
            toolenv.ensure(tiny(requirements), cache_dir=tmp_path, builder=counting_builder, timeout_s=1)
    assert not (tmp_path / "envs" / "builds.txt").exists()


def test_the_interpreter_comes_from_the_specs_variable_and_must_be_in_its_range(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tiny==1\n")
    monkeypatch.setenv("MLOPS_CI_TINY_PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(toolenv.EnvBuildError, match="cannot run the interpreter .*no-python for the tiny") as caught:
        toolenv.ensure(tiny(requirements), cache_dir=tmp_path, builder=counting_builder)
    assert caught.value.hint.startswith("point MLOPS_CI_TINY_PYTHON at a CPython")
    python = tmp_path / "python3"
    python.symlink_to(sys.executable)
    monkeypatch.setenv("MLOPS_CI_TINY_PYTHON", str(python))
    env = toolenv.ensure(tiny(requirements), cache_dir=tmp_path, builder=counting_builder)
    assert json.loads((env.path / toolenv.MARKER).read_text())["base_python"] == str(python)
    old = tiny(requirements, name="old", python=((3, 8, 0), (3, 11, 0)), python_note="old pins")
    with pytest.raises(toolenv.EnvBuildError, match=r"the old environment needs CPython 3\.8, 3\.9 or 3\.10 "
                                                    r"\(old pins\), but .* is Python 3\."):
        toolenv.ensure(old, cache_dir=tmp_path, builder=counting_builder)
    with pytest.raises(ValueError, match="python range"):
        tiny(requirements, python=((3, 12, 0), (3, 11, 0)))


# --- the deepchecks environment through the runner ------------------------------------------------

def test_the_deepchecks_env_keeps_its_key_place_and_variable(tmp_path, monkeypatch):
    """An environment cached before mlops_ci.toolenv (same key, same folder) is reused as it is."""
    if not (3, 11, 5) <= sys.version_info[:3] < (3, 13):
        pytest.skip("the deepchecks environment needs CPython 3.11.5+ or 3.12")
    text = envs.REQUIREMENTS.read_text(encoding="utf-8")
    python = tmp_path / "python3"
    python.symlink_to(sys.executable)
    monkeypatch.setenv("MLOPS_CI_DEEPCHECKS_PYTHON", str(python))
    major, minor = sys.version_info[:2]
    key = hashlib.sha256(f"{text}\0protocol={PROTOCOL}\0python={major}.{minor}".encode()).hexdigest()
    env = envs.ensure_env(cache_dir=tmp_path, builder=counting_builder)
    assert env.key == key and env.path == tmp_path / "envs" / f"deepchecks-{key[:16]}"
    marker = json.loads((env.path / toolenv.MARKER).read_text())
    assert marker["protocol"] == PROTOCOL and marker["base_python"] == str(python)
    assert envs.ensure_env(cache_dir=tmp_path, builder=counting_builder) == env
    assert len((tmp_path / "envs" / "builds.txt").read_text().split()) == 1


def test_pip_failures_raise_with_the_tail_of_its_output(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{tmp_path}/no-such-package-1.0-py3-none-any.whl\n")
    with pytest.raises(envs.EnvBuildError) as caught:
        envs.ensure_env(cache_dir=tmp_path, requirements=requirements)
    assert "pip install of the deepchecks environment failed" in caught.value.message
    assert "no-such-package" in caught.value.message and "PyPI" in caught.value.hint
    assert isinstance(caught.value, BackendError)
    assert not [p for p in (tmp_path / "envs").iterdir() if p.is_dir()]
    (log,) = (tmp_path / "envs").glob("deepchecks-*.log")  # the build log is kept
    assert "no-such-package" in log.read_text()


def test_unsupported_python_is_refused_before_building(tmp_path, monkeypatch):
    monkeypatch.setattr(toolenv_env, "python_version", lambda python, spec: (3, 13, 0))
    with pytest.raises(envs.EnvBuildError, match="3.11.5\\+ or 3.12") as caught:
        envs.ensure_env(cache_dir=tmp_path, builder=counting_builder)
    assert "the deepchecks environment needs CPython 3.11.5+ or 3.12 (numpy<2)" in caught.value.message
    assert caught.value.hint.endswith("MLOPS_CI_DEEPCHECKS_PYTHON=/usr/bin/python3.11")
    assert not (tmp_path / "envs").exists()


# --- the worker client (mlops_ci.toolenv.call), with stand-in workers -----------------------------

def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "worker.py"
    path.write_text("import json, os, sys, time\n" + textwrap.dedent(body))
    return path


def test_a_call_over_stdin_and_stdout_runs_isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "core-packages"))
    worker = script(tmp_path, """
        request = json.load(sys.stdin)
        print("working", file=sys.stderr)
        json.dump({"echo": request, "argv": sys.argv[1:], "pythonpath": os.environ.get("PYTHONPATH"),
                   "nousersite": os.environ.get("PYTHONNOUSERSITE"), "extra": os.environ.get("EXTRA")}, sys.stdout)
    """)
    log = tmp_path / "worker.log"
    answer = toolenv.call(Path(sys.executable), worker, {"ask": [1, "two"]}, log=log, timeout_s=60,
                          env={"EXTRA": "yes"})
    assert answer == {"echo": {"ask": [1, "two"]}, "argv": [], "pythonpath": None, "nousersite": "1",
                      "extra": "yes"}
    assert log.read_text() == "working\n"


def test_a_call_through_files_named_by_the_request(tmp_path):
    worker = script(tmp_path, """
        request = json.load(open(sys.argv[1]))
        print("to the log")
        json.dump({"got": request["n"] + 1}, open(request["out"], "w"))
    """)
    request_path, response_path, log = tmp_path / "spec.json", tmp_path / "result.json", tmp_path / "w.log"
    response_path.write_text('{"got": "stale"}')
    worker_request = {"n": 41, "out": str(response_path)}
    answer = toolenv.call(Path(sys.executable), worker, worker_request, log=log, timeout_s=60,
                          request_path=request_path, response_path=response_path)
    assert answer == {"got": 42} and json.loads(request_path.read_text()) == worker_request
    assert log.read_text() == "to the log\n"
    worker = script(tmp_path, "pass\n")
    with pytest.raises(toolenv.WorkerFailed, match="exited 0 but wrote no result"):
        toolenv.call(Path(sys.executable), worker, worker_request, log=log, timeout_s=60,
                     request_path=request_path, response_path=response_path)


@pytest.mark.parametrize("body, reason", [
    ("print('not json')", "result \\(stdout\\) is not valid"),
    ("print('{\"x\": NaN}')", "NaN is not valid JSON"),
    ("pass", "exited 0 but wrote no result \\(stdout\\)"),
    ("print('[' + '1,' * 100 + '1]')", "over the cap of 100"),
])
def test_a_response_that_cannot_be_trusted_is_a_failed_call(tmp_path, body, reason):
    with pytest.raises(toolenv.WorkerFailed, match=reason):
        toolenv.call(Path(sys.executable), script(tmp_path, body), {}, log=tmp_path / "w.log", timeout_s=60,
                     max_response_bytes=100)


def test_a_failed_call_reports_the_log_tail_with_secrets_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_CI_TEST_TOKEN", "tok-5ecret-value")
    worker = script(tmp_path, """
        sys.stderr.write("Traceback...\\nRuntimeError: bad token " + os.environ["MLOPS_CI_TEST_TOKEN"] + "\\n")
        sys.exit(2)
    """)
    with pytest.raises(toolenv.WorkerExited) as caught:
        toolenv.call(Path(sys.executable), worker, {}, log=tmp_path / "w.log", timeout_s=60)
    assert caught.value.code == 2 and caught.value.log == tmp_path / "w.log"
    assert "exited with 2" in str(caught.value) and "RuntimeError: bad token ***" in str(caught.value)
    assert "tok-5ecret-value" not in str(caught.value)
    assert "tok-5ecret-value" not in toolenv.tail(tmp_path / "w.log")


def test_a_call_past_its_timeout_stops_the_worker_and_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    worker = script(tmp_path, f"""
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """)
    started = time.monotonic()
    with pytest.raises(toolenv.WorkerTimeout, match="ran past its timeout of 2s and was stopped"):
        toolenv.call(Path(sys.executable), worker, {}, log=tmp_path / "w.log", timeout_s=2)
    assert time.monotonic() - started < 20
    child = int(pid_file.read_text())
    for _ in range(50):  # the killed child is reaped by init
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the worker's child {child} still runs")
