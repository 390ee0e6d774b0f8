"""Report stage: Markdown rendered only from a RunRecord.

Text that comes from users (PR titles, branch names, column names, error output) is escaped
so that it cannot inject Markdown, HTML or mentions into the comment.
"""

from __future__ import annotations

import math
import re

from mlops_ci.records import ChecksRecord, EvaluationRecord, ModelRecord, PromotionRecord, RunRecord

MARKER = "<!-- mlops-ci:report -->"
ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skipped": "⏭️"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")
MAX_COLUMNS_SHOWN = 15


def esc(text: object) -> str:
    """Escape untrusted text for Markdown (also neutralises @mentions and HTML)."""
    s = str(text).replace("\r", " ").replace("\n", " ")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return s.replace("@", "@\u200b")


def code(text: object) -> str:
    s = str(text).replace("`", "'").replace("\n", " ")
    return f"`{s}`"


def num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "—"
    if math.isnan(x):
        return "NaN"
    return f"{x:.{digits}f}"


def _delta(m) -> str:
    d = m.delta
    if d is None:
        return "—"
    if math.isnan(d):
        return "NaN"
    better = (d > 0) == m.higher_is_better
    arrow = "" if abs(d) < 1e-12 else ("▲" if d > 0 else "▼")
    mark = "" if abs(d) < 1e-12 else (" (better)" if better else " (worse)")
    return f"{arrow} {d:+.4f}{mark}".strip()


def _checks(c: ChecksRecord) -> list[str]:
    out = [f"#### Data checks {ICON[c.status]} {c.status}"]
    if c.status == "skipped":
        out.append(f"Skipped: {esc(c.skip_reason or '')}")
        return out
    for f in c.findings:
        where = f"{f.dataset}" + (f" · {code(f.column)}" if f.column else "")
        out.append(f"- {ICON[f.status]} {where}: {esc(f.message)}")
    if not c.findings:
        out.append("No findings: schema, null rates and distributions are within thresholds.")
    rows = [(ds, col) for ds in c.datasets for col in ds.columns]
    rows.sort(key=lambda r: -(r[1].psi or 0))
    if rows:
        out += ["", "<details><summary>Columns by drift (PSI)</summary>", "",
                "| dataset | column | kind | nulls base → head | PSI | JS | status |",
                "|---|---|---|---|---|---|---|"]
        for ds, col in rows[:MAX_COLUMNS_SHOWN]:
            nulls = f"{(col.base_null_rate or 0):.1%} → {(col.head_null_rate or 0):.1%}"
            out.append(f"| {ds.role} | {code(col.column)} | {col.kind} | {nulls} | {num(col.psi, 3)} | "
                       f"{num(col.js, 3)} | {ICON[col.status]} |")
        if len(rows) > MAX_COLUMNS_SHOWN:
            out.append(f"\n{len(rows) - MAX_COLUMNS_SHOWN} more columns within thresholds.")
        sizes = ", ".join(f"{ds.role}: {ds.base_rows if ds.base_rows is not None else '—'} → "
                          f"{ds.head_rows if ds.head_rows is not None else '—'} rows" for ds in c.datasets)
        out += ["", f"Rows base → head: {sizes}.", "", "</details>"]
    return out


def _evaluation(e: EvaluationRecord) -> list[str]:
    if e.champion is not None:
        champ = f"champion v{esc(e.champion.version)} (alias {code(e.champion.alias)})"
        if e.champion_state == "unusable":
            champ += " could not be evaluated"
    else:
        champ = f"no champion yet (policy: {e.no_champion_policy})"
    out = [f"#### Evaluation {ICON[e.status]} {e.status}",
           f"On {code(e.dataset)} ({e.rows} rows), candidate vs {champ}.", "",
           "| metric | candidate | champion | Δ | gate |", "|---|---|---|---|---|"]
    gate_by_metric: dict[str, str] = {}
    for g in e.gates:
        prev = gate_by_metric.get(g.metric, "skipped")
        order = {"skipped": 0, "pass": 1, "fail": 2}
        gate_by_metric[g.metric] = g.status if order[g.status] >= order[prev] else prev
    for m in e.metrics:
        gate = gate_by_metric.get(m.name)
        mark = ICON.get(gate, "") if gate else ""
        arrow = "↑" if m.higher_is_better else "↓"
        out.append(f"| {m.name} {arrow} | {num(m.candidate)} | {num(m.champion)} | {_delta(m)} | {mark} |")
    out.append("")
    for g in e.gates:
        out.append(f"- {ICON[g.status]} {esc(g.message)}")
    return out


def _training(m: ModelRecord) -> list[str]:
    t = m.training
    if t is None:
        return []
    if t.status == "skipped":
        return ["#### Training ⏭️ skipped", esc(t.skip_reason or "")]
    icon = ICON["pass"] if t.status == "succeeded" else ICON["fail"]
    link = f"[{t.run_id}]({t.run_url})" if t.run_url else code(t.run_id)
    out = [f"#### Training {icon} {t.status}",
           f"Run {link} · {t.backend} × {t.nproc_per_node} processes · {t.duration_s:.0f}s"]
    if t.error:
        out.append(f"\n> {esc(t.error)}")
    shown = {k: v for k, v in t.metrics.items() if not k.startswith("system/")}
    if shown:
        out.append("Final training metrics: " + ", ".join(f"{esc(k)} {num(v)}" for k, v in sorted(shown.items())))
    if m.registration is not None:
        r = m.registration
        out.append(f"Registered as **{esc(r.name)} v{esc(r.version)}** · digest {code(r.digest[:19])}")
    return out


def _promotion(p: PromotionRecord, title: str) -> list[str]:
    changed = [c for c in p.changes if c.action != "unchanged"]
    head = f"#### {title}: {esc(p.model)} v{esc(p.version)} → {code(p.env)}"
    if p.noop or not changed:
        return [head, f"No change: {esc(p.env)} already serves v{esc(p.version)}."]
    out = [head, f"Alias {code(p.alias)} moves to v{esc(p.version)}; "
           f"{len(changed)} file(s) in {code(p.remote.split('/')[-1])} ({code(p.branch)}):" +
           (f" commit {code((p.commit_sha or '')[:12])}" if p.commit_sha and not p.dry_run else "")]
    if p.forced_reason:
        out.append(f"\n> ⚠️ forced: {esc(p.forced_reason)}")
    out += ["", "<details><summary>Manifest diff</summary>", "", "```diff"]
    for c in changed:
        out.append(c.diff.replace("```", "`\u200b``").rstrip("\n"))
    out += ["```", "", "</details>"]
    return out


def render_model(m: ModelRecord) -> list[str]:
    out = [f"### {ICON[m.verdict]} {esc(m.model)}: {m.verdict}"]
    if m.plan.skip_reason:
        out.append(f"Skipped: {esc(m.plan.skip_reason)}")
    elif m.plan.reasons:
        out.append("Why it ran: " + "; ".join(esc(r) for r in m.plan.reasons))
    for section in (_checks(m.checks) if m.checks else [],
                    _training(m),
                    _evaluation(m.evaluation) if m.evaluation else [],
                    _promotion(m.deployment_plan, "Deployment plan") if m.deployment_plan else []):
        if section:
            out += [""] + section
    for p in m.promotions:
        out += [""] + _promotion(p, "Promoted" if not p.noop else "Promotion")
    return out


def render_report(record: RunRecord) -> str:
    ctx = record.context
    verdict = record.verdict
    where = [f"head {code(ctx.head_sha[:12])}"]
    if ctx.base_sha:
        where.append(f"base {code(ctx.base_sha[:12])}")
    if ctx.pr_number:
        where.append(f"PR #{ctx.pr_number}" + (f" {esc(ctx.pr_title)}" if ctx.pr_title else ""))
    elif ctx.ref:
        where.append(f"branch {code(ctx.ref)}")
    if ctx.dirty:
        where.append("⚠️ uncommitted changes in the work tree")
    lines = [MARKER, f"## {ICON[verdict]} mlops-ci: {verdict}", " · ".join(where)]
    if not record.models:
        lines += ["", "No models were planned for this change."]
    for m in record.models.values():
        lines += [""] + render_model(m)
    footer = f"<sub>mlops-ci {esc(record.tool_version)} · record schema v{record.schema_version}"
    if ctx.run_url:
        footer += f" · [workflow run]({ctx.run_url})"
    lines += ["", footer + "</sub>", ""]
    return "\n".join(lines)


def gate_failure_line(model: str, ev: EvaluationRecord) -> str:
    """One line for stderr: which gates failed, on which data."""
    reasons = "; ".join(g.message for g in ev.gates if g.status == "fail")
    return f"mlops-ci: {model}: gates failed on {ev.dataset}: {reasons}; nothing was registered"


def failure_lines(record: RunRecord) -> list[str]:
    """One stderr line per failed model, naming the stage that failed it."""
    lines = []
    for model, entry in record.models.items():
        if entry.verdict != "fail":
            continue
        if entry.evaluation is not None and entry.evaluation.status == "fail":
            lines.append(gate_failure_line(model, entry.evaluation))
        elif entry.training is not None and entry.training.status == "failed":
            lines.append(f"mlops-ci: {model}: training failed: {entry.training.error}")
        elif entry.checks is not None and entry.checks.status == "fail":
            failed = [f"{f.dataset}: {f.message}" for f in entry.checks.findings if f.status == "fail"]
            lines.append(f"mlops-ci: {model}: data checks failed: {'; '.join(failed)}")
    return lines
