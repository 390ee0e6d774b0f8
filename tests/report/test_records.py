"""RunRecord: one versioned JSON document; read back as untrusted input."""

from __future__ import annotations

import json
import math

import pytest

from mlops_ci.errors import RecordError
from mlops_ci.records import (Context, EvaluationRecord, GateResult, MetricComparison, ModelPlan, ModelRecord,
                              RunRecord, TrainingRecord, load_record, save_record)


def record() -> RunRecord:
    ctx = Context(source="local", event="local", default_branch="main", head_sha="a" * 40, base_sha="b" * 40)
    entry = ModelRecord(model="churn", plan=ModelPlan(model="churn", stages=["train", "evaluate"]))
    entry.training = TrainingRecord(status="succeeded", backend="torchrun", metrics={"loss": float("nan")})
    entry.evaluation = EvaluationRecord(
        status="fail", dataset="data/eval.csv", candidate_uri="models:/m-1",
        metrics=[MetricComparison(name="roc_auc", higher_is_better=True, candidate=float("nan"), champion=0.8)],
        gates=[GateResult(metric="roc_auc", kind="finite", status="fail", message="NaN")])
    return RunRecord(context=ctx, models={"churn": entry})


def test_round_trip_keeps_nan(tmp_path):
    path = save_record(record(), tmp_path / "record.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == 2
    assert list(data["models"]["churn"]["results"]) == ["train", "evaluate"]  # keyed by stage, in stage order
    assert data["models"]["churn"]["results"]["train"]["metrics"]["loss"] == "NaN"
    back = load_record(path)
    assert math.isnan(back.models["churn"].evaluation.metrics[0].candidate)
    assert back.verdict == "fail"


def test_secrets_are_masked_in_written_records(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secretsecretsecret123")
    rec = record()
    rec.models["churn"].training.error = "auth failed with ghs_secretsecretsecret123"
    text = save_record(rec, tmp_path / "r.json").read_text()
    assert "ghs_secret" not in text and "***" in text


def test_oversized_record_is_refused(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(" " * 2000)
    with pytest.raises(RecordError, match="over the 1000-byte limit"):
        load_record(path, max_bytes=1000)


@pytest.mark.parametrize("content, message", [
    ("not json", "not a JSON run record"),
    ("[]", "a run record is a JSON object"),
    ('{"schema_version": 99}', "schema_version 99 is not supported"),
])
def test_malformed_records(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(RecordError, match=message):
        load_record(path)


def test_unknown_keys_and_bad_values_are_refused(tmp_path):
    data = record().model_dump(mode="json")
    data["models"]["churn"]["injected"] = "x"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="invalid run record at models.churn.injected"):
        load_record(path)


def test_missing_record_names_the_next_command(tmp_path):
    with pytest.raises(RecordError, match="run `mlops-ci check`"):
        load_record(tmp_path / "nope.json")


@pytest.mark.parametrize("where, value", [
    (("context", "head_sha"), "a" * 40 + "\n"),
    (("context", "head_sha"), "a" * 39 + "z"),
    (("context", "repository"), "acme/models\nInjected-Trailer: x"),
    (("context", "pr_number"), -1),
    (("models", "churn", "model"), "churn\n"),
    (("models", "churn", "results", "train", "run_id"), "r1\r\nX: y"),
    (("models", "churn", "results", "train", "metrics"), {f"m{i}": 1.0 for i in range(100_000)}),
    (("models", "churn", "results", "train", "error"), "x" * 300_000),
    (("tool_version",), "0.1.0\x1b[31m"),
])
def test_hostile_values_in_a_record_are_refused_at_load(tmp_path, where, value):
    """A record from a pull request's run is untrusted input: a control character in a SHA, a name or
    an id, a negative number, an oversized field is refused before anything reads it."""
    data = record().model_dump(mode="json")
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="invalid run record at " + r"\.".join(where[:2])):
        load_record(path)


def test_a_loaded_record_carries_the_provenance_its_reader_gives_it(tmp_path):
    path = save_record(record(), tmp_path / "r.json")
    data = json.loads(path.read_text())
    data["provenance"] = "trusted"  # the file cannot say where it came from
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="provenance"):
        load_record(path)
    assert load_record(save_record(record(), tmp_path / "ok.json"), provenance="pull_request").provenance == \
        "pull_request"


def test_a_schema_1_record_is_still_read(tmp_path):
    """Schema 1 kept one field per stage; it is read as schema 2, each result under its stage."""
    data = json.loads(save_record(record(), tmp_path / "v2.json").read_text())
    for entry in data["models"].values():
        for stage, field in (("train", "training"), ("evaluate", "evaluation")):
            entry[field] = {k: v for k, v in entry["results"].pop(stage).items() if k != "kind"}
        del entry["results"]
    data["schema_version"] = 1
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(data))
    back = load_record(path)
    assert back.schema_version == 2 and list(back.models["churn"].results) == ["train", "evaluate"]
    assert back.models["churn"].training.status == "succeeded" and back.verdict == "fail"
