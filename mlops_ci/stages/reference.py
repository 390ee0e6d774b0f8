"""A registered version's reference: what monitoring compares live traffic with.

At registration, the profiles of the version's training and eval data (the same mergeable
``TableProfile`` the pull request's checks cache, by the same content ids and options, so most
come from that cache) and the profile of its predictions on the eval set are stored as one JSON
artifact of its run (:data:`REFERENCE_FILE`), and the version is tagged with it. Monitoring then
never reads training data again.
"""

from __future__ import annotations

import json

from mlops_ci import registry
from mlops_ci.backends.tracking import Tracking
from mlops_ci.records import ModelPlan
from mlops_ci.workspace import Workspace

REFERENCE_FILE = "mlops_ci/reference.json"
SCHEMA = 1


def build_reference(ws: Workspace, plan: ModelPlan, predictions, *, source=None) -> dict:
    """The reference document: data and prediction profiles, their content ids and options.
    ``source``: where a tracked file's content is read from (default: the work tree, checked)."""
    from dataclasses import asdict

    import numpy as np
    import pyarrow as pa

    from mlops_ci.checks.cache import ProfileCache
    from mlops_ci.checks.profiler import profile_table
    from mlops_ci.checks.scan import ScanLimits, profile_file
    from mlops_ci.data.fetch import worktree_file
    from mlops_ci.data.versions import TrackedFile
    from mlops_ci.stages.check import cached_profile, profile_options

    cfg = ws.model(plan.model)
    options = profile_options(cfg)
    limits = ScanLimits(memory_mb=cfg.checks.memory_limit_mb)
    cache = ProfileCache(ws.cache_dir / "profiles")
    doc: dict = {"schema": SCHEMA, "model": plan.model, "options": asdict(options), "label": cfg.data.label,
                 "data": {}, "profiles": {}}
    read = source or (lambda t: worktree_file(ws.top, t))
    for dv in plan.data:
        rel = cfg.data.train if dv.role == "train" else cfg.data.eval
        tracked = TrackedFile.from_hash(dv.path, dv.head_md5) if dv.head_md5 else None
        if tracked is not None:
            profile, _ = cached_profile(cache, lambda t=tracked: read(t), md5=dv.head_md5, name=rel,
                                        fmt=cfg.data.format, options=options, limits=limits)
        else:  # tracked by neither git nor DVC: as the work tree has it
            profile = profile_file(ws.root / rel, name=rel, fmt=cfg.data.format, options=options, limits=limits)
        doc["data"][dv.role] = dv.head_md5
        doc["profiles"][dv.role] = profile.to_json()
    scores = pa.table({"prediction": np.asarray(predictions, dtype=float)})
    doc["profiles"]["predictions"] = profile_table(scores, options=options).to_json()
    return doc


def keep_reference(ws: Workspace, plan: ModelPlan, *, name: str, version: str, run_id: str, model_uri: str,
                   tracking: Tracking) -> str:
    """Build the reference of a newly registered version and store it with its run; returns the
    artifact's path (also the version's ``mlops_ci.reference`` tag)."""
    from mlops_ci.stages.evaluate import load_eval_data

    frame, _, _ = load_eval_data(ws, plan)
    doc = build_reference(ws, plan, tracking.predict(model_uri, frame))
    tracking.log_text(run_id, json.dumps(doc, separators=(",", ":")), REFERENCE_FILE)
    tracking.set_version_tags(name, version, {registry.REFERENCE: REFERENCE_FILE})
    return REFERENCE_FILE


def load_reference(tracking: Tracking, run_id: str) -> dict | None:
    """A run's stored reference (None when it has none, or one of another schema)."""
    text = tracking.load_text(run_id, REFERENCE_FILE)
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("schema") == SCHEMA else None


__all__ = ["REFERENCE_FILE", "build_reference", "keep_reference", "load_reference"]
