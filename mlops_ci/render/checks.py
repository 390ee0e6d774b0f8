"""The data-checks section of the report: one line per finding, drift in natural units, a chart of
the most drifted columns and the table of every compared column.

A finding's message names its column ("column 'x' drifted: ..."); the line shows the column as
code once and the rest of the message after it, so the message stays whole for JUnit, check-run
annotations and stderr. Findings are listed worst first.
"""

from __future__ import annotations

from mlops_ci.checks.units import describe
from mlops_ci.records import ChecksRecord, ColumnSummary, DatasetCheck, Finding
from mlops_ci.render.charts import histogram_chart
from mlops_ci.render.document import details
from mlops_ci.render.markdown import ICON, cell, code, count, esc, num

MAX_COLUMNS_SHOWN = 15
MAX_CHARTS = 3
_SEVERITY_ORDER = {"skipped": 0, "pass": 1, "warn": 2, "fail": 3}


def checks_section(c: ChecksRecord) -> list[str]:
    out = [f"#### Data checks {ICON[c.status]} {c.status}"]
    if c.status == "skipped":
        out.append(f"Skipped: {esc(c.skip_reason or '')}")
        return out
    findings = sorted(c.findings, key=lambda f: -_SEVERITY_ORDER.get(f.status, 0))
    out += [finding_line(f) for f in findings]
    if not c.findings:
        out.append("No findings: schema, null rates and distributions are within thresholds.")
    out += _label_balance(c)
    out += suite_lines(c.suites)
    out += _charts(c)
    out += _table(c)
    return out


def finding_line(f: Finding) -> str:
    """``- ⚠️ train · `x1` drifted: ...``: the column once, as code, then the rest of the message."""
    where = esc(f.dataset)
    if not f.column:
        return f"- {ICON[f.status]} {where}: {esc(f.message)}"
    for what in ("column", "label"):
        subject = f"{what} {f.column!r}"
        if f.message.startswith(subject + " "):
            name = code(f.column) if what == "column" else f"label {code(f.column)}"
            return f"- {ICON[f.status]} {where} · {name} {esc(f.message[len(subject) + 1:])}"
    return f"- {ICON[f.status]} {where} · {code(f.column)}: {esc(f.message)}"


def _label_balance(c: ChecksRecord) -> list[str]:
    """The label's class balance where the label did not drift (a drifted one says it in its finding)."""
    shown = [f"{esc(ds.role)} {esc(_shares(col))}" for ds in c.datasets for col in ds.columns
             if col.label and col.shares and col.status == "pass"]
    if not shown:
        return []
    name = next(col.column for ds in c.datasets for col in ds.columns if col.label)
    return ["", f"Label {code(name)}, base → head: " + "; ".join(shown) + "."]


def _shares(col: ColumnSummary) -> str:
    return describe(None, None, col.shares, label=col.label, quoted=col.kind != "numeric")


def suite_lines(suites) -> list[str]:
    lines = []
    for r in suites:
        icon = ICON.get(r.status, "⚠️")
        rows = " + ".join(f"{n:,} {kind}" for kind, n in r.sampled_rows.items())
        where = f"; HTML report: {code(r.html_path)}" if r.html_path else ""
        lines.append(f"- deepchecks {code(r.suite)}: {icon} {r.status} ({len(r.checks)} checks on {rows} rows, "
                     f"{r.duration_s:.0f} s{where})")
    return [""] + lines if lines else []


def _drifted(c: ChecksRecord) -> list[tuple[DatasetCheck, ColumnSummary]]:
    """Numeric columns with a drift finding and a histogram, the worst first (fail before warn, then
    by PSI). Categories are not charted: a line across categories would suggest a trend; their
    shares are in the finding's line."""
    drifted = {(f.dataset, f.column) for f in c.findings if f.check in ("drift", "label_drift")}
    flagged = [(ds, col) for ds in c.datasets for col in ds.columns
               if col.histogram is not None and col.histogram.edges and col.status in ("warn", "fail")
               and (ds.role, col.column) in drifted]
    return sorted(flagged, key=lambda r: (-_SEVERITY_ORDER[r[1].status], -(r[1].psi or 0)))


def _charts(c: ChecksRecord) -> list[str]:
    drifted = _drifted(c)
    if not drifted:
        return []
    shown = drifted[:MAX_CHARTS]
    names = ", ".join(f"{code(col.column)} ({esc(ds.role)})" for ds, col in shown)
    more = f"; {len(drifted) - len(shown)} more flagged in the table below" if len(drifted) > len(shown) else ""
    out = ["", f"Distributions, base (line) vs head (bars), in percent of the non-null rows: {names}{more}."]
    for ds, col in shown:
        out += [""] + histogram_chart(col.column, ds.role, col.histogram, classes=col.label)
    return out


def _table(c: ChecksRecord) -> list[str]:
    rows = [(ds, col) for ds in c.datasets for col in ds.columns]
    rows.sort(key=lambda r: (-_SEVERITY_ORDER[r[1].status], -(r[1].psi or 0)))
    if not rows:
        return []
    out = ["| dataset | column | kind | nulls base → head | PSI | JS | W/σ | status |",
           "|---|---|---|---|---|---|---|---|"]
    for ds, col in rows[:MAX_COLUMNS_SHOWN]:
        nulls = f"{(col.base_null_rate or 0):.1%} → {(col.head_null_rate or 0):.1%}"
        kind = esc(col.kind) + (" (label)" if col.label else "")
        out.append(f"| {esc(ds.role)} | {cell(code(col.column))} | {kind} | {nulls} | {num(col.psi, 3)} | "
                   f"{num(col.js, 3)} | {num(col.wasserstein, 3)} | {ICON[col.status]} |")
    hidden = rows[MAX_COLUMNS_SHOWN:]
    if hidden:
        flagged = sum(col.status in ("warn", "fail") for _, col in hidden)
        out.append(f"\n{len(hidden)} more column{'s' if len(hidden) != 1 else ''}"
                   + ((f", {flagged} of them flagged." if len(hidden) != 1 else ", flagged.") if flagged
                      else ", within thresholds."))
    sizes = ", ".join(f"{esc(ds.role)}: {count(ds.base_rows)} → {count(ds.head_rows)} rows"
                      + (f" (profile of {' and '.join(esc(s) for s in ds.cached)} from the cache)" if ds.cached
                         else "")
                      for ds in c.datasets)
    out += ["", (f"Rows base → head: {sizes}. PSI and JS over base-quantile bins; W/σ is the Wasserstein "
                 "distance in base standard deviations.")]
    return ["", details("Columns by drift", out)]
