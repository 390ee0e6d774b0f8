"""Promote stage: pin a model version into the GitOps repository, then move the MLflow alias.

    resolve -> render -> diff -> (dry run: stop) -> commit with trailers -> push -> alias

The version is resolved to fixed facts (version, artifact URI, digest) before anything is
rendered. Promoting the version already there is a no-op commit-wise. The alias only moves
after the push landed, so the registry never points at a version that is not deployed.

Concurrent promotions: the GitOps backend retries a rejected push after a rebase (the git
backend also merges two promotions' additions to an environment's kustomization.yaml). A push
that still conflicts (PushConflict) is planned again here on the new tip, with jittered backoff,
as long as only files the promotion re-renders moved: a change to the model's own files since the
first plan (another promotion or rollback of the same model) is a real conflict and stops with
PushConflict naming the files, never a silent overwrite.
"""

from __future__ import annotations

import difflib
import random
import time
from dataclasses import dataclass

from mlops_ci import lineage, registry
from mlops_ci.backends.gitops import GitOpsRemote
from mlops_ci.backends.gitops.base import Checkout
from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import BackendError, GateFailed, PromotionError, PushConflict, UsageError
from mlops_ci.records import FileChange, PromotionRecord
from mlops_ci.serving import hold, layout, validate
from mlops_ci.serving.kserve import ServedVersion
from mlops_ci.stages.candidate import Candidate
from mlops_ci.workspace import Workspace


def _diff(path: str, old: bytes | None, new: bytes | None) -> str:
    a = [] if old is None else old.decode("utf-8", "replace").splitlines(keepends=True)
    b = [] if new is None else new.decode("utf-8", "replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, fromfile="/dev/null" if old is None else f"a/{path}",
                                        tofile="/dev/null" if new is None else f"b/{path}"))


def commit_message(c: Candidate, env: str, alias: str, *, hold_overridden: str | None = None,
                   forced_reason: str | None = None) -> str:
    pairs = [("Model", c.model), ("Model-Version", c.version), ("Environment", env), ("MLflow-Alias", alias),
             ("Model-Digest", c.digest), ("MLflow-Run-Id", c.lineage.get("run-id", "")),
             ("Source-Commit", c.lineage.get("source-commit", "")), ("Source-PR", c.lineage.get("source-pr", "")),
             ("Trained-At", c.lineage.get("trained-at", "")), ("Hold-Overridden", hold_overridden or ""),
             ("Forced-Reason", " ".join((forced_reason or "").split())[:200]),
             ("Failed-Gates", " ".join(c.gate_summary.split())[:300] if forced_reason and not c.gates_passed else "")]
    body = lineage.trailers(pairs)
    return f"promote {c.model} v{c.version} to {env}\n\nServe {c.artifact_uri}\n\n{body}\n"


# plans of one promotion, each on a newer tip: every lost race is another change that landed,
# so N promoters at once need at most N plans
MAX_PLANS = 20
MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class _Replan:
    """A plan after a lost race; ``since`` is the tip the first plan was made on."""

    since: str | None


class _LostRace(Exception):
    """The push of a plan conflicted with a change that landed meanwhile (promote plans again)."""

    def __init__(self, conflict: PushConflict, base: str | None) -> None:
        super().__init__(conflict.message)
        self.conflict = conflict
        self.base = base


def promote(
    ws: Workspace,
    candidate: Candidate,
    env: str,
    *,
    tracking: Tracking,
    gitops: GitOpsRemote,
    dry_run: bool = False,
    force_reason: str | None = None,
) -> PromotionRecord:
    replan: _Replan | None = None
    for attempt in range(1, MAX_PLANS + 1):
        started = time.monotonic()
        try:
            return _promote_once(ws, candidate, env, tracking=tracking, gitops=gitops, dry_run=dry_run,
                                 force_reason=force_reason, replan=replan)
        except _LostRace as lost:
            replan = replan or _Replan(since=lost.base)
            conflict = lost.conflict
        if attempt < MAX_PLANS:  # full jitter over a range doubling from the time the lost plan took
            took = max(0.05, time.monotonic() - started)
            time.sleep(random.uniform(0, min(MAX_BACKOFF_S, took * 2 ** (attempt - 1))))
    raise PushConflict(f"{candidate.model} v{candidate.version} was planned {MAX_PLANS} times and each push lost "
                       f"the race to another change: {conflict.message}",
                       hint="the GitOps branch is busy; re-run the promotion") from conflict


def _unchanged_since(co: Checkout, since: str | None, paths: list[str], c: Candidate, env: str,
                     gitops: GitOpsRemote) -> None:
    """On a re-plan, the model's own files must be as the first plan saw them: otherwise another
    promotion or rollback of this model landed meanwhile, and this one would silently replace it."""
    moved = [p for p in paths if (co.show(since, p) if since else None) != co.read(p)]
    if moved:
        raise PushConflict(f"GitOps conflict in {', '.join(moved)}: {gitops.url} ({gitops.branch}) moved to "
                           f"{(co.head or '?')[:12]} with a change to {c.model} in {env} while v{c.version} "
                           f"was being pushed", hint="re-run the promotion to plan against the new state")


def _promote_once(
    ws: Workspace,
    candidate: Candidate,
    env: str,
    *,
    tracking: Tracking,
    gitops: GitOpsRemote,
    dry_run: bool,
    force_reason: str | None,
    replan: _Replan | None,
) -> PromotionRecord:
    ws.model(candidate.model)  # a model name is never used in a path before it matched the config
    env = ws.environment(env)
    if not candidate.registered:
        raise PromotionError(f"{candidate.model}: the candidate of run {candidate.run_id} is not registered "
                             f"(its gates failed: {candidate.gate_summary})",
                             hint="pass --force --reason TEXT to register and promote it anyway (recorded)")
    if not candidate.gates_passed and not force_reason:
        raise GateFailed(f"{candidate.model} v{candidate.version} did not pass its gates"
                         + (f" ({candidate.gate_summary})" if candidate.gate_summary else ""),
                         hint="fix the model, or pass --force --reason TEXT to promote anyway (recorded)")
    if force_reason is not None and not force_reason.strip():
        raise UsageError("--force needs a non-empty --reason")
    envcfg = ws.config.environments[env]
    alias = ws.config.alias_for(env)
    lineage = dict(candidate.lineage)
    if force_reason:
        lineage["forced-reason"] = force_reason.strip().replace("\n", " ")[:200]
    served = ServedVersion(model=candidate.model, version=candidate.version, artifact_uri=candidate.artifact_uri,
                           digest=candidate.digest, env=env, namespace=envcfg.namespace, lineage=lineage)
    root = ws.config.gitops.path
    serving = ws.model(candidate.model).serving
    with gitops.checkout() as co:
        hold_file = hold.path(root, env, candidate.model)
        held = co.read(hold_file)
        if held is not None and not force_reason and not dry_run:  # a dry run plans it, marked on_hold
            h = hold.parse(held)
            raise PromotionError(f"{candidate.model} is on hold in {env}" + (f" ({h.describe()})" if h else "")
                                 + f": {hold_file} exists in {gitops.url} ({gitops.branch})",
                                 hint=f"release it with `{hold.clear_command(candidate.model, env)}`, or pass "
                                      "--force --reason TEXT to promote past it once (recorded)")
        files = layout.render_files(root, served, serving, co.read)
        if replan is not None:
            folder = layout.model_dir(root, env, candidate.model) + "/"
            _unchanged_since(co, replan.since, [p for p in files if p.startswith(folder)] + [hold_file],
                             candidate, env, gitops)
        changes, touched = [], {}
        for path, data in files.items():
            old = co.read(path)
            if old == data:
                changes.append(FileChange(path=path, action="unchanged"))
                continue
            touched[path] = data
            changes.append(FileChange(path=path, action="create" if old is None else "delete" if data is None
                                      else "modify", diff=_diff(path, old, data)))
        record = PromotionRecord(model=candidate.model, env=env, alias=alias, version=candidate.version,
                                 artifact_uri=candidate.artifact_uri, digest=candidate.digest, dry_run=dry_run,
                                 noop=not touched, changes=changes, remote=gitops.url, branch=gitops.branch,
                                 base_commit=co.head, commit_sha=co.head if not touched else None,
                                 forced_reason=force_reason, on_hold=hold_file if held is not None else None)
        if touched:  # an invalid manifest is never committed; a dry run reports it the same way
            validate.check(touched, root=root, env=env, settings=validate.Settings.from_env(ws.env),
                           checkout_dir=getattr(co, "path", None), read=co.read,
                           what=f"promoting {candidate.model} v{candidate.version} to {env}")
        if dry_run:
            return record
        if touched:
            try:
                record.commit_sha = co.commit_and_push(touched, commit_message(
                    candidate, env, alias, hold_overridden=record.on_hold, forced_reason=force_reason))
            except PushConflict as err:  # promote() plans again on the new tip, or stops
                raise _LostRace(err, record.base_commit) from err
            # a pull request remote (promote --via-pr) proposes the commit instead of pushing it
            record.pull_request = getattr(co, "pull_request", None)
    if record.pull_request:  # the alias moves once the pull request is merged and the version served
        return record
    try:
        tracking.set_alias(candidate.model, alias, candidate.version)
        tracking.set_version_tags(candidate.model, candidate.version,
                                  {registry.deployed(env): record.commit_sha or ""})
    except BackendError as err:
        raise BackendError(f"manifests for {candidate.model} v{candidate.version} are committed "
                           f"({(record.commit_sha or '')[:12]}) but the MLflow alias {alias!r} was not moved: "
                           f"{err.message}", hint="re-run the same promote: git is a no-op and the alias moves") from err
    return record
