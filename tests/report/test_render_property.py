"""One rendering path that cannot leak or inject: random strings, hostile ones and secrets among them,
go through every text field of a record; the report is rendered by GitHub's own CommonMark+GFM
renderer (cmark-gfm, with raw HTML let through so that any that survives shows): no raw HTML, no
mention, no link but the allowed ones, and no secret in any form it could take."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_ci.records import (ChampionRef, ChecksRecord, ColumnSummary, Context, DatasetCheck, EvaluationRecord,
                              FileChange, Finding, GateResult, MetricComparison, ModelPlan, ModelRecord,
                              PromotionRecord, RunRecord, StageFailure, TrainingRecord)
from mlops_ci.render.junit import render_junit
from mlops_ci.render.markdown import Links
from mlops_ci.render.report import render_report

cmarkgfm = pytest.importorskip("cmarkgfm")
from cmarkgfm.cmark import Options  # noqa: E402

SECRETS = ("mlf_tok_9f8e7d6c5b4a3210", 'S3cret!pass#2024"\\ö_x')
RUN = "https://github.com/acme/models/actions/runs/42"
LINKS = Links(allowed=(RUN,), run_url=RUN)
ATTACKS = ["<img src=https://evil.example/pixel.gif>", "@alice @acme/admins", "&commat;acme/team",
           "[click here to approve](https://evil.example)", "https://evil.example/x", "www.evil.example",
           "</details><script>x</script>", "`code` ``` fence", "\r\n# heading\r\n", "$x^2$", "a\u2028b\u2029c",
           "\u202eevil", "<!-- hidden -->", "*bold* _it_ ~~del~~", "|pipe|", "\\", "<a href='https://x'>x</a>"]
ALLOWED_TAGS = {"p", "h2", "h3", "h4", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "code", "pre",
                "details", "summary", "sub", "strong", "blockquote", "a", "br"}


def forms(secret: str) -> set[str]:
    """A secret as any later layer could write it."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1],
            quote(secret, safe=""), re.sub(r"([\\`*_{}\[\]()#+!|<>~$&])", r"\\\1", secret), html.escape(secret)}


text = st.one_of(st.sampled_from(ATTACKS), st.sampled_from(SECRETS), st.text(max_size=40),
                 st.builds(lambda a, s, b: a + s + b, st.text(max_size=8), st.sampled_from(SECRETS + tuple(ATTACKS)),
                           st.text(max_size=8)))
line = text.map(lambda s: re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", s))  # fields that refuse control chars


def build(t: list[str], ln: list[str]) -> RunRecord:
    ctx = Context(source="github", event="pull_request", repository="acme/models", default_branch="main",
                  head_sha="a" * 40, base_sha="b" * 40, pr_number=7, pr_title=t[0], ref=ln[0],
                  run_url="https://evil.example/run", comment=t[1])
    checks = ChecksRecord(status="fail", datasets=[DatasetCheck(role="train", path=ln[1], columns=[
        ColumnSummary(column=ln[2], kind=ln[3], status="fail", psi=0.5)])],
        findings=[Finding(check="drift", dataset=ln[4], column=ln[2], status="fail", message=t[2])])
    training = TrainingRecord(status="failed", backend=ln[5], run_id="r1", nproc_per_node=1, error=t[3],
                              run_url="https://evil.example/mlflow", metrics={ln[6]: 1.0},
                              history=[{"step": 0.0, ln[6]: 1.0}, {"step": 1.0, ln[6]: 0.5}])
    evaluation = EvaluationRecord(status="fail", dataset=ln[7], candidate_uri="models:/m-1",
                                  champion=ChampionRef(name="churn", version="1", alias=ln[8], model_uri="models:/churn/1"),
                                  champion_state="present", metrics=[MetricComparison(name=ln[9], higher_is_better=True,
                                                                                      candidate=0.5, champion=0.6)],
                                  gates=[GateResult(metric=ln[9], kind="min", status="fail", message=t[4])], notes=[t[5]])
    promotion = PromotionRecord(model="churn", env="staging", alias=ln[10], version="2", artifact_uri=ln[11],
                                digest="sha256:" + "c" * 64, dry_run=True, noop=False, remote=ln[12], branch=ln[13],
                                changes=[FileChange(path=ln[14], action="modify", diff=t[6])],
                                pull_request="https://evil.example/pull/1", forced_reason=t[7])
    entry = ModelRecord(model="churn", plan=ModelPlan(model="churn", stages=["check", "train"], reasons=[t[8]]),
                        checks=checks, training=training, evaluation=evaluation, deployment_plan=promotion)
    return RunRecord(context=ctx, models={"churn": entry}, tool_version=ln[15],
                     failure=StageFailure(stage=ln[16], model="churn", message=t[9], exit_code=5))


def check_html(page: str) -> None:
    for tag in re.findall(r"<\s*/?\s*([A-Za-z][A-Za-z0-9-]*)", page):
        assert tag.lower() in ALLOWED_TAGS, f"raw HTML <{tag}> in the report"
    assert re.findall(r'href="([^"]*)"', page) == [RUN], "a link the publishing job did not build"
    shown = html.unescape(re.sub(r"<[^>]*>", " ", page))
    # GitHub links a mention in text, never inside a code span or block
    prose = html.unescape(re.sub(r"<[^>]*>", " ", re.sub(r"<(code|pre)>.*?</\1>", " ", page, flags=re.S)))
    assert not re.search(r"(?<![\w.])@[A-Za-z0-9]", prose), "a mention survived"
    for secret in SECRETS:
        for form in forms(secret):
            assert form not in page and form not in shown, f"a secret leaked as {form!r}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(t=st.lists(text, min_size=10, max_size=10), ln=st.lists(line.filter(str.strip), min_size=17, max_size=17))
def test_no_html_mention_foreign_link_or_secret_whatever_the_record_holds(monkeypatch, t, ln):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRETS[1])
    monkeypatch.setenv("MY_SERVICE_TOKEN", SECRETS[0])
    record = build(t, ln)
    markdown = render_report(record, LINKS)
    page = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    check_html(page)
    junit = render_junit(record)
    for secret in SECRETS:
        for form in forms(secret):
            assert form not in junit, f"a secret leaked into JUnit as {form!r}"
