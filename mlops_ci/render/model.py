"""The training and evaluation sections of a model in the report, and what the run as a whole says
(why nothing will be deployed, a registry the run could not reach)."""

from __future__ import annotations

import math

from mlops_ci.records import EvaluationRecord, ModelRecord, RunRecord
from mlops_ci.render.charts import training_curve
from mlops_ci.render.checks import suite_lines
from mlops_ci.render.markdown import ICON, Links, code, esc, link, num

GPU_HOURS_KEYS = ("system/gpu_hours", "gpu_hours")  # metrics a trainer may log
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


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


def _gate_marks(e: EvaluationRecord) -> dict[str, str]:
    """The worst gate status per metric."""
    order = {"skipped": 0, "pass": 1, "fail": 2}
    marks: dict[str, str] = {}
    for g in e.gates:
        prev = marks.get(g.metric, "skipped")
        marks[g.metric] = g.status if order[g.status] >= order[prev] else prev
    return marks


def _eval_changed(m: ModelRecord) -> list[str]:
    """Why the champion's numbers differ from its registration: the eval set changed in this change
    (nothing to say when the numbers are recorded ones: nothing was scored here)."""
    dv = next((d for d in m.plan.data if d.role == "eval"), None)
    if dv is None or dv.base_md5 is None or not dv.changed or (m.evaluation and m.evaluation.recorded):
        return []
    return ["", f"ℹ️ The eval set changed in this change ({code(dv.path)}: {code((dv.base_md5 or '')[:16])} → "
                f"{code((dv.head_md5 or 'none')[:16])}): the champion is scored on the new set too, which is why its "
                "numbers differ from those recorded when it was registered."]


def _table(e: EvaluationRecord, *, single: bool) -> list[str]:
    marks = _gate_marks(e)
    if single:
        out = ["| metric | value | gate |", "|---|---|---|"]
        for m in e.metrics:
            gate = marks.get(m.name)
            out.append(f"| {esc(m.name)} {'↑' if m.higher_is_better else '↓'} | {num(m.candidate)} | "
                       f"{ICON.get(gate, '') if gate else ''} |")
        return out
    out = ["| metric | candidate | champion | Δ | gate |", "|---|---|---|---|---|"]
    for m in e.metrics:
        gate = marks.get(m.name)
        out.append(f"| {esc(m.name)} {'↑' if m.higher_is_better else '↓'} | {num(m.candidate)} | {num(m.champion)} | "
                   f"{_delta(m)} | {ICON.get(gate, '') if gate else ''} |")
    return out


def evaluation_section(m: ModelRecord) -> list[str]:
    e = m.evaluation
    if e is None:
        return []
    reused = e.reused
    if e.champion is not None:
        champ = f"champion v{esc(e.champion.version)} (alias {code(e.champion.alias)})"
        if e.champion_state == "unusable":
            champ += " could not be evaluated"
    else:
        champ = f"no champion yet (policy: {e.no_champion_policy})"
    if reused is not None and reused.champion and e.recorded:
        out = [f"#### Evaluation {ICON[e.status]} {e.status} (the champion's metrics)",
               f"On {code(e.dataset)}: the metrics recorded for champion v{esc(reused.version)} (alias "
               f"{code(reused.alias or '')}), reused because the candidate was not retrained; the gates are applied "
               "to them.", ""] + _table(e, single=True)
    elif reused is not None and e.recorded:
        against = (f"against {champ}, which is still the champion" if e.champion is not None
                   else "when there was no champion, as there is none now")
        out = [f"#### Evaluation {ICON[e.status]} {e.status} (recorded)",
               f"On {code(e.dataset)}: the metrics recorded for {esc(reused.label)} when it was evaluated "
               f"{against.removeprefix('when ')}; today's gates are applied to them.", ""] + _table(e, single=False)
    else:
        what = f"candidate ({esc(reused.label)}, reused)" if reused is not None else "candidate"
        out = [f"#### Evaluation {ICON[e.status]} {e.status}",
               f"On {code(e.dataset)} ({e.rows:,} rows), {what} vs {champ}.", ""] + _table(e, single=False)
    out += _reproduction(e)
    out += [""] + [f"⚠️ {esc(n)}" for n in e.notes] if e.notes else []
    out.append("")
    out += [f"- {ICON[g.status]} {esc(g.message)}" for g in e.gates]
    out += suite_lines(e.suites)
    out += _eval_changed(m)
    return out


def _reproduction(e: EvaluationRecord) -> list[str]:
    """This run's metrics next to what a pull request without registry access reported for the same
    inputs (its own word, shown before the gates decide on this run's numbers)."""
    if not e.claims:
        return []
    c = e.claims[0]
    out = ["", f"Reproduction: PR #{c.pr} (at {code(c.head_sha[:12])}) was evaluated without the registry; this "
               "trusted run trained the same inputs again. What the pull request's own run reported is its word; "
               "the gates below judge this run's numbers.", "",
           f"| metric | this run | PR #{c.pr} reported | Δ |", "|---|---|---|---|"]
    for m in e.metrics:
        claimed = c.metrics.get(m.name)
        delta = (f"{m.candidate - claimed:+.4f}" if claimed is not None and m.candidate is not None
                 and math.isfinite(claimed) and math.isfinite(m.candidate) else "—")
        out.append(f"| {esc(m.name)} | {num(m.candidate)} | {num(claimed)} | {delta} |")
    return out


def _reused_training(m: ModelRecord) -> list[str]:
    t = m.training
    r = t.reused
    note = t.fingerprint.note if t.fingerprint and t.fingerprint.note else "its inputs are unchanged"
    where = []
    if r.source_pr:
        where.append(f"by the run of PR #{r.source_pr}")
    if r.source_commit:
        where.append(f"at {code(r.source_commit[:12])}")
    if r.champion:
        first = (f"Not retrained: code, data, params, settings and image are unchanged since the champion "
                 f"(v{esc(r.version)}, run {code(r.run_id)}); metrics are the champion's.")
    else:
        first = (f"Not retrained: {esc(note)}. The model trained " + (" ".join(where) + " " if where else "")
                 + f"(run {code(r.run_id)}) is reused.")
    out = ["#### Training ♻️ not retrained", first]
    out += training_curve(t.history)
    if m.registration is not None:
        reg = m.registration
        out += ["", f"Reuses **{esc(reg.name)} v{esc(reg.version)}** · digest {code(reg.digest[:19])} "
                    "(nothing new registered)" if reg.reused else
                f"Registered as **{esc(reg.name)} v{esc(reg.version)}** (the reused run's model) · digest "
                f"{code(reg.digest[:19])}"]
    return out


def training_section(m: ModelRecord, links: Links = Links()) -> list:
    t = m.training
    if t is None:
        return []
    if t.reused is not None:
        return _reused_training(m)
    if t.status == "skipped":
        return ["#### Training ⏭️ skipped", esc(t.skip_reason or "")]
    icon = ICON["pass"] if t.status == "succeeded" else ICON["fail"]
    run = link(t.run_id or "run", t.run_url, links) if links.allows(t.run_url) else code(t.run_id)
    n = t.nproc_per_node or 1
    facts = [f"MLflow run {run}", f"{esc(t.backend)} × {n} process{'es' if n != 1 else ''}", f"{t.duration_s:.0f}s"]
    if t.workflow or t.workflow_url:
        facts.insert(1, "Argo workflow " + (link(t.workflow or "workflow", t.workflow_url, links)
                                             if links.allows(t.workflow_url) else code(t.workflow)))
    gpu_hours = next((t.metrics[k] for k in GPU_HOURS_KEYS if k in t.metrics), None)
    if gpu_hours is not None and math.isfinite(gpu_hours):
        facts.append(f"{gpu_hours:.2f} GPU-hours")
    out = [f"#### Training {icon} {t.status}", " · ".join(facts)]
    if t.fingerprint is not None and t.fingerprint.note:
        out += ["", f"Why it was trained: {esc(t.fingerprint.note)}."]
    if t.error:
        out += ["", f"> {esc(t.error)}"]
    shown = {k: v for k, v in t.metrics.items() if not k.startswith("system/")}
    if shown:
        out += ["", "Final training metrics: " + ", ".join(f"{esc(k)} {num(v)}" for k, v in sorted(shown.items()))]
    out += training_curve(t.history)
    if m.registration is not None:
        r = m.registration
        out += ["", f"Registered as **{esc(r.name)} v{esc(r.version)}** · digest {code(r.digest[:19])}"]
    return out


def _why_failed(record: RunRecord) -> list[str]:
    if record.failure is not None:
        f = record.failure
        where = f"{esc(f.stage)}" + (f" of {esc(f.model)}" if f.model else "")
        return [f"the run stopped at {where}: {esc(f.message.replace('`', chr(39)))}"]
    out = []
    for name, m in record.models.items():
        if m.verdict != "fail":
            continue
        if m.evaluation is not None and m.evaluation.status == "fail":
            out.append(f"{esc(name)} did not pass its gates")
        elif m.serving is not None and m.serving.status == "fail":
            out.append(f"{esc(name)} failed its serving check")
        elif m.training is not None and m.training.status == "failed":
            out.append(f"training {esc(name)} failed")
        elif m.checks is not None and m.checks.status == "fail":
            out.append(f"the data checks of {esc(name)} failed")
    out += [f"promotion request {esc(r.model)} v{esc(r.version)} → {esc(r.env)} failed"
            for r in record.promotion_requests if r.status == "fail"]
    return out


def run_notes(record: RunRecord) -> list[str]:
    """Lines under the verdict: why nothing will be deployed; a registry this run could not reach."""
    out = []
    if record.verdict == "fail":
        out += ["", "❌ **Nothing will be deployed**: " + "; ".join(_why_failed(record) or ["the verdict is fail"])
                + "."]
    ctx = record.context
    if record.registry == "embedded" and ctx.source == "github" and ctx.event in PULL_REQUEST_EVENTS:
        why = ("a pull request from a fork gets no secrets" if ctx.fork else
               "the job was given no MLFLOW_TRACKING_URI: pass the registry secrets to pr-checks.yml")
        out += ["", f"⚠️ Evaluated without the champion: this run had no access to the shared model registry ({why}), "
                    "so nothing was compared with what is served, and nothing was registered or planned for deployment "
                    "(that registry would not outlive the job). Merging trains the model once in the trusted merge "
                    "job, which reports the reproduction next to these numbers."]
    return out
