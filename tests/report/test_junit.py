"""JUnit XML from a RunRecord: one case per compared column, table-level finding and gate."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from mlops_ci.records import (ChecksRecord, ColumnSummary, Context, DatasetCheck, EvaluationRecord, Finding,
                              GateResult, ModelPlan, ModelRecord, RunRecord)
from mlops_ci.records.suites import ConditionOutcome, SuiteCheckResult, SuiteResult
from mlops_ci.render.junit import render_junit


def record() -> RunRecord:
    entry = ModelRecord(model="churn", plan=ModelPlan(model="churn", stages=["check", "evaluate"]))
    entry.checks = ChecksRecord(
        status="fail",
        datasets=[DatasetCheck(role="train", path="data/train.csv", columns=[
            ColumnSummary(column="amount", kind="numeric", psi=0.4, status="fail"),
            ColumnSummary(column="plan", kind="categorical", psi=0.12, status="warn"),
            ColumnSummary(column="age", kind="numeric", psi=0.01, status="pass")])],
        findings=[Finding(check="drift", dataset="train", column="amount", status="fail", metric="psi", value=0.4,
                          threshold=0.25, message="column 'amount' drifted: PSI 0.400 ≥ 0.25"),
                  Finding(check="drift", dataset="train", column="plan", status="warn",
                          message="column 'plan' drifted: PSI 0.120 ≥ 0.1"),
                  Finding(check="schema", dataset="train", column="count", status="fail",
                          message="column 'count' was removed")],
        suites=[SuiteResult(suite="data_integrity", status="fail", duration_s=3.0, checks=[
            SuiteCheckResult(name="MixedNulls", header="Mixed Nulls", status="fail", outcome="fail",
                             conditions=[ConditionOutcome(name="Not more than 1 null types", status="fail",
                                                          message="Found 1 column with 2 null types")]),
            SuiteCheckResult(name="IsSingleValue", header="Single Value in Column", status="pass",
                             outcome="pass")])])
    entry.evaluation = EvaluationRecord(
        status="fail", dataset="data/eval.csv", candidate_uri="models:/m/1",
        gates=[GateResult(metric="roc_auc", kind="min", threshold=0.9, value=0.8, status="fail",
                          message="roc_auc 0.8 < min 0.9")])
    ctx = Context(source="local", event="local", default_branch="main", head_sha="a" * 40)
    return RunRecord(context=ctx, models={"churn": entry})


def test_junit_cases_and_counts():
    root = ET.fromstring(render_junit(record()))
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["churn.checks", "churn.evaluation"]
    checks = suites["churn.checks"]
    cases = {c.get("name"): c for c in checks.findall("testcase")}
    assert list(cases) == ["column amount", "column plan", "column age", "schema count", "Mixed Nulls",
                           "Single Value in Column"]
    assert cases["column amount"].find("failure").get("message") == "column 'amount' drifted: PSI 0.400 ≥ 0.25"
    assert cases["column plan"].find("failure") is None
    assert "warning: column 'plan' drifted" in cases["column plan"].find("system-out").text
    assert cases["schema count"].find("failure") is not None
    assert "Found 1 column with 2 null types" in cases["Mixed Nulls"].find("failure").text
    assert (checks.get("tests"), checks.get("failures"), checks.get("skipped")) == ("6", "3", "0")
    gate = suites["churn.evaluation"].find("testcase")
    assert gate.get("name") == "min roc_auc" and gate.find("failure").get("message") == "roc_auc 0.8 < min 0.9"


def test_skipped_checks_are_skipped_cases():
    rec = record()
    rec.models["churn"].checks = ChecksRecord(status="skipped", skip_reason="data unchanged: data/train.csv 0a1b")
    root = ET.fromstring(render_junit(rec))
    case = root.find("testsuite").find("testcase")
    assert case.find("skipped").get("message") == "data unchanged: data/train.csv 0a1b"
