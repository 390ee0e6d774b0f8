"""The Markdown report: rendered only from a record, untrusted text escaped."""

from __future__ import annotations

from mlops_ci.records import (ChecksRecord, Context, DatasetCheck, EvaluationRecord, Finding, GateResult,
                              MetricComparison, ModelPlan, ModelRecord, RunRecord, TrainingRecord)
from mlops_ci.render.report import MARKER, esc, render_report


def record(**ctx) -> RunRecord:
    context = Context(source="github", event="pull_request", default_branch="main", head_sha="a" * 40,
                      base_sha="b" * 40, pr_number=5, **ctx)
    entry = ModelRecord(model="churn", plan=ModelPlan(model="churn", stages=["check", "train", "evaluate"],
                                                      reasons=["train data changed: data/train.csv"]))
    entry.checks = ChecksRecord(status="warn", datasets=[DatasetCheck(role="train", path="data/train.csv")],
                                findings=[Finding(check="drift", dataset="train", column="<img src=x>",
                                                  status="warn", message="column '<img src=x>' drifted")])
    entry.training = TrainingRecord(status="succeeded", backend="torchrun", run_id="r1", nproc_per_node=2,
                                    metrics={"val_auc": 0.81})
    entry.evaluation = EvaluationRecord(
        status="pass", dataset="data/eval.csv", rows=100, candidate_uri="models:/m-1",
        metrics=[MetricComparison(name="roc_auc", higher_is_better=True, candidate=0.82, champion=0.80),
                 MetricComparison(name="log_loss", higher_is_better=False, candidate=0.41, champion=0.45)],
        gates=[GateResult(metric="roc_auc", kind="min", threshold=0.7, value=0.82, status="pass",
                          message="roc_auc 0.82 ≥ min 0.7")])
    return RunRecord(context=context, models={"churn": entry})


def test_report_has_every_section():
    text = render_report(record(pr_title="Better churn"))
    assert text.startswith(MARKER)
    assert "## ⚠️ mlops-ci: warn" in text
    assert "PR #5 Better churn" in text
    for heading in ("#### Data checks ⚠️ warn", "#### Training ✅ succeeded", "#### Evaluation ✅ pass"):
        assert heading in text
    assert "| roc\\_auc ↑ | 0.8200 | 0.8000 | ▲ +0.0200 (better) | ✅ |" in text
    assert "| log\\_loss ↓ | 0.4100 | 0.4500 | ▼ -0.0400 (better) |  |" in text


def test_untrusted_text_is_escaped():
    text = render_report(record(pr_title="<script>alert(1)</script> @org/team [x](http://evil) | pipe"))
    assert "<script>" not in text and "\\<script\\>" in text
    # the column is named once, literal in a code span; nowhere raw outside it
    assert "· `<img src=x>` drifted" in text and "<img" not in text.replace("`<img src=x>`", "")
    assert "@org" not in text  # no mentions
    assert "\\[x\\]\\(http:\u200b//evil\\)" in text and "\\|" in text  # no link, not even GitHub's autolink
    assert "www\u200b.evil.example" in esc("see www.evil.example")


def test_escape_neutralises_markdown_and_newlines():
    assert esc("a\nb") == "a b"
    assert esc("*bold* _it_ `code`") == "\\*bold\\* \\_it\\_ \\`code\\`"
