"""Check stage: schema diff, null rates and drift of the head's data against the base's."""

from __future__ import annotations

import time

from pathlib import Path

from mlops_ci.checks.cache import ProfileCache, cache_key
from mlops_ci.checks.compare import compare_profiles
from mlops_ci.checks.profile import TableProfile
from mlops_ci.checks.profiler import ProfileOptions
from mlops_ci.checks.scan import ScanLimits, profile_file
from mlops_ci.config.schema import ModelConfig
from mlops_ci.console import NullProgress, Progress
from mlops_ci.data.fetch import revision_file, worktree_file
from mlops_ci.data.tables import detect_format, label_missing
from mlops_ci.data.versions import TrackedFile
from mlops_ci.errors import DataError
from mlops_ci.features.data import cached_file, is_feature_id
from mlops_ci.records import ChecksRecord, Context, DatasetCheck, Finding, ModelPlan, worst
from mlops_ci.stages.suites import findings_of, run_data_suites
from mlops_ci.workspace import Workspace


def profile_options(cfg: ModelConfig) -> ProfileOptions:
    checks = cfg.checks
    return ProfileOptions(bins=checks.drift.bins, max_categories=checks.max_categories,
                          sample_size=checks.sample_size)


def _seed(content_id: str) -> int:
    digest = content_id.split(":", 1)[-1][:8]
    return int(digest, 16) if len(digest) == 8 and all(c in "0123456789abcdef" for c in digest) else 0


def cached_profile(cache: ProfileCache, local_file, *, md5: str, name: str, fmt: str, options: ProfileOptions,
                   limits: ScanLimits, reference: TableProfile | None = None) -> tuple[TableProfile, bool]:
    """The file's profile from the cache, or profiled now (and cached); True when it was cached.

    ``md5`` is the file's content id: "md5:<hex>" for DVC, "git:<blob>" for a file in git.
    """
    key = cache_key(md5, options, reference)
    hit = cache.get(key)
    if hit is not None:
        return hit, True
    path: Path = local_file() if callable(local_file) else local_file
    profile = profile_file(path, name=name, fmt=fmt, options=options, reference=reference, limits=limits,
                           seed=_seed(md5))
    cache.put(key, profile)
    return profile, False

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
    options = profile_options(cfg)
    limits = ScanLimits(memory_mb=cfg.checks.memory_limit_mb)
    cache = ProfileCache(ws.cache_dir / "profiles")
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
        base_t = TrackedFile.from_hash(dv.path, dv.base_md5)
        with progress.step(f"profiling {dv.role} data {dv.path}"):
            if base_t is None:
                head_prof, hit = cached_profile(cache, worktree_file(ws.top, head_t), md5=head_t.hash,
                                                name=dv.path, fmt=fmt, options=options, limits=limits)
                _require_label(head_prof, dv.path, cfg.data.label)
                ds.head_rows, ds.cached = head_prof.rows, ["head"] if hit else []
                findings.append(Finding(check="data", dataset=dv.role, status="warn",
                                        message=f"{dv.path} is new: no base version to compare with"))
                datasets.append(ds)
                continue
            base_prof, base_hit = cached_profile(
                cache, lambda t=base_t: _base_file(ws, ctx, t),
                md5=base_t.hash, name=f"{dv.path}@{ctx.base_sha[:12]}", fmt=fmt, options=options, limits=limits)
            head_prof, head_hit = cached_profile(cache, worktree_file(ws.top, head_t), md5=head_t.hash,
                                                 name=dv.path, fmt=fmt, options=options, limits=limits,
                                                 reference=base_prof)
            _require_label(head_prof, dv.path, cfg.data.label)
            ds.base_rows, ds.head_rows = base_prof.rows, head_prof.rows
            ds.cached = [side for side, hit in (("base", base_hit), ("head", head_hit)) if hit]
        ds.columns, found = compare_profiles(dv.role, base_prof, head_prof, cfg.checks, label=cfg.data.label)
        findings += found
        datasets.append(ds)
    suites = run_data_suites(ws, plan, cfg, progress=progress)
    for result in suites:
        findings += findings_of(result)
    status = worst(["pass", *(f.status for f in findings)])
    return ChecksRecord(status=status, base_sha=ctx.base_sha, head_sha=ctx.head_sha, datasets=datasets,
                        findings=findings, suites=suites, duration_s=round(time.monotonic() - start, 3))


def _base_file(ws: Workspace, ctx: Context, tracked: TrackedFile) -> Path:
    """The base's data file: from git or DVC, or, for data from the feature store, the set the
    features stage materialised at the base (cached by its content id)."""
    if is_feature_id(tracked.hash):
        path = cached_file(ws.cache_dir, tracked.hash)
        if not path.is_file():
            raise DataError(f"{tracked.path}: the base's feature data ({tracked.hash}) was not materialised",
                            hint="run the check again: the features stage writes it")
        return path
    return revision_file(ws.top, ctx.base_sha, tracked, ws.cache_dir / "data")


def _require_label(profile: TableProfile, name: str, label: str) -> None:
    if label not in profile.columns:
        raise label_missing(name, label, list(profile.columns))
