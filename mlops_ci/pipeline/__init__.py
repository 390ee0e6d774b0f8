"""The flow for one head commit: plan, then each model's stages (mlops_ci.pipeline.stages.STAGES):

    check -> train -> evaluate -> serve -> register -> deployment (the plan of what merging would commit)

The CLI commands (`check`, `train`, `evaluate`, `run`) and the demo run these same stages. What the
run will need later is checked first (:func:`preflight`), so a missing GitOps remote or an
unreachable MLflow never costs a training. Every run writes a record for its own head, failed or
not: a stage that stops the run leaves its name and its one-line error in ``RunRecord.failure``
(:func:`recording`).
"""

from __future__ import annotations

from pathlib import Path

from mlops_ci.console import NullProgress, Progress
from mlops_ci.pipeline.flow import (Backends, default_backends, entry_for, new_record, open_record, preflight,
                                    recording, registry_kind, stage, throwaway)
from mlops_ci.pipeline.stages import AFTER_TRAINING, STAGES, Stage, Step, run_stages
from mlops_ci.records import Context, ModelRecord, RunRecord, save_record
from mlops_ci.workspace import Workspace


def _step(ws: Workspace, record: RunRecord, model: str, *, backends: Backends | None, progress: Progress,
          force: bool = False, dry_run: bool = False, backend: str | None = None) -> Step:
    entry = entry_for(ws, record, model, force=force, tracking=backends.tracking if backends else None,
                      progress=progress)
    return Step(ws=ws, record=record, entry=entry, backends=backends,
                progress=progress, dry_run=dry_run, backend=backend)


def step_check(ws: Workspace, record: RunRecord, model: str, *, progress: Progress, force: bool = False) -> ModelRecord:
    return run_stages(_step(ws, record, model, backends=None, progress=progress, force=force), ["check"])


def step_train(ws: Workspace, record: RunRecord, model: str, *, backends: Backends, progress: Progress,
               force: bool = False, dry_run: bool = False, backend: str | None = None) -> ModelRecord:
    """Train; a model not retrained (reused) is then evaluated, registered and planned as a trained one is."""
    step = _step(ws, record, model, backends=backends, progress=progress, force=force, dry_run=dry_run,
                 backend=backend)
    entry = run_stages(step, ["train"])
    if not dry_run and entry.training.reused is not None:
        run_stages(step, AFTER_TRAINING)
    return entry


def step_evaluate(ws: Workspace, record: RunRecord, model: str, *, backends: Backends,
                  progress: Progress, dry_run: bool = False) -> ModelRecord:
    """Evaluate (or re-gate a reused model), serve it as KServe will, then register a passing
    candidate (not in a dry run) and plan its deployment."""
    record.model(model)  # the model must have been trained (or planned) in this record
    return run_stages(_step(ws, record, model, backends=backends, progress=progress, dry_run=dry_run),
                      AFTER_TRAINING)


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
                step = _step(ws, record, model, backends=backends, progress=progress, force=force)
            run_stages(step, after_each=lambda _: save_record(record, path))
    return record


def step_promotion_requests(ws: Workspace, record: RunRecord, *, backends: Backends,
                            models: list[str] | None = None) -> RunRecord:
    """Plan the entries of the promotions file this change edits (promotion as code)."""
    from mlops_ci.stages.declared import plan_requests

    requests = plan_requests(ws, record.context, tracking=backends.tracking, gitops=backends.gitops)
    record.promotion_requests = [r for r in requests if models is None or r.model in models]
    return record


__all__ = ["STAGES", "Backends", "Stage", "default_backends", "entry_for", "new_record", "open_record", "plan_pipeline",
           "preflight", "recording", "registry_kind", "run_pipeline", "run_stages", "stage", "step_check",
           "step_evaluate", "step_promotion_requests", "step_train", "throwaway"]
