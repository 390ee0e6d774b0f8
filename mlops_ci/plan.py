"""Plan: which models a change affects and which stages run for each.

A model whose code paths, params and data hashes did not change between base and head is
skipped, with the reason kept for the report.
"""

from __future__ import annotations

from mlops_ci import gitutil
from mlops_ci.data.versions import tracked_file
from mlops_ci.records import Context, DataVersion, ModelPlan
from mlops_ci.workspace import Workspace


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return prefix in ("", ".") or path == prefix or path.startswith(prefix + "/")


def data_versions(ws: Workspace, ctx: Context, model: str) -> list[DataVersion]:
    cfg = ws.model(model)
    out = []
    for role, rel in (("train", cfg.data.train), ("eval", cfg.data.eval)):
        path = ws.repo_path(rel)
        head = tracked_file(ws.top, ctx.head_sha, path)
        base = tracked_file(ws.top, ctx.base_sha, path) if ctx.base_sha else None
        out.append(DataVersion(role=role, path=path, base_md5=base.hash if base else None,
                               head_md5=head.hash if head else None))
    return out


def plan_model(ws: Workspace, ctx: Context, model: str, *, force: bool = False) -> ModelPlan:
    cfg = ws.model(model)
    data = data_versions(ws, ctx, model)
    if not ctx.base_sha:
        return ModelPlan(model=model, stages=["train", "evaluate"], data=data,
                         reasons=["no base revision to compare with: first run on this branch"])
    changed = gitutil.changed_paths(ctx.base_sha, ctx.head_sha, ws.top)
    watched = [ws.repo_path(p) for p in (*cfg.paths, cfg.params, "dvc.lock")]
    data_files = {dv.path for dv in data} | {dv.path + ".dvc" for dv in data}
    relevant = sorted(p for p in changed if any(_under(p, w) for w in watched) or p in data_files)
    reasons = []
    data_changed = [dv for dv in data if dv.changed]
    for dv in data_changed:
        reasons.append(f"{dv.role} data changed: {dv.path}")
    code = [p for p in relevant if p not in data_files]
    if code:
        shown = ", ".join(code[:5]) + (f" and {len(code) - 5} more" if len(code) > 5 else "")
        reasons.append(f"changed: {shown}")
    stages: list = []
    if data_changed:
        stages.append("check")
    if relevant or force:
        stages += ["train", "evaluate"]
        if force and not relevant:
            reasons.append("forced")
    skip = None
    if not stages:
        skip = (f"nothing that affects {model} changed since {ctx.base_sha[:12]} "
                f"(code paths, {cfg.params} and data hashes are the same)")
    return ModelPlan(model=model, stages=stages, reasons=reasons, skip_reason=skip,
                     changed_paths=relevant, data=data)
