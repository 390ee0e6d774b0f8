"""Train stage: run the user's training script under the configured trainer, tracked in MLflow.

mlops-ci opens the MLflow run itself (with lineage tags) and hands its id to the training
processes through ``MLFLOW_RUN_ID``, so the run exists, and is marked FAILED, even when the
script dies before logging anything. Registration happens later, only for a candidate
whose gates passed (see the evaluate stage). The metric history of the run (the training curve)
is read back from MLflow, whichever trainer ran it.

Work that cannot change the answer is skipped: when a registered version or a finished run was
trained from the same inputs (the training fingerprint: code, data, params, settings, image; see
mlops_ci.fingerprint and mlops_ci.stages.reuse), the model is not retrained (unless the plan is
forced) and that model is reused. The run and the registered version carry the fingerprint as tags.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from mlops_ci import fingerprint, registry
from mlops_ci.argo.checkout import repository_label
from mlops_ci.backends.tracking import Tracking
from mlops_ci.backends.trainers import RemoteSpec, Trainer, TrainSpec
from mlops_ci.console import NullProgress, Progress
from mlops_ci.data.tables import require_label
from mlops_ci.errors import BackendError
from mlops_ci.records import Context, ModelPlan, TrainingRecord
from mlops_ci.stages.reuse import find_reuse
from mlops_ci.workspace import Workspace

RESULT_ENV = "MLOPS_CI_RESULT"
MAX_RESULT_BYTES = 1 << 20
MAX_HISTORY = 200  # steps of the training curve kept in the record (evenly spaced, first and last kept)
experiment_name = registry.experiment_name


class _Failed(Exception):
    """Ends a progress step as failed (✘) when the trainer returned a failure."""


def sampled(points: list, limit: int) -> list:
    """At most ``limit`` evenly spaced items, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    return [points[round(i * (len(points) - 1) / (limit - 1))] for i in range(limit)]


def history_of(tracking: Tracking, run_id: str | None) -> list[dict[str, float]]:
    """The training curve of a run, from MLflow's metric history (empty if it cannot be read)."""
    if not run_id:
        return []
    try:
        return sampled(tracking.metric_history(run_id), MAX_HISTORY)
    except BackendError:
        return []


def validate_inputs(ws: Workspace, model: str) -> None:
    """Fail fast, before any process starts: data files exist and carry the label column."""
    cfg = ws.model(model)
    for rel in (cfg.data.train, cfg.data.eval):
        require_label(ws.root / rel, name=rel, label=cfg.data.label, fmt=cfg.data.format)


def build_spec(ws: Workspace, model: str, *, env: dict[str, str], result_path: Path,
               remote: RemoteSpec | None = None) -> TrainSpec:
    cfg = ws.model(model).train
    return TrainSpec(model=model, workdir=ws.root, script=cfg.script, args=tuple(cfg.args),
                     nproc_per_node=cfg.nproc_per_node, timeout_s=cfg.timeout_minutes * 60,
                     env={**cfg.env, **env}, result_path=result_path, remote=remote)


def remote_spec(ws: Workspace, ctx: Context, *, tracking_uri: str, experiment_id: str | None = None,
                run_id: str | None = None) -> RemoteSpec:
    """What a trainer off this machine needs: the commit, where it comes from, the MLflow run."""
    config_path = os.path.relpath(Path(ws.loaded.path).resolve(), ws.top.resolve()).replace(os.sep, "/")
    return RemoteSpec(config=ws.config, config_path=config_path, root=ws.top, head_sha=ctx.head_sha,
                      repository=repository_label(ctx, ws.top), pr=ctx.pr_number, tracking_uri=tracking_uri,
                      experiment_id=experiment_id, run_id=run_id)


def _read_result(path: Path) -> dict:
    if not path.is_file():
        return {}
    if path.stat().st_size > MAX_RESULT_BYTES:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def run_training(
    ws: Workspace,
    ctx: Context,
    plan: ModelPlan,
    *,
    tracking: Tracking,
    trainer: Trainer,
    progress: Progress | None = None,
    dry_run: bool = False,
    features=None,
) -> TrainingRecord:
    """``features``: this run's features stage, whose lineage (the feature repository's commit, the
    service's version) the run is tagged with."""
    progress = progress or NullProgress()
    model = plan.model
    cfg = ws.model(model)
    if "train" not in plan.stages:
        return TrainingRecord(status="skipped", backend=trainer.name,
                              skip_reason=plan.skip_reason or "nothing changed that affects training")
    fp = fingerprint.compute(ws, ctx, plan, trainer=trainer)
    reused = find_reuse(ws, ctx, plan, fp, tracking=tracking)
    if reused is not None:
        return TrainingRecord(status="skipped", backend=trainer.name, nproc_per_node=cfg.train.nproc_per_node,
                              fingerprint=fp, reused=reused,
                              history=[] if dry_run else history_of(tracking, reused.run_id), skip_reason=f"not retrained: {fp.note} (run {reused.run_id}); its model is reused")
    validate_inputs(ws, model)
    result_path = ws.state_dir / "runs" / f"{model}-{ctx.head_sha[:12]}.json"
    env = {RESULT_ENV: str(result_path), "MLOPS_CI_MODEL": model, "MLFLOW_TRACKING_URI": tracking.uri}
    spec = build_spec(ws, model, env=env, result_path=result_path,
                      remote=remote_spec(ws, ctx, tracking_uri=tracking.uri))
    command = trainer.command(spec)
    if dry_run:
        return TrainingRecord(status="skipped", backend=trainer.name, skip_reason="dry run", command=command,
                              nproc_per_node=cfg.train.nproc_per_node, fingerprint=fp)

    experiment_id = tracking.experiment(experiment_name(model))
    run_id = tracking.start_run(experiment_id, run_name=f"{model}-{ctx.head_sha[:8]}",
                                tags={**registry.lineage_tags(ctx, plan, features), **fingerprint.tags(fp)})
    spec = build_spec(ws, model, result_path=result_path,
                      env={**env, "MLFLOW_RUN_ID": run_id, "MLFLOW_EXPERIMENT_ID": experiment_id},
                      remote=remote_spec(ws, ctx, tracking_uri=tracking.uri, experiment_id=experiment_id,
                                         run_id=run_id))
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    start = time.monotonic()
    title = trainer.title(model, spec)
    record = None
    try:
        with progress.step(title):  # ends with ✘ when training failed, whatever the reason
            outcome = None
            try:
                outcome = trainer.run(spec, progress)
            finally:
                ok = outcome is not None and outcome.returncode == 0
                adopted = outcome is not None and outcome.run_id not in (None, run_id)
                # our run is KILLED when interrupted, or when an adopted Workflow's run holds the results
                tracking.end_run(run_id, "KILLED" if outcome is None or adopted else "FINISHED" if ok else "FAILED")
            if adopted:  # an earlier attempt's Workflow was adopted: its MLflow run holds the results
                run_id = outcome.run_id
            base = dict(backend=trainer.name, run_id=run_id, experiment_id=experiment_id, command=command,
                        nproc_per_node=cfg.train.nproc_per_node, duration_s=round(time.monotonic() - start, 3),
                        run_url=tracking.run_url(run_id, experiment_id), workflow=outcome.workflow,
                        workflow_url=outcome.workflow_url, fingerprint=fp)
            record = _outcome(cfg, outcome, base, result_path, tracking)
            if record.status == "failed":
                raise _Failed
    except _Failed:
        pass
    return record


def _outcome(cfg, outcome, base: dict, result_path: Path, tracking: Tracking) -> TrainingRecord:
    """The training record of a finished trainer: failed (exit code, no model, NaN) or succeeded."""
    run_id, experiment_id = base["run_id"], base["experiment_id"]
    if outcome.returncode != 0:
        code = outcome.worker_exit_code if outcome.worker_exit_code is not None else outcome.returncode
        why = (f"timed out after {cfg.train.timeout_minutes:g} min" if outcome.timed_out
               else f"exited with code {code}")
        last = outcome.error_line or next((x for x in reversed(outcome.log_tail) if x.strip()), "")
        return TrainingRecord(status="failed", error=f"{cfg.train.script} {why}: {last}"[:2000], **base)
    result = _read_result(result_path)
    run = tracking.get_run(run_id)
    model_uri = result.get("model_uri") if isinstance(result.get("model_uri"), str) else None
    model_uri = model_uri or tracking.logged_model_uri(run_id, experiment_id)
    if not model_uri:
        return TrainingRecord(status="failed", error=f"{cfg.train.script} finished but logged no model to MLflow "
                              "(log one from rank 0 inside `with mlflow.start_run():`, which resumes the run "
                              "mlops-ci opened, e.g. mlflow.pyfunc.log_model(name='model', ...))", **base)
    metrics = {k: float(v) for k, v in run.metrics.items()}
    for key, value in (result.get("metrics") or {}).items():
        if isinstance(value, (int, float)):
            metrics[str(key)] = float(value)
    nan = sorted(k for k, v in metrics.items() if math.isnan(v))
    record = TrainingRecord(status="succeeded", model_uri=model_uri, params=dict(run.params), metrics=metrics,
                            history=history_of(tracking, run_id), **base)
    if nan:
        tracking.end_run(run_id, "FAILED")
        record.status = "failed"
        record.error = f"training produced NaN for {', '.join(nan)} (run {run_id})"
    return record
