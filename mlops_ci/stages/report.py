"""Report stage: Markdown rendered only from a RunRecord.

Text that comes from users (PR titles, branch names, column names, error output) is escaped
so that it cannot inject Markdown, HTML or mentions into the comment.
"""

from __future__ import annotations

import math
import re

from mlops_ci.records import ChecksRecord, EvaluationRecord, ModelRecord, PromotionRecord, PromotionRequest, RunRecord

MARKER = "<!-- mlops-ci:report -->"
ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skipped": "⏭️"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~$])")  # `$`: GitHub renders $...$ as math
MAX_COLUMNS_SHOWN = 15
MAX_CURVE_POINTS = 50  # the training curve is sampled down to this many steps
MAX_CURVE_LINES = 4
CURVE_X_KEYS = ("step", "epoch", "iteration")
GPU_HOURS_KEYS = ("system/gpu_hours", "gpu_hours")  # metrics a trainer may log
_SAFE_URL = re.compile(r"https?://[^\s<>()\[\]`'\"\\]+")
_MERMAID_UNSAFE = re.compile(r"[^A-Za-z0-9_./ -]")
_DETAILS = re.compile(r"\n*<details>.*?</details>\n*", re.S)
_FENCE = re.compile(r"^\s*```", re.M)


def esc(text: object) -> str:
    """Escape untrusted text for Markdown (also neutralises @mentions, HTML and GitHub's autolinks
    of bare URLs: a zero-width space after ``://`` and ``www.`` keeps them plain text)."""
    s = str(text).replace("\r", " ").replace("\n", " ")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    s = s.replace("://", ":\u200b//").replace("www.", "www\u200b.")
    return s.replace("@", "@\u200b")


def code(text: object) -> str:
    s = str(text).replace("`", "'").replace("\n", " ")
    return f"`{s}`"


def link(text: object, url: str | None) -> str:
    """A Markdown link whose text is escaped; a URL that is not plain http(s) is shown as code."""
    if url and _SAFE_URL.fullmatch(url):
        return f"[{esc(text)}]({url})"
    return esc(text) + (f" ({code(url)})" if url else "")


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
    out += _suite_lines(c.suites)
    rows = [(ds, col) for ds in c.datasets for col in ds.columns]
    rows.sort(key=lambda r: (-_SEVERITY_ORDER[r[1].status], -(r[1].psi or 0)))
    if rows:
        out += ["", "<details><summary>Columns by drift</summary>", "",
                "| dataset | column | kind | nulls base → head | PSI | JS | W/σ | status |",
                "|---|---|---|---|---|---|---|---|"]
        for ds, col in rows[:MAX_COLUMNS_SHOWN]:
            nulls = f"{(col.base_null_rate or 0):.1%} → {(col.head_null_rate or 0):.1%}"
            out.append(f"| {ds.role} | {code(col.column)} | {col.kind} | {nulls} | {num(col.psi, 3)} | "
                       f"{num(col.js, 3)} | {num(col.wasserstein, 3)} | {ICON[col.status]} |")
        if len(rows) > MAX_COLUMNS_SHOWN:
            out.append(f"\n{len(rows) - MAX_COLUMNS_SHOWN} more columns within thresholds.")
        sizes = ", ".join(f"{ds.role}: {_count(ds.base_rows)} → {_count(ds.head_rows)} rows"
                          + (f" (profile of {' and '.join(ds.cached)} from the cache)" if ds.cached else "")
                          for ds in c.datasets)
        out += ["", f"Rows base → head: {sizes}. PSI and JS over base-quantile bins; W/σ is the Wasserstein "
                "distance in base standard deviations.", "", "</details>"]
    return out


def _suite_lines(suites) -> list[str]:
    lines = []
    for r in suites:
        icon = ICON.get(r.status, "⚠️")
        rows = " + ".join(f"{n:,} {kind}" for kind, n in r.sampled_rows.items())
        where = f"; HTML report: {code(r.html_path)}" if r.html_path else ""
        lines.append(f"- deepchecks {code(r.suite)}: {icon} {r.status} ({len(r.checks)} checks on {rows} rows, "
                     f"{r.duration_s:.0f} s{where})")
    return [""] + lines if lines else []


_SEVERITY_ORDER = {"skipped": 0, "pass": 1, "warn": 2, "fail": 3}


def _count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _gate_marks(e: EvaluationRecord) -> dict[str, str]:
    """The worst gate status per metric."""
    order = {"skipped": 0, "pass": 1, "fail": 2}
    marks: dict[str, str] = {}
    for g in e.gates:
        prev = marks.get(g.metric, "skipped")
        marks[g.metric] = g.status if order[g.status] >= order[prev] else prev
    return marks


def _reused_evaluation(e: EvaluationRecord) -> list[str]:
    ref = e.reused_from
    out = [f"#### Evaluation {ICON[e.status]} {e.status} (the champion's metrics)",
           f"On {code(e.dataset)}: the metrics recorded for champion v{esc(ref.version)} (alias {code(ref.alias)}), "
           "reused because the candidate was not retrained; the gates are applied to them.", "",
           "| metric | value | gate |", "|---|---|---|"]
    marks = _gate_marks(e)
    for m in e.metrics:
        gate = marks.get(m.name)
        out.append(f"| {m.name} {'↑' if m.higher_is_better else '↓'} | {num(m.candidate)} | "
                   f"{ICON.get(gate, '') if gate else ''} |")
    out.append("")
    out += [f"- {ICON[g.status]} {esc(g.message)}" for g in e.gates]
    return out


def _evaluation(e: EvaluationRecord) -> list[str]:
    if e.reused_from is not None:
        return _reused_evaluation(e)
    if e.champion is not None:
        champ = f"champion v{esc(e.champion.version)} (alias {code(e.champion.alias)})"
        if e.champion_state == "unusable":
            champ += " could not be evaluated"
    else:
        champ = f"no champion yet (policy: {e.no_champion_policy})"
    out = [f"#### Evaluation {ICON[e.status]} {e.status}",
           f"On {code(e.dataset)} ({e.rows} rows), candidate vs {champ}.", "",
           "| metric | candidate | champion | Δ | gate |", "|---|---|---|---|---|"]
    gate_by_metric = _gate_marks(e)
    for m in e.metrics:
        gate = gate_by_metric.get(m.name)
        mark = ICON.get(gate, "") if gate else ""
        arrow = "↑" if m.higher_is_better else "↓"
        out.append(f"| {m.name} {arrow} | {num(m.candidate)} | {num(m.champion)} | {_delta(m)} | {mark} |")
    out.append("")
    for g in e.gates:
        out.append(f"- {ICON[g.status]} {esc(g.message)}")
    out += _suite_lines(e.suites)
    return out


def _training(m: ModelRecord) -> list[str]:
    t = m.training
    if t is None:
        return []
    if t.reused_from is not None:
        ref = t.reused_from
        out = ["#### Training ♻️ not retrained",
               f"Not retrained: code, data, params, settings and image are unchanged since the champion "
               f"(v{esc(ref.version)}, run {code(ref.run_id or 'unknown')}); metrics are the champion's."]
        if m.registration is not None:
            r = m.registration
            out.append(f"Reuses **{esc(r.name)} v{esc(r.version)}** · digest {code(r.digest[:19])} "
                       "(nothing new registered)")
        return out
    if t.status == "skipped":
        return ["#### Training ⏭️ skipped", esc(t.skip_reason or "")]
    icon = ICON["pass"] if t.status == "succeeded" else ICON["fail"]
    run = link(t.run_id or "run", t.run_url) if t.run_url else code(t.run_id)
    facts = [f"MLflow run {run}", f"{esc(t.backend)} × {t.nproc_per_node} processes", f"{t.duration_s:.0f}s"]
    if t.workflow or t.workflow_url:
        facts.insert(1, "Argo workflow " + (link(t.workflow or "workflow", t.workflow_url) if t.workflow_url
                                             else code(t.workflow)))
    gpu_hours = next((t.metrics[k] for k in GPU_HOURS_KEYS if k in t.metrics), None)
    if gpu_hours is not None and math.isfinite(gpu_hours):
        facts.append(f"{gpu_hours:.2f} GPU-hours")
    out = [f"#### Training {icon} {t.status}", " · ".join(facts)]
    if t.fingerprint is not None and t.fingerprint.note:
        out.append(f"Why it was trained: {esc(t.fingerprint.note)}.")
    if t.error:
        out.append(f"\n> {esc(t.error)}")
    shown = {k: v for k, v in t.metrics.items() if not k.startswith("system/")}
    if shown:
        out.append("Final training metrics: " + ", ".join(f"{esc(k)} {num(v)}" for k, v in sorted(shown.items())))
    out += training_curve(t.history)
    if m.registration is not None:
        r = m.registration
        out.append(f"Registered as **{esc(r.name)} v{esc(r.version)}** · digest {code(r.digest[:19])}")
    return out


def _sample(points: list, limit: int) -> list:
    """At most ``limit`` evenly spaced items, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    return [points[round(i * (len(points) - 1) / (limit - 1))] for i in range(limit)]


def _plain(value: float) -> str:
    """A number Mermaid parses (no exponent notation)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def training_curve(history: list[dict[str, float]]) -> list[str]:
    """A Mermaid ``xychart-beta`` line chart of the curve and the same numbers as a table.

    Empty without a history. Series with a non-finite value are left out of the chart (the
    table shows them); metric names are sanitised for Mermaid and escaped for Markdown."""
    if not history:
        return []
    xkey = next((k for k in CURVE_X_KEYS if all(k in h for h in history)), None)
    names: list[str] = []
    for h in history:
        names += [k for k in h if k != xkey and k not in names]
    if not names:
        return []
    points = _sample(history, MAX_CURVE_POINTS)
    xs = [_plain(h[xkey]) if xkey else str(i + 1) for i, h in enumerate(points)]
    charted = [n for n in names if all(n in h and math.isfinite(h[n]) for h in points)][:MAX_CURVE_LINES]
    out = ["", f"Training curve ({len(history)} steps" + (f", {len(points)} shown" if len(points) < len(history)
                                                          else "") + "):"]
    if charted:
        label = ", ".join(_MERMAID_UNSAFE.sub("_", n) for n in charted)
        out += ["", "```mermaid", "xychart-beta", f'    title "{label}"',
                f'    x-axis "{xkey or "step"}" [' + ", ".join(f'"{x}"' for x in xs) + "]"]
        out += ["    line [" + ", ".join(_plain(h[n]) for h in points) + "]" for n in charted]
        out.append("```")
    out += ["", "<details><summary>Training curve as a table</summary>", "",
            f"| {xkey or 'step'} | " + " | ".join(esc(n) for n in names) + " |",
            "|---" * (len(names) + 1) + "|"]
    out += [f"| {x} | " + " | ".join(num(h.get(n)) for n in names) + " |" for x, h in zip(xs, points)]
    out += ["", "</details>"]
    return out


def _promotion(p: PromotionRecord, title: str) -> list[str]:
    changed = [c for c in p.changes if c.action != "unchanged"]
    head = f"#### {title}: {esc(p.model)} v{esc(p.version)} → {code(p.env)}"
    if p.noop or not changed:
        return [head, f"No change: {esc(p.env)} already serves v{esc(p.version)}."]
    out = [head, f"Alias {code(p.alias)} moves to v{esc(p.version)}; "
           f"{len(changed)} file(s) in {code(p.remote.split('/')[-1])} ({code(p.branch)}):" +
           (f" commit {code((p.commit_sha or '')[:12])}" if p.commit_sha and not p.dry_run else "")]
    if p.pull_request:
        out.append(f"Proposed in {link('a pull request', p.pull_request)} from {code(p.branch)}; the alias moves "
                   "once it is merged.")
    if p.forced_reason:
        out.append(f"\n> ⚠️ forced: {esc(p.forced_reason)}")
    out += ["", "<details><summary>Manifest diff</summary>", "", "```diff"]
    for c in changed:
        out.append(c.diff.replace("```", "`\u200b``").rstrip("\n"))
    out += ["```", "", "</details>"]
    return out


def promotion_request(r: PromotionRequest) -> list[str]:
    """A change to the promotions file: that version's evaluation and the manifest diff a merge commits."""
    was = f" (was v{esc(r.previous)})" if r.previous else " (newly declared)"
    out = [f"### {ICON[r.status]} Promotion request: {esc(r.model)} v{esc(r.version)} → {code(r.env)}{was}",
           f"Declared at {code(r.source)}; merging this pull request applies it (`mlops-ci promote --declared`)."]
    if r.error:
        return out + ["", f"❌ {esc(r.error)}"]
    gates = ("✅ passed its gates" if r.gates == "pass" else
             f"❌ did not pass its gates ({esc(r.gate_summary) or 'no passing mlops-ci evaluation'})")
    out += ["", f"v{esc(r.version)} {gates}" + (f"; promoted anyway, reason: {esc(r.reason)}"
                                               if r.gates == "fail" and r.reason else "")]
    if r.gates == "fail" and not r.reason:
        out.append("Add `reason:` to the entry to promote it anyway (recorded with the promotion).")
    if r.metrics:
        out += ["", "| metric | value |", "|---|---|"] + [f"| {esc(k)} | {esc(v)} |" for k, v in r.metrics.items()]
    lineage = [f"{esc(k)} {code(v[:12] if k in ('source-commit', 'run-id') else v)}"
               for k, v in r.lineage.items() if k in ("source-commit", "source-pr", "run-id")]
    if lineage:
        out += ["", "Lineage: " + " · ".join(lineage)]
    if r.plan is not None:
        if r.plan.on_hold:
            out += ["", f"> ⚠️ {code(r.plan.on_hold)} holds {esc(r.model)} in {esc(r.env)}: the merge will not "
                        f"apply this until the hold is released."]
        out += [""] + _promotion(r.plan, "Deployment plan")
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
    for r in record.promotion_requests:
        lines += [""] + promotion_request(r)
    footer = f"<sub>mlops-ci {esc(record.tool_version)} · record schema v{record.schema_version}"
    if ctx.run_url:
        footer += f" · {link('workflow run', ctx.run_url)}"
    lines += ["", footer + "</sub>", ""]
    return "\n".join(lines)


def fit_report(markdown: str, limit: int, pointer: str) -> str:
    """``markdown`` cut to at most ``limit`` characters, with ``pointer`` saying where the rest is.

    ``<details>`` sections go first, the largest first; if that is not enough the text is cut at
    a line break (closing an open code fence). Unchanged when it already fits."""
    if len(markdown) <= limit:
        return markdown
    note = f"\n\n> ✂️ This report was trimmed to fit: {pointer}\n"
    budget = limit - len(note)
    if budget <= 0:
        return note.strip()[:limit]
    text = markdown
    while len(text) > budget:
        sections = list(_DETAILS.finditer(text))
        if not sections:
            break
        largest = max(sections, key=lambda m: m.end() - m.start())
        text = text[:largest.start()] + "\n\n" + text[largest.end():]
    if len(text) > budget:
        cut = text[:budget - 4]  # room to close a code fence
        if "\n" in cut:
            cut = cut[:cut.rindex("\n")]
        if len(_FENCE.findall(cut)) % 2:
            cut += "\n```"
        text = cut
    return text.rstrip("\n") + note


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
    for r in record.promotion_requests:
        if r.status == "fail":
            why = r.error or (f"v{r.version} did not pass its gates ({r.gate_summary}); add `reason:` to "
                              f"{r.source} to promote it anyway")
            lines.append(f"mlops-ci: promotion request {r.model} v{r.version} -> {r.env}: {why}")
    return lines
