"""Train stage: run the user's training script under the configured trainer, tracked in MLflow.

mlops-ci opens the MLflow run itself (with lineage tags) and hands its id to the training
processes through ``MLFLOW_RUN_ID``, so the run exists, and is marked FAILED, even when the
script dies before logging anything. Registration happens later, only for a candidate
whose gates passed (see the evaluate stage).

Work that cannot change the answer is skipped: when the training fingerprint (code, data,
params, settings, image; see mlops_ci.fingerprint) equals the one recorded on the champion's
version, the model is not retrained (unless the plan is forced) and the champion's model and
metrics are reused. The run and the registered version carry the fingerprint as tags.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from mlops_ci import fingerprint
from mlops_ci.argo.checkout import repository_label
from mlops_ci.backends.tracking import Tracking
from mlops_ci.backends.trainers import RemoteSpec, Trainer, TrainSpec
from mlops_ci.console import NullProgress, Progress
from mlops_ci.data.fetch import worktree_file
from mlops_ci.data.tables import require_label
from mlops_ci.data.versions import TrackedFile
from mlops_ci.errors import BackendError, DataError
from mlops_ci.records import ChampionRef, Context, Fingerprint, ModelPlan, TrainingRecord
from mlops_ci.stages.evaluate import champion_ref, recorded_metrics, resolve_champion
from mlops_ci.workspace import Workspace

RESULT_ENV = "MLOPS_CI_RESULT"
MAX_RESULT_BYTES = 1 << 20


def experiment_name(model: str) -> str:
    return f"mlops-ci/{model}"


def lineage_tags(ctx: Context, plan: ModelPlan) -> dict[str, str]:
    tags = {
        "mlflow.source.git.commit": ctx.head_sha,
        "mlops_ci.head_sha": ctx.head_sha,
        "mlops_ci.event": ctx.event,
    }
    optional = {"mlops_ci.base_sha": ctx.base_sha, "mlops_ci.ref": ctx.ref,
                "mlops_ci.repository": ctx.repository,
                "mlops_ci.pr": str(ctx.pr_number) if ctx.pr_number else None}
    tags.update({k: v for k, v in optional.items() if v})
    for dv in plan.data:
        if dv.head_md5:
            tags[f"mlops_ci.data.{dv.role}"] = dv.head_md5
    return tags


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


def champion_to_reuse(ws: Workspace, plan: ModelPlan, fp: Fingerprint, *, tracking: Tracking,
                      backend: str) -> ChampionRef | None:
    """The champion when it was trained from the same inputs as this candidate and its metrics
    can be reused; else None, with the reason in ``fp.note``. Never for a forced plan."""
    model = plan.model
    if plan.forced:
        fp.note = "retrained because of --force (not compared with the champion)"
        return None
    try:
        alias, mv = resolve_champion(ws, model, tracking)
    except BackendError as err:
        fp.note = f"the champion could not be read, so it was not compared: {err.message}"
        return None
    if mv is None:
        fp.note = (f"no champion ({model}@{alias} is not set) to compare with" if alias
                   else "no champion environment configured to compare with")
        return None
    if not fingerprint.compare(fp, mv.tags, version=mv.version):
        return None
    if recorded_metrics(ws.model(model).evaluation, mv) is None:
        fp.note += ", but its version has no recorded metrics to reuse: retrained"
        return None
    if backend != "argo":  # local training reads the work tree's data: it must be the committed version
        for dv in plan.data:
            tracked = TrackedFile.from_hash(dv.path, dv.head_md5)
            try:
                if tracked is not None:
                    worktree_file(ws.top, tracked)
            except DataError as err:
                fp.note += f", but the work tree's data is not the committed version ({err.message}): retrained"
                return None
    return champion_ref(model, alias, mv)


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
) -> TrainingRecord:
    progress = progress or NullProgress()
    model = plan.model
    cfg = ws.model(model)
    if "train" not in plan.stages:
        return TrainingRecord(status="skipped", backend=trainer.name,
                              skip_reason=plan.skip_reason or "nothing changed that affects training")
    fp = fingerprint.compute(ws, ctx, plan, backend=trainer.name)
    reused = champion_to_reuse(ws, plan, fp, tracking=tracking, backend=trainer.name)
    if reused is not None:
        return TrainingRecord(status="skipped", backend=trainer.name, nproc_per_node=cfg.train.nproc_per_node,
                              fingerprint=fp, reused_from=reused,
                              skip_reason=f"not retrained: {fp.note} (run {reused.run_id or 'unknown'}); "
                                          "its model and metrics are reused")
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
                                tags={**lineage_tags(ctx, plan), **fingerprint.tags(fp)})
    spec = build_spec(ws, model, result_path=result_path,
                      env={**env, "MLFLOW_RUN_ID": run_id, "MLFLOW_EXPERIMENT_ID": experiment_id},
                      remote=remote_spec(ws, ctx, tracking_uri=tracking.uri, experiment_id=experiment_id,
                                         run_id=run_id))
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    start = time.monotonic()
    outcome = None
    try:
        title = (f"training {model}: {cfg.train.nproc_per_node} processes (torchrun)" if trainer.name == "torchrun"
                 else f"training {model} on {trainer.name}")
        with progress.step(title):
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
                              "(log one with mlflow.pyfunc.log_model(name='model', ...) from rank 0)", **base)
    metrics = {k: float(v) for k, v in run.metrics.items()}
    for key, value in (result.get("metrics") or {}).items():
        if isinstance(value, (int, float)):
            metrics[str(key)] = float(value)
    nan = sorted(k for k, v in metrics.items() if math.isnan(v))
    record = TrainingRecord(status="succeeded", model_uri=model_uri, params=dict(run.params), metrics=metrics, **base)
    if nan:
        tracking.end_run(run_id, "FAILED")
        record.status = "failed"
        record.error = f"training produced NaN for {', '.join(nan)} (run {run_id})"
    return record
