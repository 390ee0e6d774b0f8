"""Declared promotions: plan the entries a pull request changes, apply the file once merged.

- :func:`plan_requests` (the pull-request check, from :func:`mlops_ci.pipeline.run_pipeline`):
  every entry of the promotions file that changed between base and head gets a dry-run
  promotion (the manifest diff a merge commits) and that version's evaluation from the
  registry. A version without a passing mlops-ci evaluation fails the check unless its entry
  carries a ``reason``; a version on hold in the environment warns (the merge will not apply it).
- :func:`apply_declared` (`mlops-ci promote --declared`, on merge): every entry whose version is
  not what the GitOps repository serves (or whose alias points elsewhere) is promoted; the others
  are left alone, so a second run is a no-op. A hold set by a rollback is respected.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal

from mlops_ci import policy, registry
from mlops_ci.backends.gitops import GitOpsRemote
from mlops_ci.backends.gitops.base import Checkout
from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import BackendError, FatalError, NotFound
from mlops_ci.promotions import Desired, changed_entries, desired
from mlops_ci.records import Context, PromotionRecord, PromotionRequest
from mlops_ci.serving import canary, hold, layout
from mlops_ci.stages import promotion
from mlops_ci.stages.candidate import Candidate, candidate_from_registry
from mlops_ci.stages.promote import promote_candidate
from mlops_ci.workspace import Workspace


def served_version(ws: Workspace, co: Checkout, env: str, model: str) -> str | None:
    """The version the GitOps checkout serves for ``model`` in ``env`` (its workload manifest's
    annotation; the configured serving kind's file first, then the other kinds'). During a rollout,
    the primary: the canary is not served yet (mlops_ci.serving.canary)."""
    configured = ws.model(model).serving.kind
    kinds = [configured, *(k for k in layout.FILES if k != configured)]
    for kind in kinds:
        path = posixpath.join(layout.model_dir(ws.config.gitops.path, env, model), layout.FILES[kind][0])
        version = canary.serving_version(co.read(path))
        if version:
            return version
    return None


def _intent(entry: Desired, candidate: Candidate, **kwargs) -> policy.Intent:
    """A declared entry's promotion: its ``reason:`` stands for --force --reason on the gates only
    (a hold stops it; it was reviewed with the entry, and the merge already happened)."""
    return policy.Intent("promote", entry.model, entry.env, version=entry.version,
                         force_reason=entry.reason if not candidate.gates_passed else None,
                         overrides=frozenset({"registered", "gates"}), allow_unmerged=True, **kwargs)


def plan_request(ws: Workspace, entry: Desired, previous: str | None, *, tracking: Tracking,
                 gitops: GitOpsRemote) -> PromotionRequest:
    base = dict(env=entry.env, model=entry.model, version=entry.version, previous=previous,
                source=entry.source, reason=entry.reason)
    try:
        candidate = candidate_from_registry(tracking, entry.model, entry.version)
        tags = tracking.get_version(entry.model, entry.version).tags
    except (BackendError, NotFound) as err:
        return PromotionRequest(**base, status="fail", gates="fail", error=err.message)
    metrics = registry.metric_tags(tags)
    # the diff is what the merge commits, whatever the policy says of it (judged below, and on merge)
    applied, _ = promote_candidate(ws, candidate, _intent(entry, candidate, via="push", explain=True),
                                   tracking=tracking, gitops=gitops)
    plan = applied.record
    status = "pass"
    if not candidate.gates_passed:
        status = "warn" if entry.reason else "fail"
    elif plan.on_hold:
        status = "warn"
    return PromotionRequest(**base, status=status, gates="pass" if candidate.gates_passed else "fail",
                            gate_summary=candidate.gate_summary, metrics=metrics, lineage=candidate.lineage,
                            plan=plan)


def plan_requests(ws: Workspace, ctx: Context, *, tracking: Tracking, gitops: GitOpsRemote) -> list[PromotionRequest]:
    """A promotion request per promotions-file entry that changed between the base and head commits."""
    if not ctx.base_sha:
        return []
    return [plan_request(ws, entry, previous, tracking=tracking, gitops=gitops)
            for entry, previous in changed_entries(ws, ctx.base_sha, ctx.head_sha)]


Action = Literal["unchanged", "promoted", "proposed", "planned", "held", "refused"]


@dataclass
class Outcome:
    entry: Desired
    action: Action
    message: str
    record: PromotionRecord | None = None
    source_commit: str | None = None  # the promoted version's lineage (for the GitHub Deployment)

    @property
    def failed(self) -> bool:
        return self.action in ("held", "refused")


def apply_declared(ws: Workspace, *, tracking: Tracking, gitops: GitOpsRemote,
                   proposals: promotion.Proposals | None = None, via: policy.Route | None = None,
                   env: str | None = None, model: str | None = None, rev: str = "HEAD",
                   dry_run: bool = False) -> list[Outcome]:
    """Promote every declared entry (of ``env``/``model`` if given) that is not in place yet, each
    through the one promotion path (its policy decides on holds and gates; it lands as ``via`` says,
    else as the environment's promote_via says, ``proposals`` opening the pull requests)."""
    entries = [e for e in desired(ws, rev).values()
               if (env is None or e.env == env) and (model is None or e.model == model)]
    if not entries:
        return []
    with gitops.checkout() as co:
        served = {e.key: served_version(ws, co, e.env, e.model) for e in entries}
    out = []
    for entry in entries:
        alias = ws.config.alias_for(entry.env)
        current = tracking.version_by_alias(entry.model, alias)
        if served[entry.key] == entry.version and current is not None and current.version == entry.version:
            out.append(Outcome(entry, "unchanged", f"{entry.env} already serves {entry.model} v{entry.version}"))
            continue
        try:
            candidate = candidate_from_registry(tracking, entry.model, entry.version)
            applied, planner = promote_candidate(ws, candidate, _intent(entry, candidate, via=via, dry_run=dry_run),
                                                 tracking=tracking, gitops=gitops, proposals=proposals,
                                                 raise_refused=False)
        except FatalError as err:
            out.append(Outcome(entry, "refused", f"{entry.source}: {err}"))
            continue
        refused = applied.decision.blocking
        if refused:
            out.append(_refusal(entry, refused[0], candidate))
            continue
        record = applied.record
        if dry_run:
            action, what = "planned", "would change nothing" if record.noop else "would be promoted"
        elif record.pull_request:
            action, what = "proposed", f"proposed in {record.pull_request}"
        elif record.noop:
            action, what = "promoted", f"already served; alias {alias!r} moved to v{entry.version}"
        else:
            action, what = "promoted", f"commit {(record.commit_sha or '')[:12]}"
        out.append(Outcome(entry, action, f"{entry.model} v{entry.version} to {entry.env}: {what}", record,
                           source_commit=planner.candidate.lineage.get("source-commit")))
    return out


def _refusal(entry: Desired, reason: policy.Reason, candidate: Candidate) -> Outcome:
    """A declared entry the policy refused, said in the promotions file's terms."""
    if reason.rule == "hold":
        return Outcome(entry, "held", f"{entry.model} is on hold in {entry.env}"
                       + (f" ({reason.detail})" if reason.detail else "") + f": {entry.source} asks for "
                       f"v{entry.version}, release it with `{hold.clear_command(entry.model, entry.env)}` or change "
                       "the entry")
    if reason.rule == "gates":
        return Outcome(entry, "refused", f"{entry.model} v{entry.version} did not pass its gates "
                       f"({candidate.gate_summary}): add `reason:` to {entry.source} to promote it anyway")
    return Outcome(entry, "refused", f"{entry.source}: {reason.refusal}")


__all__ = ["Outcome", "apply_declared", "plan_request", "plan_requests", "served_version"]
