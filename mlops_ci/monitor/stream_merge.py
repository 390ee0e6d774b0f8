"""Stream profiles merged (shards of a fanned-out run) and graded window by window.

:func:`merge` adds the parts' counts and merges their per-window profiles (the profiler's
:func:`~mlops_ci.checks.profile.merge`), pairs the ids one part left waiting with the other half
another part holds, and re-estimates the histograms that no reference edges fixed.
:func:`analyse` is :func:`mlops_ci.monitor.windows.analyse` over those profiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime
from typing import TYPE_CHECKING

from mlops_ci.checks.profile import TableProfile
from mlops_ci.checks.profile import merge as merge_profiles
from mlops_ci.monitor.windows import grade, range_finding, reference_profiles

if TYPE_CHECKING:
    from mlops_ci.config.monitoring import MonitoringConfig
    from mlops_ci.monitor.stream import WindowProfiles
    from mlops_ci.records.monitor import WindowResult


def _both(a: TableProfile | None, b: TableProfile | None, options) -> TableProfile | None:
    if a is None or b is None:
        return a or b
    if list(a.columns) != list(b.columns) and set(a.columns) == set(b.columns):  # another first request's order
        b = replace(b, columns={k: b.columns[k] for k in a.columns})
    out = merge_profiles(a, b, sample_size=options.sample_size, max_categories=options.max_categories)
    out.source = ""
    return out


def shard_objects(paths: Sequence[str], k: int) -> list[list[str]]:
    """``paths`` (sorted) in ``k`` contiguous shards of about equal size; a batch's request and
    response objects (``<id>-request.*``, ``<id>-response.*``) stay in one shard."""
    from mlops_ci.monitor.logs import OBJECT_NAME

    groups: dict[str, list[str]] = {}
    for path in sorted(paths):
        folder, _, name = path.rpartition("/")
        match = OBJECT_NAME.match(name)
        groups.setdefault(f"{folder}/{match['id'] if match else name}", []).append(path)
    batches, shards = list(groups.values()), [[] for _ in range(max(1, k))]
    for i, batch in enumerate(batches):
        shards[i * len(shards) // len(batches)].extend(batch)
    return shards


def merge(parts: Sequence[WindowProfiles]) -> WindowProfiles:
    """One :class:`WindowProfiles` of all the parts' objects (as if one run had read them all)."""
    import numpy as np
    import pyarrow as pa

    from mlops_ci.checks.profiler import ProfileOptions, Profiler, estimate_histograms
    from mlops_ci.monitor.stream import Counts, WindowProfiles, reference_of, settle

    if not parts:
        raise ValueError("nothing to merge")
    first = parts[0]
    for part in parts[1:]:
        if part.windows != first.windows or part.options != first.options:
            raise ValueError("the parts were profiled over other windows or with other options")
    options, n = ProfileOptions(**first.options), len(first.windows)
    out = WindowProfiles(windows=list(first.windows), options=first.options, prediction_edges=first.prediction_edges,
                         estimated=sorted({c for p in parts for c in p.estimated}), features=[None] * n,
                         predictions=[None] * n, rows=[0] * n, requests=[0] * n, outside=[{} for _ in range(n)])
    for part in parts:
        for w in range(n):
            out.features[w] = _both(out.features[w], part.features[w], options)
            out.predictions[w] = _both(out.predictions[w], part.predictions[w], options)
            out.rows[w] += part.rows[w]
            out.requests[w] += part.requests[w]
            for name, count in part.outside[w].items():
                out.outside[w][name] = out.outside[w].get(name, 0) + count
        out.counts = Counts(**{f.name: getattr(out.counts, f.name) + getattr(part.counts, f.name)
                               for f in fields(Counts)})
        out.corrupt = (out.corrupt + part.corrupt)[:50]
        out.problems = (out.problems + part.problems)[:5]
    late = [([], []) for _ in range(n)]
    for part in parts:  # what one part left waiting, answered in another
        for ident, request in part.pending.items():
            if ident in out.waiting:
                settle(out, request, *out.waiting.pop(ident), ident, late)
            else:
                out.pending[ident] = request
        for ident, answer in part.waiting.items():
            if ident in out.pending:
                settle(out, out.pending.pop(ident), *answer, ident, late)
            else:
                out.waiting[ident] = answer
    for w, (values, keys) in enumerate(late):
        if values:
            profiler = Profiler(options=options, reference=reference_of(out.prediction_edges))
            profiler.add(pa.record_batch({"prediction": np.asarray(values, dtype=float)}),
                         keys=np.asarray(keys, dtype=float))
            out.predictions[w] = _both(out.predictions[w], profiler.finish(), options)
    for profile in out.features:  # sample-estimated histograms of the parts do not add up
        if profile is not None and len(parts) > 1:
            for name in out.estimated:
                if name in profile.columns:
                    profile.columns[name].edges = profile.columns[name].hist = None
            estimate_histograms(profile, options.bins)
    return out


def range_findings(train: TableProfile, head: TableProfile, outside: dict[str, int], settings: MonitoringConfig):
    """:func:`mlops_ci.monitor.windows.out_of_range` from counted values instead of the rows."""
    
    th = settings.out_of_range
    findings = []
    for name, col in train.columns.items():
        if col.kind != "numeric" or name not in outside or not isinstance(col.minimum, (int, float)):
            continue
        h = head.columns[name]
        values, out = h.valid - h.nonfinite, outside[name]
        if not values:
            continue
        found = range_finding(name, col, out, values, th)
        if found is not None:
            findings.append(found)
    return findings


def analyse(reference: dict, profiles: WindowProfiles, settings: MonitoringConfig, *,
            min_rows: int | None = None) -> list[WindowResult]:
    """Each window against the reference, as :func:`mlops_ci.monitor.windows.analyse` grades it."""
    from mlops_ci.records.monitor import INSUFFICIENT, WindowResult

    policy = settings.as_checks(reference.get("label") or "")
    train, predicted = reference_profiles(reference)
    floor = settings.min_rows if min_rows is None else min_rows
    ignored = set(policy.ignore_columns)
    results = []
    for w, (start, end) in enumerate(profiles.windows):
        start, end = (datetime.fromisoformat(t).isoformat(timespec="seconds") for t in (start, end))
        rows, requests, head = profiles.rows[w], profiles.requests[w], profiles.features[w]
        if rows < floor or head is None:
            results.append(WindowResult(start=start, end=end, rows=rows, requests=requests, status=INSUFFICIENT))
            continue
        head = replace(head, columns={k: c for k, c in head.columns.items() if k not in ignored},
                       sample={k: v for k, v in head.sample.items() if k not in ignored})
        results.append(grade(start, end, rows, requests, train=train, predicted=predicted, head=head,
                             scores=profiles.predictions[w], range_found=range_findings(train, head,
                                                                                       profiles.outside[w], settings),
                             policy=policy))
    return results


def traffic_counts(profiles: WindowProfiles) -> dict[str, int]:
    """The counts mlops_ci.records.monitor.TrafficCounts holds."""
    c = profiles.counts
    return {"objects": c.objects, "corrupt": c.corrupt, "requests": c.requests, "unanswered": profiles.unanswered,
            "orphans": profiles.orphans, "undecodable": c.undecodable}


__all__ = ["analyse", "merge", "range_findings", "shard_objects", "traffic_counts"]
