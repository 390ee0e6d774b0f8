"""The candidate resolver: the model a run stands for, when one was trained before from exactly its
inputs (same training fingerprint), found in the registry.

It serves the train stage (reuse instead of training: a rerun of an unchanged head trains nothing),
registration (a found run is registered once) and the merge (on the default branch the candidate is
the version the pull request registered: what was reviewed is what ships). Any registered version
counts, and any finished run with a logged model, not only the champion. Lineage of what is found
comes from the registry's tags, which the job that trained it wrote.
"""

from __future__ import annotations

import re

from mlops_ci import fingerprint, registry
from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import BackendError, GateFailed
from mlops_ci.records import Context, Fingerprint, ModelPlan, ReusedModel
from mlops_ci.stages.evaluate import resolve_champion
from mlops_ci.workspace import Workspace

_SHA = re.compile(r"[0-9a-f]{40}")


class NotReviewed(GateFailed):
    """A merge would ship a model no pull request run produced (promotion.require_reviewed)."""


def after_merge(ctx: Context) -> bool:
    """A run on the default branch itself (a push after a merge, or a local checkout of it)."""
    return ctx.ref == ctx.default_branch and ctx.event in ("push", "local", "workflow_dispatch")


def _reused(model: str, match: registry.Match, *, champion: bool, alias: str | None) -> ReusedModel:
    tags = match.tags
    pr = tags.get(registry.PR, "")
    commit = tags.get(registry.HEAD_SHA, "")
    origin = tags.get(registry.ORIGIN)
    return ReusedModel(name=model, run_id=match.run_id, model_uri=match.model_uri,
                       version=match.version.version if match.version else None, champion=champion,
                       alias=alias if champion else None,
                       source_commit=commit if _SHA.fullmatch(commit) else None,
                       source_pr=int(pr) if pr.isdigit() and len(pr) < 10 else None,
                       origin=origin if origin in registry.ORIGINS else None)


def _explain(ctx: Context, model: str, fp: Fingerprint, tracking: Tracking, alias: str | None,
             champion) -> None:
    """Why nothing can be reused, in ``fp.note``: what changed since the model closest to hand."""
    if after_merge(ctx):  # the pull request's candidate is what a merge should have found
        nearest = registry.nearest_version(tracking, model)
        if nearest is not None and nearest.tags.get(registry.ORIGIN) == "pull_request":
            pr = nearest.tags.get(registry.PR)
            fingerprint.compare(fp, nearest.tags, label=f"v{nearest.version}" + (f" (PR #{pr}'s candidate)" if pr else ""))
            fp.note += ": the merge changed the inputs (the base moved), so it is trained here"
            return
    if champion is not None:
        fingerprint.compare(fp, champion.tags, label=f"champion v{champion.version}")
    else:
        fp.compared_with = None
        fp.note = (f"no champion ({model}@{alias} is not set) to compare with" if alias
                   else "no champion environment configured to compare with")


def find_reuse(ws: Workspace, ctx: Context, plan: ModelPlan, fp: Fingerprint, *,
               tracking: Tracking) -> ReusedModel | None:
    """The model trained before from ``fp``'s inputs, or None (the reason in ``fp.note``).

    Never for a forced plan. With promotion.require_reviewed, a run after a merge that finds
    nothing stops with NotReviewed instead of training."""
    model = plan.model
    if plan.forced:
        fp.note = "retrained because of --force (not compared with the registry)"
        return None
    if fp.digest is None:
        fp.note = f"not compared with the registry: {fp.unavailable}"
        return None
    try:
        alias, champion = resolve_champion(ws, model, tracking)
        match = registry.find_by_fingerprint(tracking, model, fp.digest)
        if match is None:
            _explain(ctx, model, fp, tracking, alias, champion)
    except BackendError as err:
        fp.note = f"the registry could not be searched, so nothing was reused: {err.message}"
        return None
    if match is None:
        if after_merge(ctx) and ws.config.promotion.require_reviewed:
            raise NotReviewed(f"{model}: no pull request run trained a model from the merged inputs ({fp.note})",
                              hint="merges must ship a reviewed version (promotion.require_reviewed): re-run the "
                                   "pull request's checks on its final head before merging, or set "
                                   "promotion.require_reviewed: false to train on merge")
        return None
    is_champion = champion is not None and match.version is not None and match.version.version == champion.version
    label = (f"champion v{champion.version}" if is_champion else
             f"v{match.version.version}" if match.version else f"run {match.run_id}")
    fingerprint.compare(fp, match.tags, label=label)
    return _reused(model, match, champion=is_champion, alias=alias)
