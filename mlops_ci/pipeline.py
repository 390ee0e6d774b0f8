"""The flow for one head commit: plan -> check -> train -> evaluate -> register -> plan the deployment.

Each step reads and extends the RunRecord; the CLI commands (`check`, `train`, `evaluate`,
`run`) and the demo call these same functions. What the run will need later is checked first
(:func:`preflight`), so a missing GitOps remote or an unreachable MLflow never costs a training.
Every run writes a record for its own head, failed or not: a stage that stops the run leaves
its name and its one-line error in ``RunRecord.failure`` (:func:`recording`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlops_ci import registry
from mlops_ci.backends.gitops import GitOpsRemote
from mlops_ci.backends.tracking import Tracking
from mlops_ci.backends.trainers import Trainer, trainer_for
from mlops_ci.console import NullProgress, Progress
from mlops_ci.errors import ExitCode, FatalError, TrainingError
from mlops_ci.plan import plan_model
from mlops_ci.records import (ClaimedResult, Context, EvaluationRecord, ModelRecord, RunRecord, StageFailure, TrainingRecord,
                              load_record, save_record)
from mlops_ci.stages.check import run_checks
from mlops_ci.stages.evaluate import evaluation_tags, recorded_evaluation, run_evaluation
from mlops_ci.lineage import Source
from mlops_ci.stages.candidate import choose
from mlops_ci.stages.promote import promote
from mlops_ci.stages.register import register_candidate, reused_registration
from mlops_ci.stages.train import run_training
from mlops_ci.workspace import Workspace

MAX_ERROR = 500


@dataclass
class Backends:
    tracking: Tracking
    gitops: GitOpsRemote
    trainers: dict[str, Trainer] | None = None

    def trainer(self, name: str | None) -> Trainer:
        if self.trainers and name in self.trainers:
            return self.trainers[name]
        return trainer_for(name)


def default_backends(ws: Workspace) -> Backends:
    from mlops_ci.backends.gitops import gitops_for
    from mlops_ci.backends.tracking import tracking_for

    return Backends(tracking=tracking_for(ws), gitops=gitops_for(ws))


def registry_kind(tracking: Tracking) -> str:
    """"embedded" for MLflow on SQLite in this checkout (gone with a CI job), else "shared"."""
    return "embedded" if tracking.uri.startswith("sqlite:") else "shared"


def throwaway(record: RunRecord) -> bool:
    """A pull request's job on GitHub without the shared registry (a fork: no secrets): what it would
    register lives and dies with the job, so it registers nothing and plans no deployment."""
    ctx = record.context
    return record.registry == "embedded" and ctx.source == "github" and registry.origin_of(
        ctx.event, ctx.pr_number) == "pull_request"


def new_record(ctx: Context, backends: Backends) -> RunRecord:
    return RunRecord(context=ctx, registry=registry_kind(backends.tracking))


def preflight(ws: Workspace, backends: Backends) -> None:
    """Fail fast, before anything trains: the tracking server answers with our credentials, and the
    GitOps remote that the deployment plan (promotion.on_merge) renders against exists."""
    backends.tracking.ping()
    if ws.config.promotion.on_merge:
        backends.gitops.check()


@contextmanager
def stage(name: str, model: str | None = None) -> Iterator[None]:
    """Name the stage (and model) an error escaping this block stopped."""
    try:
        yield
    except BaseException as err:
        if not hasattr(err, "mlops_ci_stage"):
            err.mlops_ci_stage = (name, model)  # type: ignore[attr-defined]
        raise


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) if isinstance(err, FatalError) else f"{type(err).__name__}: {' '.join(str(err).split())}"
    return text[:MAX_ERROR]


@contextmanager
def recording(record: RunRecord, path: Path) -> Iterator[RunRecord]:
    """Save ``record`` at the end, and also when an error stops the run: then with the stage that
    failed and its one-line error, so the head's record never says less than what happened."""
    try:
        yield record
    except BaseException as err:
        where, model = getattr(err, "mlops_ci_stage", ("run", None))
        code = (err.exit_code if isinstance(err, FatalError) else ExitCode.INTERRUPTED
                if isinstance(err, KeyboardInterrupt) else ExitCode.INTERNAL)
        record.failure = StageFailure(stage=where, model=model, message=_one_line(err) or type(err).__name__,
                                      exit_code=code)
        save_record(record, path)
        raise
    save_record(record, path)


def open_record(ws: Workspace, ctx: Context, path: Path | None = None) -> RunRecord:
    """The record for this head commit: the existing file if it is for the same head, else a new one."""
    path = path or ws.record_path
    if path.exists():
        record = load_record(path)
        if record.context.head_sha == ctx.head_sha:
            record.context = ctx
            return record
    return RunRecord(context=ctx)


def entry_for(ws: Workspace, record: RunRecord, model: str, *, force: bool = False) -> ModelRecord:
    entry = record.models.get(model)
    if entry is None or force:
        entry = ModelRecord(model=model, plan=plan_model(ws, record.context, model, force=force))
        record.models[model] = entry
    return entry


def step_check(ws: Workspace, record: RunRecord, model: str, *, progress: Progress, force: bool = False) -> ModelRecord:
    entry = entry_for(ws, record, model, force=force)
    entry.checks = run_checks(ws, record.context, entry.plan, progress=progress)
    return entry


def step_train(ws: Workspace, record: RunRecord, model: str, *, backends: Backends, progress: Progress,
               force: bool = False, dry_run: bool = False, backend: str | None = None) -> ModelRecord:
    entry = entry_for(ws, record, model, force=force)
    trainer = backends.trainer(backend or ws.model(model).train.backend)
    with stage("train", model):
        entry.training = run_training(ws, record.context, entry.plan, tracking=backends.tracking, trainer=trainer,
                                      progress=progress, dry_run=dry_run)
    if not dry_run:
        entry.evaluation = entry.registration = entry.deployment_plan = None
        if entry.training.reused is not None:  # not retrained: evaluate (or re-gate) the reused model
            step_evaluate(ws, record, model, backends=backends, progress=progress)
    return entry


def _evaluate(ws: Workspace, record: RunRecord, entry: ModelRecord, tracking: Tracking,
              progress: Progress) -> EvaluationRecord:
    training = entry.training
    reused = training.reused
    if reused is None:
        ev = run_evaluation(ws, record.context, entry.plan, training.model_uri, tracking=tracking, progress=progress)
        fp = training.fingerprint
        if fp is not None and fp.digest:  # trained here: a pull request without registry access may have
            ev.claims = [ClaimedResult(pr=c.pr, head_sha=c.head_sha, metrics=c.metrics)  # reported these inputs
                         for c in registry.find_claims(tracking, entry.model, fp.digest)]
        return ev
    return (recorded_evaluation(ws, entry.plan, reused, tracking=tracking)
            or run_evaluation(ws, record.context, entry.plan, reused.model_uri, tracking=tracking, progress=progress,
                              reused=reused))


def _keep_evaluation(tracking: Tracking, entry: ModelRecord) -> None:
    """The evaluation as tags on the candidate's run (and on a reused version), so that a rerun of
    the same inputs re-applies the gates to it instead of predicting again."""
    ev, training = entry.evaluation, entry.training
    tags = evaluation_tags(ev)
    run_id = training.run_id or (training.reused.run_id if training.reused else None)
    if run_id:
        run_tags = tracking.get_run(run_id).tags if training.reused else {}
        if any(run_tags.get(k) != v for k, v in tags.items()):
            tracking.set_run_tags(run_id, tags)
    version = training.reused.version if training.reused else None
    if version and not ev.recorded and ev.status != "fail":
        tracking.set_version_tags(entry.model, version, tags)


def step_evaluate(ws: Workspace, record: RunRecord, model: str, *, backends: Backends,
                  progress: Progress, dry_run: bool = False) -> ModelRecord:
    """Evaluate (or re-gate a reused model), then register a passing candidate (not in a dry run)
    and plan its deployment."""
    entry = record.model(model)
    training = entry.training
    entry.evaluation = entry.registration = entry.deployment_plan = None
    if training is None or (training.status == "skipped" and training.reused is None):
        return entry
    if training.status == "failed":
        raise TrainingError(f"{model}: training failed, nothing to evaluate: {training.error}")
    tracking = backends.tracking
    with stage("evaluate", model):
        entry.evaluation = ev = _evaluate(ws, record, entry, tracking, progress)
        if not dry_run:
            _keep_evaluation(tracking, entry)
    if ev.status == "fail":
        return entry
    reused = training.reused
    with stage("register", model):
        if reused is not None and reused.version:  # an existing version: nothing is registered, a read only
            entry.registration = reused_registration(reused, tracking=tracking)
        elif not dry_run and not throwaway(record):
            with progress.step(f"registering {model}"):
                lineage = (registry.lineage_tags(record.context, entry.plan) if reused is None
                           else registry.lineage_from(tracking.get_run(reused.run_id).tags))
                entry.registration = register_candidate(
                    model, training.model_uri or reused.model_uri, run_id=training.run_id or reused.run_id,
                    lineage=lineage, fp=training.fingerprint, evaluation=ev, tracking=tracking)
    if entry.registration is not None:
        with stage("deployment plan", model):
            _plan_deployment(ws, record, model, backends)
    return entry


def _plan_deployment(ws: Workspace, record: RunRecord, model: str, backends: Backends) -> None:
    """What promoting the registered candidate to promotion.on_merge would commit (a dry run)."""
    env = ws.config.promotion.on_merge
    if env:  # the same resolution as `promote --dry-run` from this context: what merging would commit
        candidate = choose(ws, backends.tracking, model, source=Source.of(record.context), record=record,
                           check_merged=False)
        record.model(model).deployment_plan = promote(ws, candidate, env, tracking=backends.tracking,
                                                      gitops=backends.gitops, dry_run=True)


def plan_pipeline(ws: Workspace, ctx: Context, *, backends: Backends, models: list[str] | None = None,
                  force: bool = False) -> RunRecord:
    """What `run` would do, without doing it: the plan and the training command of every model."""
    record = RunRecord(context=ctx)
    for model in models or list(ws.config.models):
        step_train(ws, record, model, backends=backends, progress=NullProgress(), force=force, dry_run=True)
    return record


def run_pipeline(
    ws: Workspace,
    ctx: Context,
    *,
    backends: Backends,
    models: list[str] | None = None,
    progress: Progress | None = None,
    force: bool = False,
    record_path: Path | None = None,
    record: RunRecord | None = None,
) -> RunRecord:
    """Everything a pull request gets: checks, training, evaluation and the deployment plan.

    Pass ``record`` (see :func:`new_record`) to keep it when an error stops the run: it then holds
    the failure, as the file written at ``record_path`` does."""
    progress = progress or NullProgress()
    record = record or new_record(ctx, backends)
    path = record_path or ws.record_path
    with recording(record, path):
        with stage("preflight"), progress.step("checking the registry and the GitOps remote"):
            preflight(ws, backends)
        with stage("promotion requests"):  # first: an invalid file stops early
            step_promotion_requests(ws, record, backends=backends, models=models)
        for model in models or list(ws.config.models):
            with stage("plan", model), progress.step(f"{model}: plan"):
                entry = entry_for(ws, record, model, force=force)
            with stage("check", model):
                step_check(ws, record, model, progress=progress)
            save_record(record, path)
            if entry.checks is not None and entry.checks.status == "fail":
                trainer = backends.trainer(ws.model(model).train.backend)
                entry.training = TrainingRecord(status="skipped", backend=trainer.name, skip_reason="data checks failed")
                continue
            step_train(ws, record, model, backends=backends, progress=progress)
            save_record(record, path)
            if entry.training and entry.training.status == "succeeded":
                step_evaluate(ws, record, model, backends=backends, progress=progress)
                save_record(record, path)
    return record


def step_promotion_requests(ws: Workspace, record: RunRecord, *, backends: Backends,
                            models: list[str] | None = None) -> RunRecord:
    """Plan the entries of the promotions file this change edits (promotion as code)."""
    from mlops_ci.stages.declared import plan_requests

    requests = plan_requests(ws, record.context, tracking=backends.tracking, gitops=backends.gitops)
    record.promotion_requests = [r for r in requests if models is None or r.model in models]
    return record
