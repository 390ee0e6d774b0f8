"""The serving check stage: the candidate and the champion served by real MLServer processes on
127.0.0.1, through `mlops-ci run` and through the stage's own functions for the failures a run
cannot plant cheaply. The runtime environment is test_serve's (same requirements, shared cache)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import cli, commit, git, one_line_error, registry, set_params
from test_serve import SHARED_CACHE, staging

from mlops_ci.config.schema import ServingCheck, Threshold
from mlops_ci.errors import ExitCode
from mlops_ci.records import load_record
from mlops_ci.stages import serve as serve_stage
from mlops_ci.stages.serve_gates import grade

pytestmark = pytest.mark.slow
CACHE_ENV = {"MLOPS_CI_CACHE_DIR": str(SHARED_CACHE)}


def serving_on(repo: Path, check: str = "{sample_rows: 40, requests: 80, concurrency: 2}", extra: str = "") -> None:
    """Turn the serving check on in ``repo``'s config (the fixture turns it off), with ``extra``
    serving lines (YAML, indented as the section's settings)."""
    path = repo / ".mlops-ci.yaml"
    text = path.read_text()
    assert "      check: {enabled: false}\n" in text
    path.write_text(text.replace("      check: {enabled: false}\n", f"      check: {check}\n{extra}"))


def test_a_run_serves_candidate_and_champion_and_fails_a_model_over_its_memory_limit(champion_repo):
    repo = champion_repo
    git(repo, "checkout", "--quiet", "-b", "pr/serve")
    serving_on(repo, extra="      requests: {cpu: '1', memory: 32Mi}\n      limits: {cpu: '2', memory: 64Mi}\n")
    set_params(repo, lr=0.4)
    commit(repo, "a new candidate, served under a 64Mi limit")
    proc = cli(repo, "run", "--junit", "junit.xml", env=CACHE_ENV)
    assert proc.returncode == ExitCode.GATE_FAILED, proc.stderr[-3000:]
    line = next(x for x in proc.stderr.splitlines() if x.startswith("mlops-ci: tiny: serving check failed"))
    assert "of limits.memory (64 MiB)" in line and "OOMKilled" in line and "nothing was registered" in line
    entry = load_record(repo / ".mlops-ci" / "record.json").model("tiny")
    serving = entry.serving
    assert serving.status == "fail" and entry.registration is None
    cand, champ = serving.candidate, serving.champion
    assert champ is not None and champ.label == "champion v1" and champ.error is None
    for served in (cand, champ):  # measured for real: ready, answered every request, memory sampled
        assert served.ready_s > 0 and served.latency.requests == 80 and served.latency.errors == 0
        assert 0 < served.latency.p50_ms <= served.latency.p99_ms and served.latency.rps > 0
        assert served.peak_memory_bytes > 64 << 20
    assert serving.parity.rows == 40 and serving.parity.mismatches == 0
    by_check = {f.check: f for f in serving.findings}
    assert by_check["parity"].status == "pass" and by_check["memory_share"].status == "fail"
    assert by_check["latency_ratio"].status in ("pass", "warn") and by_check["cold_start_s"].status == "pass"
    report = (repo / ".mlops-ci" / "report.md").read_text()
    assert "#### Serving check ❌ fail" in report and "| p99 |" in report and "champion v1" in report
    assert "latency in ms by percentile: candidate as bars, champion as line" in report
    assert "failed its serving check" in report
    junit = (repo / "junit.xml").read_text()
    assert 'name="tiny.serving"' in junit and 'classname="tiny.serving" name="memory_share"' in junit
    assert registry(repo) == ([1], {"staging": "1"})  # nothing registered
    git(repo, "checkout", "--quiet", "main")
    git(repo, "merge", "--quiet", "--no-ff", "pr/serve", "-m", "merge")
    promote = cli(repo, "promote", "--model", "tiny", "--env", "staging")
    assert promote.returncode == ExitCode.GATE_FAILED and "serving check" in one_line_error(promote)

    # the latency gates, graded on what this run measured
    lat = cand.latency
    strict = ServingCheck(max_p99_ms=Threshold(fail=lat.p99_ms / 2), max_latency_ratio=Threshold(warn=0.0001))
    graded = {f.check: f for f in grade(serving, strict)}
    assert graded["p99_ms"].status == "fail" and f"p99 latency {lat.p99_ms:.1f} ms" in graded["p99_ms"].message
    assert graded["latency_ratio"].status == "warn" and "champion v1's" in graded["latency_ratio"].message
    lenient = ServingCheck(max_p99_ms=Threshold(warn=lat.p99_ms * 10))
    assert {f.check: f.status for f in grade(serving, lenient)}["p99_ms"] == "pass"


BATCH_BUG = '''
    def predict(self, context, model_input, params=None):
        X = np.column_stack([model_input[c].astype(float).fillna(0) for c in self.p["features"]])
        X = X - X.mean(axis=0) + self.p.get("center", 0.0)  # "normalised" by the batch it is given
        return 1 / (1 + np.exp(-(X @ np.array(self.p["w"]) + self.p["b"])))
'''


def test_a_model_whose_predict_depends_on_its_batch_fails_parity_with_the_first_differing_row(champion_repo):
    repo = champion_repo
    serving_on(repo)
    source = (repo / "tiny_model.py").read_text()
    start, end = source.index("    def predict"), source.index("\n\nset_model")
    (repo / "tiny_model.py").write_text(source[:start] + BATCH_BUG.strip("\n") + source[end:])
    commit(repo, "normalise in predict")
    proc = cli(repo, "run", env=CACHE_ENV)
    assert proc.returncode == ExitCode.GATE_FAILED, proc.stderr[-3000:]
    serving = load_record(repo / ".mlops-ci" / "record.json").model("tiny").serving
    parity = serving.parity
    assert serving.status == "fail" and parity.mismatches > 0 and parity.first.row == 0
    assert set(parity.first.inputs) == {"x1", "x2", "color"} and parity.first.served != parity.first.expected
    report = (repo / ".mlops-ci" / "report.md").read_text()
    assert "First differing row: eval row 0" in report and "answered differently than the evaluation" in report
    assert registry(repo) == ([1], {"staging": "1"})


@pytest.fixture
def tiny_model(champion_repo, monkeypatch, tmp_path) -> Path:
    """A copy of the staging version's files (its requirements: test_serve's environment)."""
    monkeypatch.setenv("MLOPS_CI_CACHE_DIR", str(SHARED_CACHE))
    monkeypatch.chdir(champion_repo)
    tracking, info = staging(champion_repo)
    copy = tmp_path / "model"
    shutil.copytree(Path(tracking.local_copy(info.artifact_uri)), copy)
    return copy


def sample_bodies(repo: Path, rows: int = 20, drop: tuple[str, ...] = ()) -> list[bytes]:
    import pandas as pd

    from mlops_ci.runtime import v2

    frame = v2.sendable(pd.read_csv(repo / "data" / "eval.csv").drop(columns=["label", *drop])).head(rows)
    return [v2.request_json(frame.iloc[[i]]).encode() for i in range(len(frame))]


def served(**checks):
    from mlops_ci.records import ServedModel

    return ServedModel(role="candidate", label="the candidate"), ServingCheck(**checks)


def plant(model: Path, code: str) -> None:
    """Add ``code`` at the start of the model's predict, run only under MLServer."""
    path = model / "tiny_model.py"  # the model's code, as MLflow logged it
    text = path.read_text()
    marker = "    def predict(self, context, model_input, params=None):\n"
    assert marker in text, text
    path.write_text(text.replace(marker, marker + "        import os\n        if os.environ.get('MLSERVER_MODEL_NAME'):\n"
                                 + "".join(f"            {line}\n" for line in code.strip().splitlines())))


def test_a_request_the_model_rejects_fails_with_the_runtime_s_answer(champion_repo, tiny_model, tmp_path):
    target, check = served(requests=20)
    with pytest.raises(serve_stage._Failed) as err:
        serve_stage.serve_one(target, model_dir=tiny_model, name="tiny", bodies=sample_bodies(champion_repo, drop=("x2",)),
                              rows=list(range(20)), check=check, workdir=tmp_path / "serve", progress=_null())
    message = str(err.value)
    assert message.startswith("MLServer answered HTTP") and "to eval row 0" in message and "x2" in message, message
    assert "\n" not in message and target.ready_s > 0


def test_a_model_that_crashes_the_server_under_load_fails_the_check(champion_repo, tiny_model, tmp_path):
    plant(tiny_model, "_calls = globals().setdefault('_calls', [])\n_calls.append(1)\n"
                      "if len(_calls) > 30:\n    os._exit(3)")
    target, check = served(requests=60, concurrency=2)
    with pytest.raises(serve_stage._Failed) as err:
        serve_stage.serve_one(target, model_dir=tiny_model, name="tiny", bodies=sample_bodies(champion_repo),
                              rows=list(range(20)), check=check, workdir=tmp_path / "serve", progress=_null())
    message = str(err.value)
    assert "requests under load failed" in message and "\n" not in message, message


def test_a_runtime_that_never_gets_ready_fails_with_the_tail_of_its_log(champion_repo, tiny_model, tmp_path):
    path = tiny_model / "tiny_model.py"
    text = path.read_text()
    marker = "    def load_context(self, context):\n"
    path.write_text(text.replace(marker, marker + "        import os, time\n        print('loading slowly', flush=True)\n"
                                 "        time.sleep(600 if os.environ.get('MLSERVER_MODEL_NAME') else 0)\n"))
    # 8 s: long enough for MLServer to log its start on a busy machine (4 s was not, with two suites running)
    target, check = served(ready_timeout_s=8)
    with pytest.raises(serve_stage._Failed) as err:
        serve_stage.serve_one(target, model_dir=tiny_model, name="tiny", bodies=sample_bodies(champion_repo),
                              rows=list(range(20)), check=check, workdir=tmp_path / "serve", progress=_null())
    assert "did not get tiny ready within 8s" in str(err.value)
    assert err.value.log_tail and "mlserver" in err.value.log_tail.lower()


def test_an_artifact_the_runtime_cannot_load_fails_with_the_tail_of_its_log(champion_repo, tiny_model, tmp_path):
    text = (tiny_model / "MLmodel").read_text()  # a module the runtime's environment does not have
    (tiny_model / "MLmodel").write_text(text.replace("loader_module: mlflow.pyfunc.loaders.code_model",
                                                     "loader_module: tiny_model_dependency_missing"))
    target, check = served()
    with pytest.raises(serve_stage._Failed) as err:
        serve_stage.serve_one(target, model_dir=tiny_model, name="tiny", bodies=sample_bodies(champion_repo),
                              rows=list(range(20)), check=check, workdir=tmp_path / "serve", progress=_null())
    assert str(err.value).startswith("MLServer exited (code") and "before tiny was ready" in str(err.value)
    assert "tiny_model_dependency_missing" in err.value.log_tail
    assert not (champion_repo / ".metrics").exists()  # its Prometheus files stay in its own folder


def test_a_runtime_environment_that_cannot_be_built_fails_with_pip_s_last_lines(tiny_model, tmp_path):
    (tiny_model / "requirements.txt").write_text("mlflow==3.17.2\nmlops-ci-no-such-package==9.9.9\n")
    target, check = served()
    with pytest.raises(serve_stage._Failed) as err:
        serve_stage.serve_one(target, model_dir=tiny_model, name="tiny", bodies=[b"{}"], rows=[0], check=check,
                              workdir=tmp_path / "serve", progress=_null())
    message = str(err.value)
    assert message.startswith("the runtime's environment could not be built") and "mlops-ci-no-such-package" in message


def test_a_runtime_that_cannot_run_here_is_skipped_with_the_reason_never_passed(tmp_path):
    from types import SimpleNamespace

    from conftest import tiny_config_serving

    from mlops_ci.config import load_config
    from mlops_ci.workspace import Workspace

    image = "ghcr.io/acme/server@sha256:" + "a" * 64
    git(tmp_path, "init", "--quiet")
    path = tiny_config_serving(tmp_path, f"kind: deployment\nimage: {image}\ncheck: {{enabled: true}}")
    ws = Workspace.from_config(load_config(path))
    result = serve_stage.run_serving_check(ws, SimpleNamespace(model="tiny"), candidate_uri="runs:/x/model",
                                           candidate_label="the candidate", candidate_version=None, champion=None,
                                           tracking=None)
    assert result.status == "skipped" and "your own image, which cannot run here" in result.skip_reason


def test_the_serving_tag_keeps_a_failed_check_from_promotion():
    from mlops_ci import registry as reg

    assert reg.passed({reg.EVALUATION: "pass", reg.SERVING: "warn"})
    assert not reg.passed({reg.EVALUATION: "pass", reg.SERVING: "fail"})
    assert reg.passed({reg.EVALUATION: "pass"})  # versions registered before the serving check existed


def _null():
    from mlops_ci.console import NullProgress

    return NullProgress()


def test_a_recorded_check_is_re_gated_only_for_the_same_champion_and_settings(tmp_path):
    """What the merge of a reviewed version reads back instead of serving it again."""
    from mlops_ci import registry as reg
    from mlops_ci.config.schema import InferenceServiceServing
    from mlops_ci.records import ChampionRef, Latency, ServedModel, ServingCheckRecord

    lat = Latency(requests=10, concurrency=2, wall_s=0.1, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, rps=100.0)
    record = ServingCheckRecord(status="pass", candidate=ServedModel(role="candidate", label="the candidate",
                                                                     ready_s=2.0, latency=lat, log_tail="x"),
                                champion=ServedModel(role="champion", label="champion v1", version="1", latency=lat))
    serving = InferenceServiceServing()
    tags = serve_stage.serving_tags(record, serving)
    assert tags[reg.SERVING] == "pass" and "log_tail\":\"x" not in tags[reg.SERVING_RECORD]
    v1 = ChampionRef(name="tiny", version="1", alias="staging", model_uri="models:/tiny/1")
    again = serve_stage.recorded_serving(tags, serving, v1)
    assert again.recorded and again.candidate.latency.p99_ms == 3.0 and "re-gated here" in again.notes[-1]
    assert serve_stage.recorded_serving(tags, serving, v1.model_copy(update={"version": "2"})) is None
    stricter = InferenceServiceServing(check={"max_p99_ms": {"fail": 1}})
    assert serve_stage.recorded_serving(tags, stricter, v1) is None
    assert serve_stage.recorded_serving({**tags, reg.SERVING: "fail"}, serving, v1) is None


def test_a_registered_version_that_fails_stays_failed_when_the_check_is_turned_off(champion_repo):
    repo = champion_repo  # v1 is registered and served in staging; only the serving settings change
    serving_on(repo, extra="      requests: {cpu: '1', memory: 32Mi}\n      limits: {cpu: '2', memory: 64Mi}\n")
    commit(repo, "a memory limit v1 does not fit in")
    proc = cli(repo, "run", env=CACHE_ENV)
    assert proc.returncode == ExitCode.GATE_FAILED, proc.stderr[-3000:]
    assert "fail: peak memory" in proc.stderr  # the console's one-line summary of the check
    line = next(x for x in proc.stderr.splitlines() if x.startswith("mlops-ci: tiny: serving check failed"))
    assert line.endswith("v1 (registered earlier) is now marked as failing it")
    text = (repo / ".mlops-ci.yaml").read_text()
    (repo / ".mlops-ci.yaml").write_text(text.replace("      check: {sample_rows: 40, requests: 80, concurrency: 2}\n",
                                                      "      check: {enabled: false}\n"))
    commit(repo, "turn the serving check off")
    proc = cli(repo, "run", env=CACHE_ENV)
    serving = load_record(repo / ".mlops-ci" / "record.json").model("tiny").serving
    assert serving.status == "skipped" and "v1 failed its last serving check" in serving.notes[-1]
    promote = cli(repo, "promote", "--model", "tiny", "--env", "staging", "--version", "1", "--dry-run")
    assert "failed its serving check" in (promote.stdout + promote.stderr), promote.stdout + promote.stderr


def test_the_runtime_gets_none_of_the_job_s_credentials(tiny_model, tmp_path, monkeypatch):
    """The model's code runs in the server: it sees what a pod would, never the CI job's secrets."""
    from mlops_ci.runtime import mlserver

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "s3cr3t-token-value")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_s3cr3t")
    server = mlserver.MLServer(mlserver.environment(tiny_model), tiny_model, "tiny", tmp_path / "serve")
    with server:
        environ = Path(f"/proc/{server.proc.pid}/environ").read_bytes().split(b"\0")
    names = {e.split(b"=", 1)[0].decode() for e in environ if e}
    assert "MLFLOW_TRACKING_TOKEN" not in names and "GITHUB_TOKEN" not in names
    assert {"PATH", "MLSERVER_MODEL_URI", "MLSERVER_HTTP_PORT"} <= names
