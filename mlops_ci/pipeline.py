"""The flow for one head commit: plan -> check -> train -> evaluate -> register -> plan the deployment.

Each step reads and extends the RunRecord; the CLI commands (`check`, `train`, `evaluate`,
`run`) and the demo call these same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_ci.backends.gitops import GitOpsRemote
from mlops_ci.backends.tracking import Tracking
from mlops_ci.backends.trainers import Trainer, trainer_for
from mlops_ci.console import NullProgress, Progress
from mlops_ci.errors import TrainingError
from mlops_ci.plan import plan_model
from mlops_ci.records import Context, ModelRecord, RunRecord, TrainingRecord, load_record, save_record
from mlops_ci.stages.check import run_checks
from mlops_ci.stages.evaluate import reused_evaluation, run_evaluation
from mlops_ci.stages.promote import candidate_from_record, promote
from mlops_ci.stages.register import register_candidate, reused_registration
from mlops_ci.stages.train import run_training
from mlops_ci.workspace import Workspace


@dataclass
class Backends:
    tracking: Tracking
    gitops: GitOpsRemote
    trainers: dict[str, Trainer] | None = None

    def trainer(self, name: str) -> Trainer:
        if self.trainers and name in self.trainers:
            return self.trainers[name]
        return trainer_for(name)


def default_backends(ws: Workspace) -> Backends:
    from mlops_ci.backends.gitops import gitops_for
    from mlops_ci.backends.tracking import tracking_for

    return Backends(tracking=tracking_for(ws), gitops=gitops_for(ws))


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
    entry.training = run_training(ws, record.context, entry.plan, tracking=backends.tracking, trainer=trainer,
                                  progress=progress, dry_run=dry_run)
    if not dry_run:
        entry.evaluation = entry.registration = entry.deployment_plan = None
        if entry.training.reused_from is not None:  # not retrained: the champion's metrics and version
            step_evaluate(ws, record, model, backends=backends, progress=progress)
    return entry


def step_evaluate(ws: Workspace, record: RunRecord, model: str, *, backends: Backends,
                  progress: Progress, dry_run: bool = False) -> ModelRecord:
    """Evaluate, then register a passing candidate (not in a dry run) and plan its deployment."""
    entry = record.model(model)
    training = entry.training
    if training is not None and training.reused_from is not None:
        # the champion was trained from the same inputs: its recorded metrics under today's gates,
        # its existing version (nothing is registered), and a deployment plan that is a no-op
        # where it is served. Nothing is written, so a dry run does the same.
        entry.evaluation = reused_evaluation(ws, entry.plan, training, tracking=backends.tracking)
        entry.registration = entry.deployment_plan = None
        if entry.evaluation.status != "fail":
            entry.registration = reused_registration(entry.plan, training, tracking=backends.tracking)
            _plan_deployment(ws, record, model, backends)
        return entry
    if training is None or training.status == "skipped":
        entry.evaluation = None
        return entry
    if training.status == "failed":
        raise TrainingError(f"{model}: training failed, nothing to evaluate: {training.error}")
    entry.evaluation = run_evaluation(ws, record.context, entry.plan, training, tracking=backends.tracking,
                                      progress=progress)
    entry.registration = entry.deployment_plan = None
    if entry.evaluation.status != "fail" and not dry_run:
        with progress.step(f"registering {model}"):
            entry.registration = register_candidate(record.context, entry.plan, training, entry.evaluation,
                                                    tracking=backends.tracking)
        _plan_deployment(ws, record, model, backends)
    return entry


def _plan_deployment(ws: Workspace, record: RunRecord, model: str, backends: Backends) -> None:
    """What promoting the registered candidate to promotion.on_merge would commit (a dry run)."""
    env = ws.config.promotion.on_merge
    if env:
        candidate = candidate_from_record(ws, record, model, check_merged=False)
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
) -> RunRecord:
    """Everything a pull request gets: checks, training, evaluation and the deployment plan."""
    progress = progress or NullProgress()
    record = RunRecord(context=ctx)
    path = record_path or ws.record_path
    step_promotion_requests(ws, record, backends=backends, models=models)  # first: an invalid file stops early
    for model in models or list(ws.config.models):
        with progress.step(f"{model}: plan"):
            entry = entry_for(ws, record, model, force=force)
        step_check(ws, record, model, progress=progress)
        save_record(record, path)
        if entry.checks is not None and entry.checks.status == "fail":
            entry.training = TrainingRecord(status="skipped", backend=ws.model(model).train.backend,
                                            skip_reason="data checks failed")
            continue
        step_train(ws, record, model, backends=backends, progress=progress)
        save_record(record, path)
        if entry.training and entry.training.status == "succeeded":
            step_evaluate(ws, record, model, backends=backends, progress=progress)
            save_record(record, path)
    save_record(record, path)
    return record


def step_promotion_requests(ws: Workspace, record: RunRecord, *, backends: Backends,
                            models: list[str] | None = None) -> RunRecord:
    """Plan the entries of the promotions file this change edits (promotion as code)."""
    from mlops_ci.stages.declared import plan_requests

    requests = plan_requests(ws, record.context, tracking=backends.tracking, gitops=backends.gitops)
    record.promotion_requests = [r for r in requests if models is None or r.model in models]
    return record
