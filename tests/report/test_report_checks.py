"""The data-checks section of the report: drift in natural units from real profiles, Mermaid
histograms of the most drifted columns, one line per finding, and the Markdown a renderer sees."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from conftest import cli, commit, git, write_tiny_data
from mlops_ci.checks.compare import compare_profiles
from mlops_ci.checks.profiler import ProfileOptions, profile_table
from mlops_ci.checks.units import Histogram
from mlops_ci.config.schema import ChecksConfig
from mlops_ci.records import ChecksRecord, ColumnSummary, DatasetCheck, ModelPlan, ModelRecord, worst
from mlops_ci.render.document import join
from mlops_ci.render.charts import MAX_CHART_BINS, bin_labels, histogram_chart
from mlops_ci.render.checks import MAX_CHARTS, checks_section, finding_line
from mlops_ci.render.report import render_model

HOSTILE = 'a"b]`x'


def frame(rows=5000, seed=0, *, shift=0.0, positive=0.3, plan=(0.5, 0.3, 0.2)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.normal(100 + shift, 15, rows),
        "plan": rng.choice(["basic", "standard", "premium"], rows, p=list(plan)),
        "label": (rng.uniform(size=rows) < positive).astype(int),
    })


def compare(base: pd.DataFrame, head: pd.DataFrame, *, label="label", options: ProfileOptions | None = None, **cfg):
    options = options or ProfileOptions()
    b = profile_table(pa.Table.from_pandas(base, preserve_index=False), options=options)
    h = profile_table(pa.Table.from_pandas(head, preserve_index=False), options=options, reference=b)
    columns, found = compare_profiles("train", b, h, ChecksConfig.model_validate(cfg), label=label)
    return {c.column: c for c in columns}, found


def checks(columns, found, role="train") -> ChecksRecord:
    ds = DatasetCheck(role=role, path=f"data/{role}.csv", base_rows=5000, head_rows=5000, columns=list(columns))
    return ChecksRecord(status=worst(["pass", *(f.status for f in found)]), datasets=[ds], findings=list(found))


def mermaid_blocks(markdown: str) -> list[list[str]]:
    """The chart lines of each Mermaid block, after its front matter (the colour palette)."""
    blocks = []
    for block in re.findall(r"```mermaid\n(.*?)\n```", markdown, re.DOTALL):
        lines = block.split("\n")
        assert lines[:2] == ["---", "config:"] and "plotColorPalette" in block, block  # readable colours
        blocks.append(lines[lines.index("---", 1) + 1:])
    return blocks


# -- natural units from real profiles ---------------------------------------------------------------
def test_a_shift_of_ten_moves_mean_median_and_percentiles_by_about_ten():
    columns, found = compare(frame(), frame(seed=1, shift=10))
    amount = columns["amount"]
    assert amount.status == "fail" and amount.base_stats and amount.head_stats
    for stat in ("mean", "median", "p5", "p95"):
        moved = getattr(amount.head_stats, stat) - getattr(amount.base_stats, stat)
        assert moved == pytest.approx(10, abs=1.5), stat
    assert amount.base_stats.mean == pytest.approx(100, abs=1)
    assert amount.base_stats.p5 == pytest.approx(100 - 1.645 * 15, abs=2)  # normal(100, 15)
    assert amount.base_stats.p95 == pytest.approx(100 + 1.645 * 15, abs=2)
    # the histogram: base and head over the same equal-width bins (both shapes visible, never a flat
    # base), spanning the 1st to the 99th percentile of both
    hist = amount.histogram
    assert hist is not None and not hist.categories and len(hist.base) == len(hist.head) == len(hist.edges) + 1 == 12
    assert sum(hist.base) == pytest.approx(1, abs=1e-3) and sum(hist.head) == pytest.approx(1, abs=1e-3)
    assert max(hist.base) > 2 * min(hist.base)  # the base's bell, not its deciles
    centre = lambda shares: sum(i * x for i, x in enumerate(shares))  # noqa: E731
    assert centre(hist.head) - centre(hist.base) > 1.2  # moved up by about 10 / bin width (~6): 1.6 bins
    message = next(f.message for f in found if f.column == "amount")
    b, h = amount.base_stats, amount.head_stats
    assert message.startswith(f"column 'amount' drifted: mean {b.mean:.1f} → {h.mean:.1f}, "
                              f"median {b.median:.1f} → ")
    assert f"p5–p95 {b.p5:.1f}–{b.p95:.1f} → {h.p5:.1f}–{h.p95:.1f}" in message
    # scores grouped by the threshold they crossed, three decimals like the table
    scores = r"\(fail: PSI \d\.\d{3} ≥ 0\.25, JS \d\.\d{3} ≥ 0\.2, W/σ \d\.\d{3} ≥ 0\.25\)$"
    assert re.search(scores, message), message
    # unflagged columns carry no natural units: the record stays small
    assert columns["plan"].status == "pass" and columns["plan"].shares == [] and columns["plan"].histogram is None


def test_a_label_whose_positive_share_moves_shows_its_class_balance():
    base, head = frame(), frame(seed=1, positive=0.4)
    columns, found = compare(base, head)
    label = columns["label"]
    assert label.label and label.status == "fail" and label.base_stats is None
    positive = label.shares[0]  # the profile's sample holds every row here: the shares are exact
    assert positive.value == "1" and positive.base == pytest.approx(base["label"].mean(), abs=1e-6)
    assert positive.head == pytest.approx(head["label"].mean(), abs=1e-6)
    assert positive.base == pytest.approx(0.3, abs=0.03) and positive.head == pytest.approx(0.4, abs=0.03)
    assert label.histogram is not None and label.histogram.categories == ["0", "1"]
    message = next(f.message for f in found if f.check == "label_drift").replace("\u2192", "->")
    assert message.startswith(f"label 'label' drifted: class 1 {positive.base:.1%} -> {positive.head:.1%} (")
    line = finding_line(next(f for f in found if f.check == "label_drift"))
    assert line.startswith(f"- ❌ train · label `label` drifted: class 1 {positive.base:.1%} → {positive.head:.1%}")


def test_a_label_that_did_not_drift_still_shows_its_balance():
    columns, found = compare(frame(), frame(seed=1))
    assert found == [] and columns["label"].status == "pass" and columns["label"].histogram is None
    text = join(checks_section(checks(columns.values(), found)))
    share = columns["label"].shares[0]
    assert f"Label `label`, base → head: train class 1 {share.base:.1%} → {share.head:.1%}." in text
    assert "```mermaid" not in text


def test_a_categorical_label_and_a_reweighted_category():
    base, head = frame(), frame(seed=1, plan=(0.2, 0.3, 0.5), positive=0.45)
    base["label"], head["label"] = base["label"].map({1: "yes", 0: "no"}), head["label"].map({1: "yes", 0: "no"})
    columns, found = compare(base, head)
    assert [s.value for s in columns["label"].shares] == ["yes", "no"]
    assert next(f.message for f in found if f.check == "label_drift").startswith("label 'label' drifted: class 'yes' ")
    plan = columns["plan"]
    moved = {s.value: (s.base, s.head) for s in plan.shares}
    assert list(moved)[:2] == ["basic", "premium"] or list(moved)[:2] == ["premium", "basic"]
    assert moved["basic"][0] == pytest.approx(0.5, abs=0.02) and moved["basic"][1] == pytest.approx(0.2, abs=0.02)
    assert moved["premium"][1] == pytest.approx(0.5, abs=0.02)
    assert sorted(plan.histogram.categories) == ["basic", "premium", "standard"]
    assert f"'basic' {moved['basic'][0]:.1%} → {moved['basic'][1]:.1%}" in next(f.message for f in found
                                                                              if f.column == "plan")


def test_many_categories_are_bounded():
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(40)], 5000), "label": 0})
    head = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(20, 60)], 5000), "label": 0})
    columns, _ = compare(base, head)
    city = columns["city"]
    assert len(city.shares) == 5 and len(city.histogram.categories) == 9
    assert city.histogram.categories[-1] == "__other__"
    assert sum(city.histogram.base) == pytest.approx(1) and sum(city.histogram.head) == pytest.approx(1)
    # and what a record allows
    with pytest.raises(ValueError):
        ColumnSummary(column="c", kind="categorical", shares=[{"value": "a", "base": 0, "head": 1}] * 6)
    with pytest.raises(ValueError):
        Histogram(edges=[1.0, 0.5], base=[0.2, 0.3, 0.5], head=[0.2, 0.3, 0.5])  # not increasing
    with pytest.raises(ValueError):
        Histogram(edges=[1.0], base=[0.5, 0.5], head=[1.0])  # bins disagree
    with pytest.raises(ValueError):
        Histogram(edges=[float("nan")], base=[0.5, 0.5], head=[0.5, 0.5])


# -- charts ----------------------------------------------------------------------------------------
def test_bin_labels_are_short_and_distinct():
    assert bin_labels([20.0, 35.0, 110.0], [(0, 0), (1, 1), (2, 2), (3, 3)]) == ["≤20", "20–35", "35–110", ">110"]
    negative = bin_labels([-1.27, -0.52, 0.31], [(0, 0), (1, 1), (2, 2), (3, 3)])
    assert negative == ["≤−1.3", "−1.3–−0.5", "−0.5–0.3", ">0.3"]  # a minus sign, apart from the dash
    assert len(set(bin_labels([1.0, 1.001, 1.002], [(0, 0), (1, 1), (2, 2), (3, 3)]))) == 4  # more decimals
    assert bin_labels([12_000.0, 15_500.0], [(0, 0), (1, 2)]) == ["≤12,000", ">12,000"]


def test_fine_histograms_are_merged_into_few_bins():
    edges = [float(e) for e in range(1, 40)]  # 40 bins, as the base's quantile edges of a fine profile give
    hist = Histogram(edges=edges, base=[1 / 40] * 40, head=[0.05] * 20 + [0.0] * 20)
    assert len(hist.base) == 40
    [chart] = mermaid_blocks("\n".join(histogram_chart("amount", "train", hist)))
    labels = re.findall(r'"([^"]*)"', next(line for line in chart if "x-axis" in line))
    bars = next(line for line in chart if line.strip().startswith("bar ["))
    assert 1 < len(labels) <= MAX_CHART_BINS and len(bars.split(",")) == len(labels)
    assert labels[0].startswith("≤") and labels[-1].startswith(">")


def test_charts_are_capped_and_hostile_names_stay_inside_them():
    rng = np.random.default_rng(0)
    base = pd.DataFrame({f"{HOSTILE}{i}": rng.normal(0, 1, 3000) for i in range(5)})
    base["kind"] = rng.choice(['"]`\n<b>', "%%{init}%%", "ok"], 3000)
    base["label"] = 0
    head = base.copy()
    for i in range(5):
        head[f"{HOSTILE}{i}"] += 0.5 + i / 2  # the last drifted most
    head["kind"] = rng.choice(['"]`\n<b>', "%%{init}%%", "ok"], 3000, p=[0.8, 0.1, 0.1])
    columns, found = compare(base, head)
    record = checks(columns.values(), found)
    text = join(checks_section(record))
    blocks = mermaid_blocks(text)
    assert len(blocks) == MAX_CHARTS == 3 and text.count("```") == 2 * MAX_CHARTS
    assert "2 more flagged in the table below" in text  # 5 numeric columns flagged, 3 charted
    assert "a_b__x4 (train)" in blocks[0][1]  # the worst first
    safe = re.compile(r'^    (title "[^"`]*"|x-axis \[("[^"`]*", )*"[^"`]*"\]|y-axis "[^"`]*" 0 --> \d+|'
                      r"(bar|line) \[[0-9., ]+\])$")
    for block in blocks:
        assert block[0] == "xychart-beta" and all(safe.match(line) for line in block[1:]), block
        labels = re.findall(r'"([^"]*)"', block[2])
        assert len(block[4].split(",")) == len(block[5].split(",")) == len(labels)  # same bins, both sides
    # the categorical chart, if shown alone, keeps its hostile categories inside their quotes
    kind = histogram_chart(f"{HOSTILE}\n```", "train", columns["kind"].histogram)
    chart = kind[kind.index("---", 2) + 1:]
    assert all(safe.match(line) for line in chart[1:-1]) and kind[-1] == "```" and "%%" not in "".join(kind)
    assert not any("(train): head as bars" in b[1] and "kind" in b[1] for b in blocks)  # categories: no chart
    # a finding line names the column once, as code; the rest of its message is escaped
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(lines) == len(found) and all(len(re.findall(r"(?<!\\)`", line)) == 2 for line in lines)
    assert "- ⚠️ train · `a\"b]'x0` drifted: mean" in text or "- ❌ train · `a\"b]'x0` drifted: mean" in text
    assert "<b>" not in text and "\\<b\\>" in text


def test_the_rendered_markdown_keeps_its_structure():
    from markdown_it import MarkdownIt

    rng = np.random.default_rng(0)
    base = pd.DataFrame({"<img src=x>": rng.normal(0, 1, 3000), "a|b": rng.normal(0, 1, 3000),
                         "ok": rng.normal(0, 1, 3000), "label": (rng.uniform(size=3000) < 0.3).astype(int)})
    head = base.copy()
    head["<img src=x>"] += 1
    head["a|b"] += 2
    columns, found = compare(base, head)
    rec = checks(columns.values(), found)
    entry = ModelRecord(model="churn", plan=ModelPlan(model="churn", stages=["check"]), checks=rec)
    markdown = join(render_model(entry))
    renderers = [MarkdownIt("commonmark", {"html": True}).enable("table").render]
    try:
        import cmarkgfm
        from cmarkgfm.cmark import Options

        renderers.append(lambda md: cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE))
    except ImportError:  # GitHub's own renderer is optional here
        pass
    for render in renderers:
        html = render(markdown)
        # one chart per drifted column (GitHub: <pre lang="mermaid">, markdown-it: class="language-mermaid")
        assert len(re.findall(r'<pre lang="mermaid">|<code class="language-mermaid">', html)) == 2
        table = re.search(r"<table>.*?</table>", html, re.DOTALL).group(0)
        rows = re.findall(r"<tr>.*?</tr>", table, re.DOTALL)
        assert len(rows) == 1 + 4 and all(len(re.findall(r"<t[hd][ >]", r)) == 8 for r in rows)  # no split cells
        assert "<code>a|b</code>" in table
        tags = set(re.findall(r"</?([a-z0-9]+)", re.sub(r"<code[^>]*>.*?</code>", "", html, flags=re.DOTALL)))
        assert tags <= {"h3", "h4", "p", "ul", "li", "code", "pre", "details", "summary", "table", "thead", "tbody",
                        "tr", "th", "td"}, tags
        assert "<img" not in html


# -- the real CLI ----------------------------------------------------------------------------------
def test_check_and_report_show_natural_units_and_a_chart(tiny_repo):
    repo = tiny_repo
    git(repo, "checkout", "--quiet", "-b", "pr/shift")
    write_tiny_data(repo, seed=1, shift=1.0)
    commit(repo, "shifted data")
    check = cli(repo, "check")
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert "column 'x1' drifted: mean " in check.stdout  # the message stands on its own (stdout, JUnit)
    record = json.loads((repo / ".mlops-ci" / "record.json").read_text())
    x1 = {(ds["role"], c["column"]): c for ds in record["models"]["tiny"]["results"]["check"]["datasets"]
          for c in ds["columns"]}[("train", "x1")]
    assert x1["head_stats"]["mean"] - x1["base_stats"]["mean"] == pytest.approx(1.0, abs=0.25)
    report = cli(repo, "report", "--quiet")
    assert report.returncode == 0, report.stderr[-2000:]
    text = (repo / ".mlops-ci" / "report.md").read_text()
    section = text[text.index("#### Data checks"):]
    line = r"- ⚠️ train · `x1` drifted: mean -?\d\.\d\d → -?\d\.\d\d, median "
    assert re.search(line, section), section[:1500]
    assert "column 'x1'" not in section  # the column is named once per line
    blocks = mermaid_blocks(section)
    assert 1 <= len(blocks) <= MAX_CHARTS and any('title "x1 (train): head as bars, base as line' in b[1]
                                                  for b in blocks)
    assert all(len(re.findall(r'"[^"]*"', b[2])) == len(b[4].split(",")) == len(b[5].split(",")) for b in blocks)
