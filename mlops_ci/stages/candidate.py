"""What a promotion ships: a registered version resolved to fixed facts, with the lineage that
travels with it.

A run record may only name the version (and is checked against the registry: the registry's run,
files, digest and evaluation tag are what count); the lineage comes from the trusted side
(mlops_ci.lineage: the promoting job's own context and the registry's tags). A writer's
``/mlops-ci promote`` names the pull request and the head it pinned: the candidate is the version
registered for that head, by the pull request's own run (a branch of this repository) or, for a
fork, by a trusted job only. A candidate whose gates failed was never registered; ``promote
--force --reason`` registers its run then (:func:`register_forced`), with the override recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mlops_ci import gitutil, lineage, registry
from mlops_ci.backends.tracking import ModelVersionInfo, Tracking
from mlops_ci.errors import BackendError, NotFound, PromotionError
from mlops_ci.lineage import Source
from mlops_ci.records import RunRecord
from mlops_ci.stages.register import failed_gates
from mlops_ci.workspace import Workspace


@dataclass(frozen=True)
class Candidate:
    """A version to promote, with the lineage that travels with it. ``registered`` is False for a
    candidate whose gates failed, so it never reached the registry: only ``promote --force
    --reason`` can promote it, by registering its run then."""

    model: str
    version: str
    artifact_uri: str
    digest: str
    lineage: dict[str, str]
    gates_passed: bool
    gate_summary: str = ""
    registered: bool = True
    run_id: str | None = None
    # (message, hint) when it comes from a run record whose commit is not on the default branch:
    # the policy's merged-only rule refuses it unless --allow-unmerged (mlops_ci.policy)
    unmerged: tuple[str, str] | None = None


def merged(ws: Workspace, sha: str) -> bool:
    """Whether commit ``sha`` is part of the default branch (its remote-tracking ref when this clone
    has one), whatever branch is checked out."""
    ref = ws.default_ref()
    return ref is not None and gitutil.is_ancestor(sha, ref, ws.top)


def unmerged(ws: Workspace, sha: str) -> tuple[str, str] | None:
    """Why commit ``sha`` may not ship yet (message, hint), or None when it is merged."""
    if merged(ws, sha):
        return None
    ref = ws.default_ref() or ws.config.default_branch
    return (f"the run record is for commit {sha[:12]}, which is not merged into "
            f"{ref.removeprefix('refs/heads/').removeprefix('refs/remotes/')} "
            f"(at {(gitutil.rev_parse(ref, ws.top) or 'no such branch')[:12]})",
            ("it is the record of another commit than HEAD: run `mlops-ci run` here to promote what this "
             "commit ships, " if sha != gitutil.rev_parse("HEAD", ws.top) else "")
            + "merge that change first (and fetch), pass --allow-unmerged for a writer's /mlops-ci promote, "
            "or pass --version to promote a registry version directly")


def candidate_from_record(ws: Workspace, record: RunRecord, model: str, *, check_merged: bool = True) -> Candidate:
    """The version a record names. Its lineage is the run's own context: what the deployment plan of
    a run shows in-process; a promotion from a record file replaces it (:func:`check_with_registry`).
    With ``check_merged``, whether its commit is merged is found out (the policy decides on it)."""
    entry = record.model(model)
    reg = entry.registration
    ev = entry.evaluation
    ctx = record.context
    not_merged = unmerged(ws, ctx.head_sha) if check_merged else None
    training = entry.training
    run_id = reg.run_id if reg else training.run_id or (training.reused.run_id if training.reused else None) \
        if training else None
    data = {registry.DATA_PREFIX + dv.role: dv.head_md5 for dv in entry.plan.data if dv.head_md5}
    trained = training.reused.source_commit if training is not None and training.reused else None
    tags = {**data, **({registry.HEAD_SHA: trained} if trained else {})}
    found = lineage.of_version(tags, run_id, Source.of(ctx))
    serving = entry.serving
    served = serving is None or serving.status != "fail"
    passed = ev is not None and ev.status != "fail" and served
    summary = "; ".join(s for s in (failed_gates(ev) if ev else "",
                                    "" if served else f"serving check: {serving.summary()}") if s)
    if reg is None:
        if ev is not None and not passed and run_id:  # promotable only with --force --reason
            return Candidate(model=model, version="", artifact_uri="", digest="", lineage=found, gates_passed=False,
                             gate_summary=summary, registered=False, run_id=run_id, unmerged=not_merged)
        raise PromotionError(f"the run record for {ctx.head_sha[:12]} holds no registered version of {model}: "
                             "it was not evaluated",
                             hint="run `mlops-ci run` for this commit, or promote an MLflow version with --version")
    return Candidate(model=model, version=reg.version, artifact_uri=reg.artifact_uri, digest=reg.digest,
                     lineage=found, gates_passed=passed, gate_summary=summary, run_id=run_id, unmerged=not_merged)


def check_with_registry(tracking: Tracking, candidate: Candidate, source: Source) -> Candidate:
    """A candidate read from a run record file (untrusted: it may come from an artifact) is only
    promoted if the registry holds that version with the same run and files; the registry's
    digest and evaluation tag are what count, and the lineage is rebuilt from the registry's tags
    and ``source`` (the promoting job's own context), never taken from the record."""
    if not candidate.registered:
        return replace(candidate, lineage=lineage.of_version({}, candidate.run_id, source))
    try:
        mv = tracking.get_version(candidate.model, candidate.version)
    except (BackendError, NotFound) as err:
        raise PromotionError(f"the run record names {candidate.model} v{candidate.version}, which the model "
                             f"registry does not have ({err.message})",
                             hint="promote from the record of a run that registered the model") from err
    if mv.artifact_uri != candidate.artifact_uri or (mv.run_id or "") != (candidate.run_id or ""):
        raise PromotionError(f"the run record does not match the registry for {candidate.model} v{candidate.version}: "
                             f"the record says run {candidate.run_id or '-'} at {candidate.artifact_uri}, "
                             f"the registry run {mv.run_id or '-'} at {mv.artifact_uri}",
                             hint="the record was altered or comes from another registry; promote with --version")
    digest = mv.tags.get(registry.DIGEST) or candidate.digest
    passed = candidate.gates_passed and registry.passed(mv.tags)
    summary = candidate.gate_summary or ("" if passed else _why_not_passed(mv))
    return Candidate(model=candidate.model, version=candidate.version, artifact_uri=mv.artifact_uri, digest=digest,
                     lineage=lineage.of_version(mv.tags, mv.run_id, source), gates_passed=passed,
                     gate_summary=summary, run_id=candidate.run_id, unmerged=candidate.unmerged)


def _why_not_passed(mv: ModelVersionInfo) -> str:
    if mv.tags.get(registry.EVALUATION) == "pass" and mv.tags.get(registry.SERVING) == "fail":
        return f"v{mv.version} failed its serving check"
    return f"v{mv.version} carries no passing mlops-ci evaluation"


def _from_version(tracking: Tracking, mv: ModelVersionInfo, source: Source | None) -> Candidate:
    digest = mv.tags.get(registry.DIGEST) or tracking.digest(mv.artifact_uri)
    passed = registry.passed(mv.tags)
    override = mv.tags.get(registry.OVERRIDE_REASON)
    summary = "" if passed else (mv.tags.get(registry.OVERRIDE_GATES) or _why_not_passed(mv))
    if override and not passed:
        summary += f" (registered by an override: {override})"
    return Candidate(model=mv.name, version=mv.version, artifact_uri=mv.artifact_uri, digest=digest,
                     lineage=lineage.of_version(mv.tags, mv.run_id, source), gates_passed=passed,
                     gate_summary=summary, run_id=mv.run_id)


def candidate_from_registry(tracking: Tracking, model: str, version: str, source: Source | None = None) -> Candidate:
    return _from_version(tracking, tracking.get_version(model, version), source)


def pull_request_candidate(tracking: Tracking, model: str, *, pr: int, head_sha: str, fork: bool) -> Candidate:
    """The version registered for a pull request's pinned head (a writer's ``/mlops-ci promote``):
    by the pull request's own run for a branch of this repository; for a fork, only by a trusted
    job (a fork's own runs and slash trainings run its code). Newest passing first."""
    tags = {registry.PR: str(pr), registry.HEAD_SHA: head_sha}
    found = registry.passing_first(tracking.search_versions(model, tags))
    if fork:
        found = [v for v in found if v.tags.get(registry.ORIGIN) == "trusted"]
    if not found:
        who = "a trusted job" if fork else "a run of the pull request"
        raise PromotionError(f"no version of {model} was registered for head {head_sha[:12]} of PR #{pr} by {who}",
                             hint=("a fork's pull request is trained in the trusted merge job: merge it, or promote "
                                   "a registry version with --version N" if fork else
                                   "wait for the pull request's checks to register its candidate, then comment again"))
    return _from_version(tracking, found[0], Source(commit=head_sha, pr=pr))


def registered_run(tracking: Tracking, model: str, run_id: str) -> ModelVersionInfo | None:
    """The version a run was registered as already (by its fingerprint, else by its run id)."""
    run = tracking.get_run(run_id)
    key = ({registry.FINGERPRINT: run.tags[registry.FINGERPRINT]} if run.tags.get(registry.FINGERPRINT)
           else {registry.TRAINING_RUN: run_id})
    found = registry.passing_first(tracking.search_versions(model, key))
    return found[0] if found else None


def register_forced(tracking: Tracking, candidate: Candidate, *, reason: str,
                    actor: str) -> tuple[Candidate, bool]:
    """Register the run of a candidate whose gates failed, for ``promote --force --reason``: its model,
    lineage, fingerprint and (failed) evaluation as the registry recorded them on its run, plus who
    overrode the gates, why, and which failed. Idempotent per fingerprint like any registration: a
    version that exists keeps the override it was registered with. Returns (candidate, created)."""
    run = tracking.get_run(candidate.run_id or "")
    if run.tags.get(registry.EVALUATION) not in ("fail", "pass") or not run.tags.get(registry.HEAD_SHA):
        raise PromotionError(f"MLflow run {candidate.run_id} of {candidate.model} carries no mlops-ci evaluation",
                             hint="promote the record of an mlops-ci run whose evaluation finished")
    if tracking.experiment(registry.experiment_name(candidate.model)) != run.experiment_id:
        raise PromotionError(f"MLflow run {candidate.run_id} is not a training run of {candidate.model}")
    model_uri = tracking.logged_model_uri(run.run_id, run.experiment_id)
    if not model_uri:
        raise PromotionError(f"MLflow run {candidate.run_id} of {candidate.model} logged no model to register")
    keep = {k: v for k, v in run.tags.items() if k.startswith(registry.PREFIX) and not k.startswith(registry.DEPLOYED_PREFIX)}
    override = {registry.OVERRIDE_REASON: registry.clip(" ".join(reason.split())), registry.OVERRIDE_BY: actor,
                registry.OVERRIDE_GATES: registry.clip(candidate.gate_summary or "gates failed")}
    mv, created = registry.register_once(tracking, candidate.model, model_uri, run_id=run.run_id,
                                         tags={**keep, registry.TRAINING_RUN: run.run_id, **override})
    registered = candidate_from_registry(tracking, candidate.model, mv.version)
    return Candidate(model=candidate.model, version=mv.version, artifact_uri=registered.artifact_uri,
                     digest=registered.digest, lineage={**candidate.lineage, "run-id": run.run_id},
                     gates_passed=False, gate_summary=candidate.gate_summary, run_id=run.run_id), created


def choose(ws: Workspace, tracking: Tracking, model: str, *, source: Source, version: str | None = None,
           record: RunRecord | None = None, pull_request: int | None = None, fork: bool = False,
           check_merged: bool = True) -> Candidate:
    """The candidate a promotion names, resolved in the registry: a version (``--version``), the
    version registered for a pull request's pinned head (``source.commit``, a writer's command), or
    the version a run record names (checked against the registry)."""
    if pull_request is not None:
        if source.commit is None:
            raise PromotionError("promoting a pull request's candidate needs the head its command pinned")
        found = pull_request_candidate(tracking, model, pr=pull_request, head_sha=source.commit, fork=fork)
        if version is not None and found.version != version:
            raise PromotionError(f"the command named {model} v{version}, but the version registered for head "
                                 f"{source.commit[:12]} is v{found.version}",
                                 hint="comment the command again to promote the current candidate")
        return found
    if version is not None:
        return candidate_from_registry(tracking, model, version, source)
    if record is None:
        raise PromotionError(f"no version of {model} to promote", hint="pass --version N or --record PATH")
    return check_with_registry(tracking, candidate_from_record(ws, record, model, check_merged=check_merged), source)
