"""Compare two table profiles under the checks policy: pure, profiles in, findings out.

Every finding names its check, column, metric, value and the threshold it crossed, so a test
(or a reviewer) can see exactly why a check warned or failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mlops_ci.checks import drift, units
from mlops_ci.checks.profile import ColumnProfile, TableProfile
from mlops_ci.checks.profiler import sample_histogram
from mlops_ci.config.schema import ChecksConfig, Threshold
from mlops_ci.records import ColumnSummary, Finding, worst

_WIDENING = {("int8", "int16"), ("int16", "int32"), ("int32", "int64"), ("int64", "double"),
             ("int32", "double"), ("float", "double"), ("int64", "float")}


def grade(value: float, th: Threshold) -> str:
    if th.fail is not None and value >= th.fail:
        return "fail"
    if th.warn is not None and value >= th.warn:
        return "warn"
    return "pass"


def limit(th: Threshold, status: str) -> float | None:
    return th.fail if status == "fail" else th.warn


def retyped(base: ColumnProfile, head: ColumnProfile) -> bool:
    if base.arrow_type == head.arrow_type or "null" in (base.arrow_type, head.arrow_type):
        return False
    pair = (base.arrow_type, head.arrow_type)
    return pair not in _WIDENING and pair[::-1] not in _WIDENING


@dataclass
class _Collector:
    role: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, status: str, check: str, message: str, column: str | None = None, **kw) -> str:
        if status not in ("pass", "ignore"):
            self.findings.append(Finding(check=check, dataset=self.role, column=column, status=status,
                                         message=message, **kw))
        return status


def _thresholds(checks: ChecksConfig, name: str, is_label: bool) -> dict[str, Threshold]:
    # a column's override keeps the levels it leaves out from the model-level threshold
    return checks.column_thresholds(name, is_label=is_label)


def compare_profiles(role: str, base: TableProfile, head: TableProfile, checks: ChecksConfig, *,
                     label: str) -> tuple[list[ColumnSummary], list[Finding]]:
    """Column summaries and findings for one dataset."""
    out = _Collector(role)
    ignored = set(checks.ignore_columns)
    schema = checks.schema_
    _rows(out, base, head, checks)
    for name in base.columns:
        if name not in head.columns and name not in ignored:
            out.add(schema.removed, "schema", f"column {name!r} was removed", name)
    for name in head.columns:
        if name not in base.columns and name not in ignored:
            out.add(schema.added, "schema", f"column {name!r} was added ({head.columns[name].arrow_type})", name)
    columns = []
    for name, h in head.columns.items():
        b = base.columns.get(name)
        if b is None or name in ignored:
            continue
        columns.append(_column(out, base, head, b, h, checks, is_label=name == label))
    return columns, out.findings


def _rows(out: _Collector, base: TableProfile, head: TableProfile, checks: ChecksConfig) -> None:
    rows = checks.rows
    if rows.min is not None and head.rows < rows.min:
        out.add("fail", "rows", f"{head.rows:,} rows, fewer than the minimum of {rows.min:,}",
                metric="rows", value=float(head.rows), threshold=float(rows.min))
    if base.rows:
        change = abs(head.rows - base.rows) / base.rows
        status = grade(change, rows.max_change)
        out.add(status, "rows", f"row count changed by {change:.0%} ({base.rows:,} -> {head.rows:,})",
                metric="rows_change", value=change, threshold=limit(rows.max_change, status))


def _column(out: _Collector, base_t: TableProfile, head_t: TableProfile, b: ColumnProfile, h: ColumnProfile,
            checks: ChecksConfig, *, is_label: bool) -> ColumnSummary:
    name = h.name
    what = "label" if is_label else "column"
    ths = _thresholds(checks, name, is_label)
    summary = ColumnSummary(column=name, kind=h.kind, base_type=b.arrow_type, head_type=h.arrow_type,
                            base_null_rate=b.null_rate, head_null_rate=h.null_rate, label=is_label)
    statuses = ["pass"]
    for note in h.notes:
        statuses.append(out.add(checks.schema_.mixed_types, "types", note, name))
    if retyped(b, h):
        statuses.append(out.add(checks.schema_.retyped, "schema",
                                f"{what} {name!r} changed type {b.arrow_type} -> {h.arrow_type}", name))
    statuses += _nulls(out, b, h, ths, checks, what)
    comparable = b.kind == h.kind and h.kind in ("numeric", "categorical", "boolean") and b.valid and h.valid
    if comparable:
        if h.kind == "numeric" and h.edges != b.edges:  # profiled against other edges (e.g. alone)
            h = replace(h, edges=b.edges, hist=sample_histogram(head_t.column_sample(name), b.edges or [], h.valid))
        statuses += _drift(out, summary, base_t, head_t, b, h, ths, checks, is_label=is_label)
    summary.status = worst(s for s in statuses if s != "ignore")
    flagged = summary.status in ("warn", "fail")
    if comparable and (flagged or is_label):  # the label's class balance is worth showing anyway
        _natural(summary, base_t, head_t, b, h, is_label=is_label, flagged=flagged)
    return summary


def _natural(summary: ColumnSummary, base_t: TableProfile, head_t: TableProfile, b: ColumnProfile,
             h: ColumnProfile, *, is_label: bool, flagged: bool = True) -> str:
    """Fill in the column's drift in natural units (once) and return it as text for a message.
    A label that did not drift gets its class balance only (no chart)."""
    if summary.histogram is None and not summary.shares and summary.base_stats is None:
        classes = (units.class_counts(base_t, b), units.class_counts(head_t, h)) if is_label else (None, None)
        if classes[0] and classes[1]:
            summary.shares = units.class_balance(*classes)
            summary.histogram = units.category_histogram(*classes) if flagged else None
        elif not flagged:
            return ""
        elif h.kind == "numeric":
            summary.base_stats, summary.head_stats = units.numeric_summary(base_t, b), units.numeric_summary(head_t, h)
            summary.histogram = (units.sample_histogram(base_t.column_sample(b.name), head_t.column_sample(h.name))
                                 or units.numeric_histogram(b, h))
        else:
            bc, hc = units.category_counts(b), units.category_counts(h)
            summary.shares = units.share_changes(bc, hc)
            summary.histogram = units.category_histogram(bc, hc)
    return units.describe(summary.base_stats, summary.head_stats, summary.shares, label=summary.label,
                          quoted=h.kind != "numeric")


def _nulls(out: _Collector, b: ColumnProfile, h: ColumnProfile, ths: dict[str, Threshold],
           checks: ChecksConfig, what: str) -> list[str]:
    name = h.name
    if h.rows and h.nulls == h.rows:
        status = out.add(checks.nulls.all_null, "nulls", f"{what} {name!r} is empty: all {h.rows:,} values are null",
                         name, metric="null_rate", value=1.0)
        if b.nulls == b.rows:
            return [status]  # already empty in the base: no increase to report on top
    statuses = []
    increase = h.null_rate - b.null_rate
    if increase > 0:
        th = ths["max_null_increase"]
        status = grade(increase, th)
        statuses.append(out.add(status, "nulls",
                                f"{what} {name!r} null rate rose from {b.null_rate:.1%} to {h.null_rate:.1%}",
                                name, metric="null_rate_increase", value=increase, threshold=limit(th, status)))
    th = ths["max_null_rate"]
    status = grade(h.null_rate, th)
    statuses.append(out.add(status, "nulls", f"{what} {name!r} null rate is {h.null_rate:.1%}", name,
                            metric="null_rate", value=h.null_rate, threshold=limit(th, status)))
    return statuses


def _drift(out: _Collector, summary: ColumnSummary, base_t: TableProfile, head_t: TableProfile,
           b: ColumnProfile, h: ColumnProfile, ths: dict[str, Threshold], checks: ChecksConfig, *,
           is_label: bool) -> list[str]:
    name = h.name
    bc, hc, _ = drift.aligned_counts(b, h, top_k=checks.drift.top_categories)
    summary.psi = drift.psi(bc, hc)
    summary.js = drift.js_distance(bc, hc)
    scores = [("psi", summary.psi), ("js", summary.js)]
    if h.kind == "numeric":
        summary.wasserstein = drift.wasserstein_sigma(base_t.column_sample(name), head_t.column_sample(name), b.std)
        if summary.wasserstein is not None:
            scores.append(("wasserstein", summary.wasserstein))
    graded = [(metric, value, ths[metric], grade(value, ths[metric])) for metric, value in scores]
    flagged = [g for g in graded if g[3] != "pass"]
    check = "label_drift" if is_label else "drift"
    what = "label" if is_label else "column"
    statuses = []
    if flagged:
        metric, value, th, status = max(flagged, key=lambda g: (g[3] == "fail", g[1] / (limit(g[2], g[3]) or 1)))
        natural = _natural(summary, base_t, head_t, b, h, is_label=is_label)
        crossed = _crossed(flagged)
        message = f"{what} {name!r} drifted" + (f": {natural} ({crossed})" if natural else f" ({crossed})")
        statuses.append(out.add(status, check, message, name, metric=metric, value=value,
                                threshold=limit(th, status)))
    new = drift.new_categories(b, h)
    if new:
        action = checks.label.new_classes if is_label else checks.drift.new_categories
        kind = "classes" if is_label else "categories"
        rows = sum(h.categories[c] for c in new)
        shown = ", ".join(repr(c) for c in new[:5]) + (f" and {len(new) - 5} more" if len(new) > 5 else "")
        statuses.append(out.add(action, check, f"{what} {name!r} has new {kind} ({rows:,} rows): {shown}", name,
                                metric=f"new_{kind}", value=float(len(new))))
    return statuses


_LABEL = {"psi": "PSI", "js": "JS", "wasserstein": "W/σ"}


def score(value: float, thresholds: tuple[float | None, ...]) -> str:
    """``value`` in three decimals, or more where three would round it onto a threshold it is on the
    other side of (0.2499 against a fail level of 0.25 is not "0.250")."""
    for digits in range(3, 8):
        text = f"{value:.{digits}f}"
        if not any(t is not None and float(text) == t and value != t for t in thresholds):
            return text
    return repr(value)


def _crossed(flagged: list[tuple[str, float, Threshold, str]]) -> str:
    """The scores over a threshold, grouped by the threshold crossed: "fail: PSI 0.349 ≥ 0.25;
    warn: JS 0.120 ≥ 0.1" (scores in three decimals, as the report's table shows them)."""
    groups = []
    for severity in ("fail", "warn"):
        shown = [f"{_LABEL[m]} {score(v, (t.warn, t.fail))} ≥ {limit(t, st):g}" for m, v, t, st in flagged
                 if st == severity]
        if shown:
            groups.append(f"{severity}: " + ", ".join(shown))
    return "; ".join(groups)
