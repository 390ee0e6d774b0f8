"""The monitoring issue's Markdown, from a MonitorRecord: the served version, a row per window,
the trend of the top drift scores and of traffic as Mermaid charts, the latest window's findings,
what could not be read, and the retraining it asked for.

Traffic is untrusted (anyone who can reach the endpoint chooses column names and values): every
value from the record is masked and escaped, names in charts are sanitised (render.charts).
"""

from __future__ import annotations

from mlops_ci.records.monitor import INSUFFICIENT, MonitorRecord, WindowResult
from mlops_ci.render.charts import PALETTE, _plain, mermaid_text
from mlops_ci.render.document import Report, details, fit
from mlops_ci.render.markdown import ICON, cell, code, esc, num, plain

MARKER_PREFIX = "<!-- mlops-ci:monitor"
LABEL = "mlops-ci:monitor"
MAX_SERIES = 4
MAX_BODY = 60_000  # GitHub refuses an issue body over 65,536 characters
STATUS_ICON = {**ICON, INSUFFICIENT: "❔"}


def marker(model: str, env: str) -> str:
    """The hidden line that finds this model's monitoring issue in this environment again."""
    return f"{MARKER_PREFIX} model={model} env={env} -->"


def title(model: str, env: str) -> str:
    return f"Monitoring: {model} in {env}"


def _day(text: str) -> str:
    return text[:16].replace("T", " ")


def _window_row(w: WindowResult) -> str:
    top = w.top_scores(1)
    drift = f"{esc(top[0][0])} {num(top[0][1], 3)}" if top else "—"
    metrics = ", ".join(f"{esc(m.name)} {num(m.value, 3)}" for m in w.metrics) or "—"
    failing = sorted({f.column or f.dataset for f in w.findings if f.status == "fail"})
    return (f"| {_day(w.start)} | {w.rows:,} | {w.requests:,} | {STATUS_ICON[w.status]} {w.status} | "
            f"{cell(drift)} | {cell(', '.join(esc(c) for c in failing[:5]) or '—')} | "
            f"{cell(metrics)} ({w.labelled:,} labelled) |")


def _trend(record: MonitorRecord) -> list[str]:
    """Line chart of the largest drift scores per window (the columns that were top at least
    once), and a bar chart of traffic per window."""
    if len(record.windows) < 2:
        return []
    xs = ", ".join(f'"{mermaid_text(_day(w.start)[5:10])}"' for w in record.windows)
    names: list[str] = []
    for w in reversed(record.windows):
        for name, _ in w.top_scores(MAX_SERIES):
            if name not in names:
                names.append(name)
    names = names[:MAX_SERIES]
    out: list[str] = []
    if names:
        scores = [{c.column: max([v for v in (c.psi, c.js, c.wasserstein) if isinstance(v, float)] or [0.0])
                   for c in w.columns} for w in record.windows]
        out += ["```mermaid", *PALETTE, "xychart-beta",
                f'    title "Largest drift score per window: {", ".join(mermaid_text(n, 30) for n in names)}"',
                f"    x-axis [{xs}]"]
        out += ["    line [" + ", ".join(_plain(s.get(n, 0.0)) for s in scores) + "]" for n in names]
        out += ["```", ""]
    out += ["```mermaid", *PALETTE, "xychart-beta", '    title "Predicted rows per window"', f"    x-axis [{xs}]",
            "    bar [" + ", ".join(str(w.rows) for w in record.windows) + "]", "```"]
    return out


def _findings(w: WindowResult) -> list[str]:
    flagged = [f for f in w.findings if f.status in ("warn", "fail")]
    if not flagged:
        return []
    rows = ["| | dataset | column | what |", "|---|---|---|---|"]
    rows += [f"| {ICON[f.status]} | {esc(f.dataset)} | {cell(code(f.column or '—'))} | {cell(esc(f.message))} |"
             for f in flagged[:40]]
    return rows


def issue_body(record: MonitorRecord, *, retrain_link: str | None = None) -> str:
    """The whole issue body; ``retrain_link``: Markdown the publishing job built (never the record's)."""
    latest = record.latest()
    icon = STATUS_ICON[record.status]
    lines: list = [marker(record.model, record.env),
             f"## {icon} {esc(record.model)} in {esc(record.env)}: {record.status}", "",
             f"Serving **v{record.version}** (what the GitOps repository pins). {len(record.windows)} windows of "
             f"{esc(record.window)} up to {esc(_day(record.until))} UTC, against the reference stored at "
             f"registration" + (" (computed now from its lineage's data)" if record.reference == "computed" else "")
             + ".", ""]
    t = record.traffic
    lines += [(f"Traffic: {t.requests:,} logged requests in {t.objects:,} objects; {t.unanswered:,} unanswered, "
              f"{t.orphans:,} responses without a request, {t.undecodable:,} undecodable, {t.corrupt:,} objects "
              "skipped."), ""]
    if record.retrain is not None and record.retrain.action != "not needed":
        lines += [f"**Retraining:** {esc(record.retrain.action)}: {esc(record.retrain.reason)}"
                  + (f" ({retrain_link})" if retrain_link else ""), ""]
    lines += ["| window (UTC) | rows | requests | status | top drift | failing | live metrics |",
              "|---|---|---|---|---|---|---|", *(_window_row(w) for w in record.windows), ""]
    lines += _trend(record)
    if latest is not None and latest.status != INSUFFICIENT:
        found = _findings(latest)
        if found:
            lines += ["", f"### Latest window ({_day(latest.start)})", "", *found]
    if record.skipped:
        lines += ["", details(f"{len(record.skipped)} log object(s) skipped",
                              [f"- {code(s.path)}: {esc(s.reason)}" for s in record.skipped])]
    if record.problems:
        lines += ["", details("Decoding problems", [f"- {esc(p)}" for p in record.problems])]
    lines += ["", f"<sub>mlops-ci monitor · {esc(record.created_at)} · logs {code(record.logs)}</sub>", ""]
    return fit(Report(lines), MAX_BODY, "the whole result is in the monitor record (`mlops-ci monitor --out`)")


def recovered_comment(record: MonitorRecord) -> str:
    last = record.latest()
    latest = last.status if last is not None else INSUFFICIENT
    return (f"Recovered: the latest window of {esc(record.model)} v{record.version} in {esc(record.env)} "
            f"is {latest}. Closing; a new finding reopens this issue.")


def console_summary(record: MonitorRecord) -> str:
    """The console's lines (names from traffic are untrusted: control characters out)."""
    lines = [(f"{record.model} v{record.version} in {record.env}: {record.status} over {len(record.windows)} "
             f"window(s) of {record.window} ({record.traffic.requests:,} logged requests, "
             f"{record.traffic.corrupt} object(s) skipped)")]
    for w in record.windows:
        top = w.top_scores(1)
        drift = f", top drift {plain(top[0][0])[:60]} {top[0][1]:.3f}" if top else ""
        labels = "".join(f", {plain(m.name)} {m.value:.3f}" for m in w.metrics if m.value is not None)
        lines.append(f"  {w.start[:16]}  {w.rows:>7,} rows  {w.status}{drift}{labels}")
    if record.issue is not None:
        where = record.issue.url or record.issue.path or ""
        lines.append(f"monitoring issue: {record.issue.action} {where}".rstrip())
    if record.retrain is not None:
        lines.append(f"retraining: {record.retrain.action}: {record.retrain.reason}"
                     + (f" (branch {record.retrain.branch})" if record.retrain.branch else "")
                     + (f" {record.retrain.url}" if record.retrain.url else ""))
    return "\n".join(lines)


__all__ = ["LABEL", "MARKER_PREFIX", "console_summary", "issue_body", "marker", "recovered_comment", "title"]
