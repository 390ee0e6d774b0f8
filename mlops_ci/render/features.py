"""The report's feature section, from the features stage's record: the changed views, the models they
touch, breaking changes, `feast plan` per environment, the data materialised from the store and the
skew check. Everything in it came from the pull request's feature repository: masked and escaped,
diffs in fenced blocks."""

from __future__ import annotations

from mlops_ci.features.plan_text import summary
from mlops_ci.records.features import FeaturesRecord
from mlops_ci.render.document import details
from mlops_ci.render.markdown import ICON, cell, code, esc, fenced


def features_section(f: FeaturesRecord) -> list:
    status = f.status
    out = [f"### {ICON[status]} Features: {code(f.repo)}"
           + (f" at {code(f.commit[:12])}" if f.commit else "")]
    if f.base is None:
        out.append("No base revision to compare with: the definitions were read at the head only.")
    elif not f.changed:
        out.append(f"The feature repository did not change since {code(f.base[:12])}.")
    for finding in f.findings:
        out.append(f"- {ICON[finding.status]} {esc(finding.message)}")
    if f.changes:
        out += ["", "| object | change | details |", "|---|---|---|"]
        for c in f.changes:
            text = "; ".join(c.details[:8]) + (f" (+{len(c.details) - 8} more)" if len(c.details) > 8 else "")
            mark = " ⚠️ breaking" if c.breaking else ""
            out.append(f"| {cell(esc(c.kind))} {cell(code(c.name))} | {esc(c.change)}{mark} | {cell(esc(text))} |")
    if f.affected:
        out += ["", "Models this change retrains:"]
        out += [f"- {code(a.model)} (reads {code(a.service)}): {esc('; '.join(a.reasons))}" for a in f.affected]
    for p in f.plans:
        counts = esc(summary(p.counts)) if p.counts else ""
        title = f"feast plan against {esc(p.env)}'s registry ({esc(p.registry)})" + (f": {counts}" if counts else "")
        if p.error:
            out += ["", f"❌ {title}: {esc(p.error)}"]
            continue
        body = ["```diff", *fenced((p.registry_diff.rstrip() or "No changes to the registry").splitlines()), "```"]
        if p.infra_diff.strip():
            body += ["", "Infrastructure:", "```", *fenced(p.infra_diff.rstrip().splitlines()), "```"]
        out += ["", details(title, body)]
    if f.data:
        out += ["", "| model | data | from | head rows | base rows | |", "|---|---|---|---|---|---|"]
        for d in f.data:
            same = "unchanged" if d.base_id == d.head_id else "changed" if d.base_id else "new"
            cached = f" (read from the cache: {' and '.join(d.cached)})" if d.cached else ""
            out.append(f"| {code(d.model)} | {esc(d.role)} {cell(code(d.path))} | {cell(code(d.service))} | "
                       f"{d.head_rows if d.head_rows is not None else '—'} | "
                       f"{d.base_rows if d.base_rows is not None else '—'} | {same}{cached} |")
    for s in f.skew:
        line = (f"{ICON[s.status]} Skew, {esc(s.where)}: {s.mismatch_count} mismatch"
                f"{'es' if s.mismatch_count != 1 else ''} in {s.checked} entities × {s.features} features of "
                f"{code(s.service)}")
        out += ["", line]
        if s.mismatches:
            shown = min(len(s.mismatches), 20)
            rows = [f"The first {shown} of {s.mismatch_count}:" if shown < s.mismatch_count else "",
                    "| entity | feature | online | offline |", "|---|---|---|---|"]
            rows += [f"| {cell(code(m.entity))} | {cell(code(m.feature))} | {cell(code(m.online))} | "
                     f"{cell(code(m.offline))} |" for m in s.mismatches[:20]]
            out += ["", details("Mismatches", rows)]
    return out


__all__ = ["features_section"]
