"""The state of a run: the backends it uses, its record for the head commit, and how a failure is
recorded (the stage that stopped it and its one-line error)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlops_ci import registry
from mlops_ci.backends.gitops import GitOpsRemote
from mlops_ci.backends.tracking import Tracking
from mlops_ci.backends.trainers import Trainer, trainer_for
from mlops_ci.errors import ExitCode, FatalError
from mlops_ci.plan import plan_model
from mlops_ci.records import Context, ModelRecord, RunRecord, StageFailure, load_record, save_record
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


def _registry_or_none(ws: Workspace):
    from mlops_ci.backends.tracking import tracking_for

    try:
        tracking = tracking_for(ws)
        tracking.ping()
        return tracking
    except Exception:  # unreachable: every model counts as served (a breaking change then fails)
        return None


def features_for(ws: Workspace, record: RunRecord, *, tracking=None, progress=None):
    """This run's features stage (once per record): None without a ``features`` section."""
    if ws.config.features is not None and record.features is None:
        from mlops_ci.stages.features import run_features

        if tracking is None:  # `check` runs without backends: which models are served needs the registry
            tracking = _registry_or_none(ws)
        with stage("features"):
            record.features = run_features(ws, record.context, tracking=tracking, progress=progress)
    return record.features


def entry_for(ws: Workspace, record: RunRecord, model: str, *, force: bool = False, tracking=None,
              progress=None) -> ModelRecord:
    entry = record.models.get(model)
    if entry is None or force:
        features = features_for(ws, record, tracking=tracking, progress=progress)
        entry = ModelRecord(model=model, plan=plan_model(ws, record.context, model, force=force, features=features))
        record.models[model] = entry
    return entry


