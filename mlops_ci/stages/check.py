"""Check stage: schema diff, null rates and drift of the head's data against the base's."""

from __future__ import annotations

import time

from mlops_ci.checks import drift
from mlops_ci.checks.profile import ColumnProfile, TableProfile, profile_table
from mlops_ci.config.schema import ChecksConfig, Threshold
from mlops_ci.console import NullProgress, Progress
from mlops_ci.data.fetch import revision_file, worktree_file
from mlops_ci.data.tables import detect_format, label_missing, read_table
from mlops_ci.data.versions import TrackedFile
from mlops_ci.errors import DataError
from mlops_ci.records import ChecksRecord, ColumnSummary, Context, DatasetCheck, Finding, ModelPlan, worst
from mlops_ci.workspace import Workspace

_WIDENING = {("int8", "int16"), ("int16", "int32"), ("int32", "int64"), ("int64", "double"),
             ("int32", "double"), ("float", "double"), ("int64", "float"), ("null", "*")}


def _grade(value: float, th: Threshold) -> str:
    if th.fail is not None and value >= th.fail:
        return "fail"
    if th.warn is not None and value >= th.warn:
        return "warn"
    return "pass"


def _retyped(base: ColumnProfile, head: ColumnProfile) -> bool:
    if base.arrow_type == head.arrow_type or "null" in (base.arrow_type, head.arrow_type):
        return False
    if (base.arrow_type, head.arrow_type) in _WIDENING or (head.arrow_type, base.arrow_type) in _WIDENING:
        return False
    return True


def compare_profiles(
    role: str, base: TableProfile, head: TableProfile, checks: ChecksConfig, *, label: str
) -> tuple[list[ColumnSummary], list[Finding]]:
    """Column summaries and findings for one dataset (pure: profiles in, records out)."""
    columns: list[ColumnSummary] = []
    findings: list[Finding] = []
    ignored = set(checks.ignore_columns)
    schema = checks.schema_

    def add(status: str, check: str, message: str, column: str | None = None, **kw) -> str:
        if status != "ignore":
            findings.append(Finding(check=check, dataset=role, column=column, status=status,
                                    message=message, **kw))
        return status

    for name in base.columns:
        if name not in head.columns and name not in ignored:
            add(schema.removed, "schema", f"column {name!r} was removed", name)
    for name in head.columns:
        if name not in base.columns and name not in ignored:
            add(schema.added, "schema", f"column {name!r} was added ({head.columns[name].arrow_type})", name)

    for name, h in head.columns.items():
        b = base.columns.get(name)
        if b is None or name in ignored:
            continue
        summary = ColumnSummary(column=name, kind=h.kind, base_type=b.arrow_type, head_type=h.arrow_type,
                                base_null_rate=b.null_rate, head_null_rate=h.null_rate)
        statuses = ["pass"]
        what = "label" if name == label else "column"
        if _retyped(b, h):
            statuses.append(add(schema.retyped, "schema",
                                f"{what} {name!r} changed type {b.arrow_type} -> {h.arrow_type}", name))
        increase = h.null_rate - b.null_rate
        null_status = _grade(increase, checks.nulls.max_increase) if increase > 0 else "pass"
        if null_status != "pass":
            statuses.append(add(null_status, "nulls",
                                f"{what} {name!r} null rate rose from {b.null_rate:.1%} to {h.null_rate:.1%}",
                                name, metric="null_rate_increase", value=increase,
                                threshold=checks.nulls.max_increase.fail if null_status == "fail"
                                else checks.nulls.max_increase.warn))
        if b.kind == h.kind and h.kind in ("numeric", "categorical", "boolean"):
            bc, hc, _ = drift.aligned_counts(b, h)
            summary.psi = drift.psi(bc, hc)
            summary.js = drift.js_distance(bc, hc)
            graded = [(metric, value, th, _grade(value, th)) for metric, value, th in
                      (("psi", summary.psi, checks.drift.psi), ("js", summary.js, checks.drift.js))]
            flagged = [g for g in graded if g[3] != "pass"]
            if flagged:
                metric, value, th, status = max(flagged, key=lambda g: (g[3] == "fail", g[0] == "psi"))
                limit = th.fail if status == "fail" else th.warn
                scores = ", ".join(f"{m.upper()} {v:.3f} ≥ {t.fail if st == 'fail' else t.warn}"
                                   for m, v, t, st in flagged)
                statuses.append(add(status, "drift", f"{what} {name!r} drifted: {scores}", name,
                                    metric=metric, value=value, threshold=limit))
            new = drift.new_categories(b, h)
            if new:
                shown = ", ".join(repr(c) for c in new[:5])
                statuses.append(add("warn", "drift", f"{what} {name!r} has new categories: {shown}", name,
                                    metric="new_categories", value=float(len(new))))
        summary.status = worst(s for s in statuses if s != "ignore")
        columns.append(summary)
    return columns, findings


def run_checks(
    ws: Workspace, ctx: Context, plan: ModelPlan, *, progress: Progress | None = None
) -> ChecksRecord:
    progress = progress or NullProgress()
    cfg = ws.model(plan.model)
    if not cfg.checks.enabled:
        return ChecksRecord(status="skipped", skip_reason="checks are disabled in .mlops-ci.yaml")
    if "check" not in plan.stages:
        reason = plan.skip_reason or (
            "no base revision to compare with" if not ctx.base_sha
            else "data unchanged: " + ", ".join(f"{dv.path} {str(dv.head_md5)[:16]}" for dv in plan.data))
        return ChecksRecord(status="skipped", skip_reason=reason, base_sha=ctx.base_sha, head_sha=ctx.head_sha)
    start = time.monotonic()
    datasets, findings = [], []
    opts = cfg.checks.drift
    for dv in plan.data:
        head_t = TrackedFile.from_hash(dv.path, dv.head_md5)
        if head_t is None:
            raise DataError(f"{dv.path}: {dv.role} data file is not tracked at {ctx.head_sha[:12]}",
                            hint=f"add it with `dvc add {dv.path}` and commit the .dvc file")
        ds = DatasetCheck(role=dv.role, path=dv.path, base_md5=dv.base_md5, head_md5=dv.head_md5)
        if not dv.changed:
            datasets.append(ds)
            continue
        fmt = detect_format(dv.path, cfg.data.format)
        with progress.step(f"profiling {dv.role} data {dv.path}"):
            head_table = read_table(worktree_file(ws.top, head_t), name=dv.path, fmt=fmt)
            if cfg.data.label not in head_table.column_names:
                raise label_missing(dv.path, cfg.data.label, head_table.column_names)
            ds.head_rows = head_table.num_rows
            base_t = TrackedFile.from_hash(dv.path, dv.base_md5)
            if base_t is None:
                findings.append(Finding(check="data", dataset=dv.role, status="warn",
                                        message=f"{dv.path} is new: no base version to compare with"))
                datasets.append(ds)
                continue
            base_file = revision_file(ws.top, ctx.base_sha, base_t, ws.cache_dir / "data")
            base_table = read_table(base_file, name=f"{dv.path}@{ctx.base_sha[:12]}", fmt=fmt)
            ds.base_rows = base_table.num_rows
            base_prof = profile_table(base_table, bins=opts.bins, top_k=opts.top_categories)
            head_prof = profile_table(head_table, bins=opts.bins, top_k=opts.top_categories, reference=base_prof)
        ds.columns, found = compare_profiles(dv.role, base_prof, head_prof, cfg.checks, label=cfg.data.label)
        findings += found
        datasets.append(ds)
    status = worst(["pass", *(f.status for f in findings)])
    return ChecksRecord(status=status, base_sha=ctx.base_sha, head_sha=ctx.head_sha, datasets=datasets,
                        findings=findings, duration_s=round(time.monotonic() - start, 3))
