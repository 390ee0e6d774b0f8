"""Plan: which models a change affects and which stages run for each.

A model whose code paths, params and data hashes did not change between base and head is
skipped, with the reason kept for the report. A model that did change against the base but
would be trained from the same inputs as the champion is not retrained either: the train stage
compares training fingerprints (mlops_ci.fingerprint) unless the plan is forced.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlops_ci import gitutil
from mlops_ci.config import load_config
from mlops_ci.data.versions import tracked_file
from mlops_ci.errors import ConfigError
from mlops_ci.fingerprint import settings_of
from mlops_ci.config import PROMOTIONS_NAME
from mlops_ci.records import Context, DataVersion, FeaturesRecord, ModelPlan
from mlops_ci.workspace import Workspace


def data_versions(ws: Workspace, ctx: Context, model: str, features: FeaturesRecord | None = None) -> list[DataVersion]:
    """The content ids of the model's train and eval data at the base and the head: of the files, or,
    for data from the feature store, of what produced it (the features stage's ids)."""
    cfg = ws.model(model)
    out = []
    for role, rel in (("train", cfg.data.train), ("eval", cfg.data.eval)):
        path = ws.repo_path(rel)
        made = features.data_of(model, role) if features is not None else None
        if made is not None:
            out.append(DataVersion(role=role, path=path, base_md5=made.base_id if ctx.base_sha else None,
                                   head_md5=made.head_id))
            continue
        head = tracked_file(ws.top, ctx.head_sha, path)
        base = tracked_file(ws.top, ctx.base_sha, path) if ctx.base_sha else None
        out.append(DataVersion(role=role, path=path, base_md5=base.hash if base else None,
                               head_md5=head.hash if head else None))
    return out


def serving_of(serving) -> dict:
    """What the serving check of a model depends on in its ``serving`` section: the runtime it
    serves in, the memory limit it is held to, and its own settings."""
    return {"kind": serving.kind, "model_format": getattr(serving, "model_format", None),
            "protocol_version": getattr(serving, "protocol_version", None),
            "runtime": getattr(serving, "runtime", None), "memory": serving.limits.memory,
            "check": serving.check.model_dump(mode="json")}


def changed_settings(ws: Workspace, ctx: Context, model: str) -> list[str]:
    """Which of the model's settings in the config differ from the base's: "training or
    evaluation" (a base config that is missing, invalid or lacks the model counts as that),
    "serving" (what the serving check depends on)."""
    blob = gitutil.show_file(ctx.base_sha, ws.repo_path(ws.loaded.path.name), ws.top)
    if blob is None:
        return ["training or evaluation"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ws.loaded.path.name
        path.write_bytes(blob)
        try:
            base = load_config(path).config.models.get(model)
        except ConfigError:
            return ["training or evaluation"]
    if base is None:
        return ["training or evaluation"]
    head = ws.model(model)
    return [name for name, same in (("training or evaluation", settings_of(base) == settings_of(head)),
                                    ("serving", serving_of(base.serving) == serving_of(head.serving))) if not same]


def plan_model(ws: Workspace, ctx: Context, model: str, *, force: bool = False,
               features: FeaturesRecord | None = None) -> ModelPlan:
    """``features``: this run's features stage (mlops_ci.stages.features): a model whose feature
    service reads a changed view is retrained, and data from the store has its content ids."""
    cfg = ws.model(model)
    data = data_versions(ws, ctx, model, features)
    if not ctx.base_sha:
        return ModelPlan(model=model, stages=["train", "evaluate"], data=data, forced=force,
                         reasons=["no base revision to compare with: first run on this branch"])
    changed = gitutil.changed_paths(ctx.base_sha, ctx.head_sha, ws.top)
    # a change of the promotions file is a promotion request (see promotions.py), never a reason to train
    changed = [p for p in changed if p != ws.repo_path(PROMOTIONS_NAME)]
    watched = [ws.repo_path(p) for p in (*cfg.paths, cfg.params, "dvc.lock")]
    data_files = {dv.path for dv in data} | {dv.path + ".dvc" for dv in data}
    relevant = sorted(p for p in changed if any(gitutil.is_under(p, w) for w in watched) or p in data_files)
    reasons = []
    data_changed = [dv for dv in data if dv.changed]
    for dv in data_changed:
        made = features.data_of(model, dv.role) if features is not None else None
        if made is not None:  # from the store: nothing in git names it, the ids moved (entity table or views)
            table = ws.repo_path(getattr(cfg.features.entities, dv.role))
            reasons.append(f"{dv.role} data from feature service {made.service} changed: {dv.path} "
                           f"(entity table {table}, or the views it reads)")
            relevant.append(dv.path)
            continue
        reasons.append(f"{dv.role} data changed: {dv.path}")
    code = [p for p in relevant if p not in data_files]
    if code:
        shown = ", ".join(code[:5]) + (f" and {len(code) - 5} more" if len(code) > 5 else "")
        reasons.append(f"changed: {shown}")
    config = ws.repo_path(ws.loaded.path.name)
    which = changed_settings(ws, ctx, model) if config in changed and config not in relevant else []
    if which:  # a serving change alone reuses the model (same fingerprint) and serves it again
        relevant.append(config)
        reasons.append(f"{' and '.join(which)} settings of {model} changed in {config}")
    affected = features.affected_model(model) if features is not None else None
    if affected is not None:
        reasons += affected.reasons
        relevant += [p for p in changed if gitutil.is_under(p, features.repo) and p not in relevant][:50]
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
                f"(code paths, {cfg.params}, data hashes, training and serving settings"
                f"{', the feature views it reads' if cfg.features else ''} are the same)")
    return ModelPlan(model=model, stages=stages, reasons=reasons, skip_reason=skip,
                     changed_paths=relevant, data=data, forced=force)
