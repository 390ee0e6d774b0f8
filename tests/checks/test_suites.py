"""deepchecks suites in their own environment: sampling, the worker protocol, the gate policy; and (slow)
the real environment running the real suites (the runner it goes through: test_toolenv.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_ci import toolenv
from mlops_ci.checks.suites import env as envs
from mlops_ci.checks.suites import runner
from mlops_ci.checks.suites.models import Predictions, SuiteSpec
from mlops_ci.config.suites import SuiteConfig, SuitesConfig
from mlops_ci.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]
SHARED_CACHE = ROOT / ".cache" / "mlops-ci-test"


@pytest.fixture(autouse=True)
def shared_cache(monkeypatch):
    """The real environment is ~1 GB and ~1 min to build: every test run reuses one."""
    monkeypatch.setenv("MLOPS_CI_CACHE_DIR", str(SHARED_CACHE))


def frame(rows: int = 1000, seed: int = 0, *, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1, rows)
    x2 = rng.normal(0, 1, rows)
    label = (rng.uniform(size=rows) < 1 / (1 + np.exp(-(1.5 * x1 - x2)))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "color": rng.choice(["red", "green", "blue"], rows),
                         "label": label})


# --- sampling ------------------------------------------------------------------------------------

def test_sample_is_capped_and_keeps_each_labels_share():
    labels = pd.Series(np.r_[np.zeros(9000), np.ones(900), np.full(100, 2)].astype(int))
    idx = runner.sample_indices(labels, 1000, seed=1)
    assert len(idx) == 1000 and len(set(idx)) == 1000 and list(idx) == sorted(idx)
    assert labels.iloc[idx].value_counts().to_dict() == {0: 900, 1: 90, 2: 10}


def test_sample_is_deterministic_and_keeps_rare_labels():
    labels = pd.Series(["a"] * 9997 + ["rare"] * 3)
    one = runner.sample_indices(labels, 100, seed=7)
    assert np.array_equal(one, runner.sample_indices(labels, 100, seed=7))
    assert not np.array_equal(one, runner.sample_indices(labels, 100, seed=8))
    assert len(one) == 100 and (labels.iloc[one] == "rare").sum() == 1


def test_sample_below_the_cap_keeps_every_row_and_handles_missing_labels():
    assert list(runner.sample_indices(pd.Series([1, 0, 1]), 10, seed=0)) == [0, 1, 2]
    labels = pd.Series([0.0] * 500 + [np.nan] * 500)
    idx = runner.sample_indices(labels, 100, seed=0)
    assert labels.iloc[idx].isna().sum() == 50


def test_regression_sample_keeps_the_label_distribution():
    labels = pd.Series(np.random.default_rng(0).exponential(size=20_000))
    idx = runner.sample_indices(labels, 2000, seed=0, task="regression")
    assert len(idx) == 2000
    quantiles = labels.quantile([0.1, 0.5, 0.9])
    assert np.allclose(labels.iloc[idx].quantile([0.1, 0.5, 0.9]), quantiles, rtol=0.05)


# --- the result file is untrusted ----------------------------------------------------------------

def result_doc(**over) -> dict:
    doc = {"protocol": 1, "suite": "train_test_validation", "deepchecks_version": "0.19.1",
           "duration_s": 1.0, "html": None, "html_error": None,
           "checks": [{"name": "FeatureDrift", "header": "Feature Drift", "dataset": None,
                       "status": "fail", "values": {"x1.Drift score": 0.7}, "error": None,
                       "conditions": [{"name": "drift < 0.2", "status": "fail", "message": "x1"}]}]}
    doc.update(over)
    return doc


@pytest.mark.parametrize("content, reason", [
    (b"not json", "not valid"),
    (b'{"protocol": 1, "suite": "train_test_validation", "duration_s": NaN, "checks": []}', "not valid"),
    (json.dumps(result_doc(protocol=2)).encode(), "speaks protocol 2"),
    (json.dumps(result_doc(suite="model_evaluation")).encode(), "not 'train_test_validation'"),
    (json.dumps(result_doc(checks=[])).encode(), "lists no checks"),
    (json.dumps(result_doc(checks=[{"name": "X; rm -rf /", "header": "h", "status": "pass"}])).encode(),
     "not valid"),
    (json.dumps(result_doc(checks=[{"name": "X", "header": "h", "status": "exploded"}])).encode(),
     "not valid"),
    (json.dumps(result_doc(checks=[{"name": "X", "header": "h", "status": "pass",
                                    "values": {"a": "1e3"}}])).encode(), "not valid"),
    (json.dumps(result_doc(html_error="x" * 10_000)).encode(), "not valid"),
    (json.dumps([1, 2]).encode(), "not valid"),
])
def test_result_validation_rejects_garbage(tmp_path, content, reason):
    path = tmp_path / "result.json"
    path.write_bytes(content)
    with pytest.raises(runner.WorkerFailed, match=reason):
        runner.parse_result(path, "train_test_validation")


def test_result_validation_rejects_oversized_and_missing_files(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result_doc()))
    assert runner.parse_result(path, "train_test_validation").checks[0].values == {"x1.Drift score": 0.7}
    with pytest.raises(runner.WorkerFailed, match="over the cap"):
        runner.parse_result(path, "train_test_validation", max_bytes=100)
    with pytest.raises(runner.WorkerFailed, match="wrote no result"):
        runner.parse_result(tmp_path / "missing.json", "train_test_validation")


# --- the worker's reading of deepchecks results (with stand-ins for deepchecks' objects) ---------

class FeatureDrift:
    def name(self):
        return "Feature Drift"


class LabelDrift(FeatureDrift):
    def name(self):
        return "Label Drift"


def check_result(check, header, conditions=(), value=None):
    from types import SimpleNamespace

    return SimpleNamespace(check=check, get_header=lambda: header, value=value, run_time=2,
                           conditions_results=[SimpleNamespace(name=n, details=d, category=SimpleNamespace(value=c))
                                               for n, c, d in conditions])


def check_failure(check, header, exception):
    from types import SimpleNamespace

    return SimpleNamespace(check=check, get_header=lambda: header, exception=exception)


def test_worker_reports_every_check_with_errors_and_skips_apart():
    from mlops_ci.checks.suites import worker

    DatasetValidationError = type("DatasetValidationError", (Exception,), {})
    drift, label, mixed, index = FeatureDrift(), LabelDrift(), FeatureDrift(), LabelDrift()
    entries = worker.collect([drift, label, mixed, index], [
        check_result(drift, "Feature Drift", [("drift < 0.2", "FAIL", "x1 drifted"), ("ok", "PASS", "")],
                     value={"x1": {"Drift score": np.float64(0.7), "Method": "KS"}, "x2": {"Drift score": np.nan}}),
        check_result(label, "Label Drift", [("c", "ERROR", "Exception in condition: KeyError: 'x'")]),
        check_failure(mixed, "Feature Drift - Test Dataset", ValueError("boom")),
        check_failure(mixed, "Feature Drift - Train Dataset", DatasetValidationError("no datetime")),
    ])
    got = [(e["name"], e["dataset"], e["status"], e["error"]) for e in entries]
    assert got == [("FeatureDrift", None, "fail", None),
                   ("LabelDrift", None, "error", "Exception in condition: KeyError: 'x'"),
                   ("FeatureDrift", "test", "error", "ValueError: boom"),
                   ("FeatureDrift", "train", "skipped", "DatasetValidationError: no datetime"),
                   ("LabelDrift", None, "not_run", "the suite returned no result for this check")]
    assert entries[0]["values"] == {"x1.Drift score": 0.7}
    assert entries[0]["conditions"][0] == {"name": "drift < 0.2", "status": "fail", "message": "x1 drifted"}
    json.dumps(entries, allow_nan=False)


# --- the runner with stand-in workers ------------------------------------------------------------

@pytest.fixture
def fake_worker(tmp_path, monkeypatch):
    """Replace worker.py with a script (run by this venv's python) and skip the real env."""
    def install(body: str) -> Path:
        script = tmp_path / "fake_worker.py"
        script.write_text("import json, sys, time\nspec = json.load(open(sys.argv[1]))\n"
                          + textwrap.dedent(body))
        monkeypatch.setattr(runner, "WORKER", script)
        return script

    fake_env = toolenv.ToolEnv(Path(sys.prefix), "0" * 64)
    monkeypatch.setattr(envs, "ensure_env", lambda **kwargs: fake_env)
    return install


def write_result(checks: list[dict]) -> str:
    """Body of a fake worker that writes a valid result with ``checks``."""
    doc = result_doc(checks=checks)
    return f"""
doc = {doc!r}
doc["suite"] = spec["suite"]
open(spec["output"]["html"], "w").write("<html></html>")
doc["html"] = spec["output"]["html"]
json.dump(doc, open(spec["output"]["result"], "w"))
"""


def ttv(**config) -> SuiteSpec:
    return SuiteSpec(name="train_test_validation", config=SuiteConfig(enabled=True, **config))


def run(spec: SuiteSpec, tmp_path: Path, **kwargs):
    kwargs.setdefault("train", frame(400, 0))
    kwargs.setdefault("test", frame(200, 1))
    return runner.run_suite(spec, label="label", task="binary", out_dir=tmp_path / "out", **kwargs)


def test_a_crashing_worker_fails_the_suite_with_its_stderr_tail(fake_worker, tmp_path):
    fake_worker("sys.stderr.write('Traceback...\\nRuntimeError: deepchecks blew up\\n'); sys.exit(1)")
    result = run(ttv(), tmp_path)
    assert result.status == "fail" and result.blocking
    assert "exited with 1" in result.error and "RuntimeError: deepchecks blew up" in result.error
    assert result.checks == [] and result.sampled_rows == {"train": 400, "test": 200}


@pytest.mark.parametrize("on_error, status", [("warn", "warn"), ("ignore", "error")])
def test_on_error_policy_softens_a_crash(fake_worker, tmp_path, on_error, status):
    fake_worker("sys.exit(1)")
    result = run(ttv(on_error=on_error), tmp_path)
    assert result.status == status and not result.blocking


def test_garbage_output_and_timeouts_are_crashes(fake_worker, tmp_path):
    fake_worker("open(spec['output']['result'], 'w').write('{\"protocol\": 1, \"checks\": [')")
    assert "not valid" in run(ttv(), tmp_path).error
    fake_worker("time.sleep(30)")
    started = time.monotonic()
    result = run(ttv(), tmp_path, timeout_s=0.5)
    assert result.status == "fail" and "timeout" in result.error
    assert time.monotonic() - started < 20


def test_a_rejected_spec_is_a_config_error(fake_worker, tmp_path):
    fake_worker("sys.stderr.write('deepchecks worker: the suite has no check Nope\\n'); sys.exit(3)")
    with pytest.raises(ConfigError, match="no check Nope"):
        run(ttv(statuses={"Nope": "warn"}), tmp_path)


def test_check_statuses_are_gated_by_the_policy(fake_worker, tmp_path):
    fake_worker(write_result([
        {"name": "FeatureDrift", "header": "Feature Drift", "status": "fail"},
        {"name": "LabelDrift", "header": "Label Drift", "status": "warn"},
        {"name": "MultivariateDrift", "header": "Multivariate Drift", "status": "pass"},
        {"name": "IndexTrainTestLeakage", "header": "Index Train Test Leakage", "status": "skipped",
         "error": "DatasetValidationError: Dataset does not contain an index"},
        {"name": "MixedNulls", "header": "Mixed Nulls - Test Dataset", "dataset": "test",
         "status": "fail"},
    ]))
    result = run(ttv(statuses={"Feature Drift": "warn", "mixednulls": "ignore"}), tmp_path)
    outcomes = {(c.name, c.dataset): c.outcome for c in result.checks}
    assert outcomes == {("FeatureDrift", None): "warn", ("LabelDrift", None): "warn",
                        ("MultivariateDrift", None): "pass", ("IndexTrainTestLeakage", None): "ignored",
                        ("MixedNulls", "test"): "ignored"}
    assert result.status == "warn" and result.html_path == str(tmp_path / "out" / "report.html")

    fake_worker(write_result([{"name": "FeatureDrift", "header": "Feature Drift", "status": "error",
                               "error": "Exception in condition: ZeroDivisionError"},
                              {"name": "LabelDrift", "header": "Label Drift", "status": "not_run"}]))
    result = run(ttv(), tmp_path)
    assert result.status == "fail" and [c.outcome for c in result.checks] == ["fail", "fail"]
    assert run(ttv(on_error="warn"), tmp_path).status == "warn"


def test_frames_and_predictions_are_sampled_together(fake_worker, tmp_path):
    fake_worker("""
import numpy as np, pandas as pd
test = pd.read_parquet(spec["test"])
pred = np.load(spec["predictions"]["y_pred_test"])
proba = np.load(spec["predictions"]["y_proba_test"])
assert len(test) == 100 and (pred == test["x1"].to_numpy()).all() and (proba[:, 1] == pred).all()
assert spec["categorical"] == ["color"] and spec["classes"] == [0, 1], spec
sys.exit(1 if test["label"].mean() != 0.25 else 0)
""")
    test = frame(1000, 1)
    test["label"] = np.r_[np.ones(250), np.zeros(750)].astype(int)
    preds = Predictions(y_pred_test=test["x1"].to_numpy(), classes=[0, 1],
                        y_proba_test=np.c_[1 - test["x1"].to_numpy(), test["x1"].to_numpy()])
    result = run(SuiteSpec(name="model_evaluation"), tmp_path, test=test, predictions=preds,
                 sample_rows=100)
    assert "wrote no result" in result.error  # exited 0: the asserts inside held
    assert result.sampled_rows == {"train": 100, "test": 100}
    assert result.total_rows == {"train": 400, "test": 1000}


def test_unusable_inputs_are_data_errors(fake_worker, tmp_path):
    with pytest.raises(DataError, match="no label column 'label'"):
        run(ttv(), tmp_path, train=frame().drop(columns="label"))
    with pytest.raises(DataError, match="without Predictions.classes"):
        run(SuiteSpec(name="model_evaluation"), tmp_path,
            predictions=Predictions(y_proba_test=np.zeros((200, 2))))
    with pytest.raises(DataError, match="has 3 rows"):
        run(SuiteSpec(name="model_evaluation"), tmp_path, predictions=Predictions(y_pred_test=[0, 1, 0]))
    with pytest.raises(DataError, match="needs a test frame"):
        run(ttv(), tmp_path, test=None)


def test_the_core_never_imports_deepchecks():
    code = ("import sys, mlops_ci.checks.suites, mlops_ci.checks.suites.runner; "
            "assert not [m for m in sys.modules if m.split('.')[0] in "
            "('deepchecks', 'numpy', 'pandas', 'pyarrow')], sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_records_config_and_toolenv_do_not_import_the_suites():
    """Low layers: the suites' config and results live in config/ and records/, the runner in toolenv/."""
    code = ("import sys, mlops_ci.records, mlops_ci.config, mlops_ci.toolenv; "
            "assert not [m for m in sys.modules if m.startswith('mlops_ci.checks.suites')], sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
    from typing import get_args

    from mlops_ci.config.suites import SUITE_NAMES
    from mlops_ci.records.suites import SuiteName

    assert get_args(SuiteName) == SUITE_NAMES


def test_config_models_are_strict():
    config = SuitesConfig.model_validate({"train_test_validation": {
        "enabled": True, "on_error": "warn", "statuses": {"FeatureDrift": "warn"},
        "conditions": {"FeatureDrift": {"drift_score_less_than": {"max_allowed_numeric_score": 0.3}}}}})
    assert config.get("train_test_validation").on_error == "warn"
    assert not config.data_integrity.enabled
    with pytest.raises(ValueError):
        SuiteConfig.model_validate({"on_error": "explode"})
    with pytest.raises(ValueError):
        SuiteConfig.model_validate({"sample_row": 10})


# --- the real environment (slow) -----------------------------------------------------------------

@pytest.fixture(scope="module")
def real_env():
    return envs.ensure_env(cache_dir=SHARED_CACHE)


def by_name(result) -> dict:
    return {(c.name, c.dataset): c for c in result.checks}


@pytest.mark.slow
def test_real_data_integrity_finds_a_constant_column(real_env, tmp_path):
    train, test = frame(1500, 0), frame(600, 1)
    test["const"] = 7.0
    train["const"] = np.random.default_rng(99).normal(size=len(train))
    result = runner.run_suite(SuiteSpec(name="data_integrity"), train=train, test=test, label="label",
                              task="binary", out_dir=tmp_path, env=real_env)
    checks = by_name(result)
    assert result.status == "fail" and result.deepchecks_version == "0.19.1"
    assert checks[("IsSingleValue", "test")].status == "fail"
    assert "const" in checks[("IsSingleValue", "test")].conditions[0].message
    assert checks[("IsSingleValue", "train")].status == "pass"
    assert checks[("IdentifierLabelCorrelation", "train")].status == "skipped"  # no index column
    assert [c.header for c in result.failed_checks()] == ["Single Value in Column - Test Dataset"]
    assert Path(result.html_path).stat().st_size > 10_000


@pytest.mark.slow
def test_real_train_test_validation_finds_the_drifted_column(real_env, tmp_path):
    train, test = frame(2000, 0), frame(1000, 1, shift=2.0)
    result = runner.run_suite(ttv(statuses={"MultivariateDrift": "warn"}), train=train, test=test,
                              label="label", task="binary", out_dir=tmp_path / "a", env=real_env)
    checks = by_name(result)
    drift = checks[("FeatureDrift", None)]
    assert drift.status == "fail" and drift.outcome == "fail" and result.status == "fail"
    assert drift.values["x1.Drift score"] > 0.5 > drift.values["x2.Drift score"]
    assert checks[("MultivariateDrift", None)].status == "fail"
    assert checks[("MultivariateDrift", None)].outcome == "warn"
    assert checks[("IndexTrainTestLeakage", None)].status == "skipped"
    assert {c.name for c in result.failed_checks()} <= {"FeatureDrift", "FeatureLabelCorrelationChange",
                                                         "LabelDrift"}

    relaxed = ttv(conditions={"Feature Drift": {"drift_score_less_than": {"max_allowed_numeric_score": 0.99}}},
                  statuses={"MultivariateDrift": "ignore", "LabelDrift": "ignore",
                            "FeatureLabelCorrelationChange": "ignore"})
    result = runner.run_suite(relaxed, train=train, test=test, label="label", task="binary",
                              out_dir=tmp_path / "b", env=real_env, sample_rows=800)
    assert by_name(result)[("FeatureDrift", None)].status == "pass"
    assert result.sampled_rows == {"train": 800, "test": 800} and result.status == "pass"

    with pytest.raises(ConfigError, match="no condition 'nope'"):
        runner.run_suite(ttv(conditions={"FeatureDrift": {"nope": {}}}), train=train, test=test,
                         label="label", task="binary", out_dir=tmp_path / "c", env=real_env)


@pytest.mark.slow
def test_real_model_evaluation_with_precomputed_probabilities(real_env, tmp_path):
    from sklearn.linear_model import LogisticRegression

    train, test = frame(1500, 0), frame(600, 1)
    test["label"] = 1 - test["label"]  # the model is wrong on the test frame
    features = ["x1", "x2"]
    model = LogisticRegression().fit(train[features], train["label"])
    preds = Predictions(y_proba_train=model.predict_proba(train[features]),
                        y_proba_test=model.predict_proba(test[features]),
                        y_pred_train=model.predict(train[features]),
                        y_pred_test=model.predict(test[features]), classes=list(model.classes_))
    result = runner.run_suite(SuiteSpec(name="model_evaluation"), train=train, test=test, label="label",
                              task="binary", predictions=preds, out_dir=tmp_path, env=real_env)
    checks = by_name(result)
    assert checks[("TrainTestPerformance", None)].status == "fail"
    assert checks[("RocReport", "test")].values["1"] < 0.5 < checks[("RocReport", "train")].values["1"]
    assert checks[("BoostingOverfit", None)].status == "skipped"  # needs the model object
    assert not [c for c in result.checks if c.status in ("error", "not_run")]
    assert result.status == "fail"


@pytest.mark.slow
@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_real_model_evaluation_scores_regression_and_string_classes(real_env, tmp_path, task):
    """scikit-learn 1.4+ broke deepchecks' scorers on precomputed predictions for these tasks."""
    train, test = frame(1500, 0), frame(600, 1)
    if task == "regression":
        train["label"], test["label"] = 2 * train["x1"] + train["x2"], 2 * test["x1"] + test["x2"]
        preds = Predictions(y_pred_train=2 * train["x1"].to_numpy(), y_pred_test=2 * test["x1"].to_numpy())
    else:
        train["label"], test["label"] = train["color"], test["color"]
        train, test = train.drop(columns="color"), test.drop(columns="color")
        classes = ["blue", "green", "red"]
        preds = Predictions(y_proba_train=np.full((len(train), 3), 1 / 3), classes=classes,
                            y_proba_test=np.full((len(test), 3), 1 / 3),
                            y_pred_train=train["label"].to_numpy(), y_pred_test=test["label"].to_numpy())
    result = runner.run_suite(SuiteSpec(name="model_evaluation"), train=train, test=test, label="label",
                              task=task, predictions=preds, out_dir=tmp_path, env=real_env)
    checks = by_name(result)
    assert checks[("TrainTestPerformance", None)].status in ("pass", "warn", "fail"), checks
    assert checks[("SimpleModelComparison", None)].status in ("pass", "warn", "fail"), checks
