"""The report: Markdown rendered only from a RunRecord, one path for every output.

Every value from the record is masked, then escaped (mlops_ci.render.markdown), so it cannot leak
a secret or inject Markdown, HTML, mentions or links into the comment; links point only where
:class:`Links` allows. The result is a :class:`Report` that keeps its sections, so that fitting
it into GitHub's limits drops whole sections (mlops_ci.render.document).
"""

from __future__ import annotations

from collections.abc import Callable

from mlops_ci.records import EvaluationRecord, ModelRecord, PromotionRecord, PromotionRequest, RunRecord
from mlops_ci.render.charts import training_curve
from mlops_ci.render.checks import checks_section as _checks
from mlops_ci.render.document import Report, details, fit
from mlops_ci.render.features import features_section
from mlops_ci.render.markdown import ICON, Links, code, esc, fenced, link, num
from mlops_ci.render.model import evaluation_section, run_notes, training_section
from mlops_ci.render.serving import serving_section

__all__ = ["ICON", "MARKER", "Links", "Report", "code", "esc", "failure_lines", "fit_report", "gate_failure_line",
           "link", "num", "promotion_request", "render_model", "render_report", "training_curve"]

MARKER = "<!-- mlops-ci:report -->"
fit_report = fit


def _promotion(p: PromotionRecord, title: str, links: Links) -> list:
    changed = [c for c in p.changes if c.action != "unchanged"]
    head = f"#### {title}: {esc(p.model)} v{esc(p.version)} → {code(p.env)}"
    held = ([f"> ⚠️ {code(p.on_hold)} holds {esc(p.model)} in {esc(p.env)}: a promotion is refused until the hold is "
             "released (`mlops-ci rollback --clear-hold`)."] if p.on_hold and not p.forced_reason else [])
    held += [f"> ⚠️ {esc(line)}" for line in p.held_by]
    if p.noop or not changed:
        return [head, f"No change: {esc(p.env)} already serves v{esc(p.version)}.", *held]
    moves = (f"Rolls out: {esc(p.rollout)} (`mlops-ci rollout advance` takes the next steps as the analysis allows); "
             f"alias {code(p.alias)} moves to v{esc(p.version)} when it completes; " if p.rollout else
             f"Alias {code(p.alias)} moves to v{esc(p.version)}; ")
    out = [head, moves +
           f"{len(changed)} file{'s' if len(changed) != 1 else ''} in {code(p.remote.split('/')[-1])} ({code(p.branch)}):" +
           (f" commit {code((p.commit_sha or '')[:12])}" if p.commit_sha and not p.dry_run else "")]
    out += [""] + held if held else []
    if p.pull_request:
        out.append(f"Proposed in {link('a pull request', p.pull_request, links)} from {code(p.branch)}; the alias moves "
                   "once it is merged.")
    if p.forced_reason:
        out.append(f"\n> ⚠️ forced: {esc(p.forced_reason)}")
    diff = [line for c in changed for line in fenced(c.diff.splitlines())]
    return out + ["", details("Manifest diff", ["```diff", *diff, "```"])]


def promotion_request(r: PromotionRequest, links: Links = Links()) -> list:
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
        out += [""] + _promotion(r.plan, "Deployment plan", links)
    return out


# one renderer per stage, called with the model's record for each stage that has a result; a stage
# without one (register: its version is shown with the training) adds no section
SECTIONS: dict[str, Callable[[ModelRecord, Links], list]] = {
    "check": lambda m, links: _checks(m.checks),
    "train": training_section,
    "evaluate": lambda m, links: evaluation_section(m),
    "serve": lambda m, links: serving_section(m.serving),
    "deployment": lambda m, links: _promotion(m.deployment_plan, "Deployment plan", links),
}


def render_model(m: ModelRecord, links: Links = Links()) -> list:
    out = [f"### {ICON[m.verdict]} {esc(m.model)}: {m.verdict}"]
    if m.plan.skip_reason:
        out.append(f"Skipped: {esc(m.plan.skip_reason)}")
    elif m.plan.reasons:
        out.append("Why it ran: " + "; ".join(esc(r) for r in m.plan.reasons))
    for stage, _ in m.ordered_results():
        section = SECTIONS[stage](m, links) if stage in SECTIONS else []
        if section:
            out += [""] + section
    for p in m.promotions:
        out += [""] + _promotion(p, "Promoted" if not p.noop else "Promotion", links)
    return out


def render_report(record: RunRecord, links: Links = Links()) -> Report:
    """The report of ``record``; ``links``: where it may link (the footer links ``links.run_url``,
    the run that renders it, never the record's)."""
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
    lines += run_notes(record)
    if record.features is not None:
        lines += [""] + features_section(record.features)
    if not record.models and record.failure is None:
        lines += ["", "No models were planned for this change."]
    for m in record.models.values():
        lines += [""] + render_model(m, links)
    for r in record.promotion_requests:
        lines += [""] + promotion_request(r, links)
    footer = f"<sub>mlops-ci {esc(record.tool_version)} · record schema v{record.schema_version}"
    if links.run_url:
        footer += f" · {link('workflow run', links.run_url, links)}"
    lines += ["", footer + "</sub>", ""]
    return Report(lines)


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
        elif entry.serving is not None and entry.serving.status == "fail":
            reused = entry.training.reused if entry.training is not None else None
            after = (f"v{reused.version} (registered earlier) is now marked as failing it" if reused and reused.version
                     else "nothing was registered")
            lines.append(f"mlops-ci: {model}: serving check failed: {entry.serving.summary()}; {after}")
        elif entry.training is not None and entry.training.status == "failed":
            lines.append(f"mlops-ci: {model}: training failed: {entry.training.error}")
        elif entry.checks is not None and entry.checks.status == "fail":
            failed = [f"{f.dataset}: {f.message}" for f in entry.checks.findings if f.status == "fail"]
            lines.append(f"mlops-ci: {model}: data checks failed: {'; '.join(failed)}")
    if record.features is not None:
        lines += [f"mlops-ci: features: {f.message}" for f in record.features.findings if f.status == "fail"]
        lines += [f"mlops-ci: features: skew in {s.where}: {s.mismatch_count} mismatch(es) for {s.service}"
                  for s in record.features.skew if s.mismatch_count]
    for r in record.promotion_requests:
        if r.status == "fail":
            why = r.error or (f"v{r.version} did not pass its gates ({r.gate_summary}); add `reason:` to "
                              f"{r.source} to promote it anyway")
            lines.append(f"mlops-ci: promotion request {r.model} v{r.version} -> {r.env}: {why}")
    return lines
