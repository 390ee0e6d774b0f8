"""The stages of a model's run, as an ordered list.

    check -> train -> evaluate -> serve -> register -> deployment

A :class:`Stage` names the result it produces (its key in ``ModelRecord.results``), the results it
reads (``needs``) and how a failure names it. :func:`run_stages` runs some of them in this order:
a stage's new result forgets every result that (transitively) needs it, so a retrained model is
never shown with the evaluation of the previous one. Adding a stage is one function here (or in
its own module), one entry in :data:`STAGES`, its result type in mlops_ci.records and its renderer
in mlops_ci.render.report.SECTIONS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mlops_ci import registry
from mlops_ci.console import Progress
from mlops_ci.errors import TrainingError
from mlops_ci.lineage import Source
from mlops_ci.pipeline.flow import Backends, stage, throwaway
from mlops_ci.records import ClaimedResult, EvaluationRecord, ModelRecord, RunRecord, TrainingRecord
from mlops_ci.records.run import StageResult
from mlops_ci.workspace import Workspace


@dataclass
class Step:
    """What a stage works with: the run's record, the model's entry, the backends, and how it runs."""

    ws: Workspace
    record: RunRecord
    entry: ModelRecord
    backends: Backends
    progress: Progress
    dry_run: bool = False
    backend: str | None = None  # a trainer asked for on the command line
    ran: list[str] = field(default_factory=list)  # the stages already run in this call

    @property
    def model(self) -> str:
        return self.entry.model


@dataclass(frozen=True)
class Stage:
    name: str  # its result's key in ModelRecord.results
    run: Callable[[Step], StageResult | None]  # its result; None: nothing to record (its inputs are missing)
    needs: tuple[str, ...] = ()  # the results it reads
    label: str = ""  # how a failure names it (default: its name)


def _check(step: Step) -> StageResult:
    from mlops_ci.stages.check import run_checks

    return run_checks(step.ws, step.record.context, step.entry.plan, progress=step.progress)


def _train(step: Step) -> StageResult:
    from mlops_ci.stages.train import run_training

    trainer = step.backends.trainer(step.backend or step.ws.model(step.model).train.backend)
    failed = step.record.features.failed_for(step.model) if step.record.features is not None else []
    if failed:  # a breaking change to what it reads, or skew in what it would be served: nothing to register
        return TrainingRecord(status="skipped", backend=trainer.name,
                              skip_reason="the feature checks failed: " + "; ".join(failed)[:1000])
    checks = step.entry.checks
    if "check" in step.ran and checks is not None and checks.status == "fail":
        return TrainingRecord(status="skipped", backend=trainer.name, skip_reason="data checks failed")
    return run_training(step.ws, step.record.context, step.entry.plan, tracking=step.backends.tracking,
                        trainer=trainer, progress=step.progress, dry_run=step.dry_run,
                        features=step.record.features)


def _evaluate(step: Step) -> EvaluationRecord | None:
    """Evaluate the candidate just trained, or re-gate (else evaluate) the model it reuses; kept as
    tags on its run (and on a reused version), so a rerun of the same inputs re-gates instead of
    predicting again."""
    from mlops_ci.stages.evaluate import recorded_evaluation, run_evaluation

    training, entry, ws, tracking = step.entry.training, step.entry, step.ws, step.backends.tracking
    if training is None or (training.status == "skipped" and training.reused is None):
        return None
    if training.status == "failed":
        raise TrainingError(f"{step.model}: training failed, nothing to evaluate: {training.error}")
    reused, ctx = training.reused, step.record.context
    if reused is None:
        ev = run_evaluation(ws, ctx, entry.plan, training.model_uri, tracking=tracking, progress=step.progress)
        fp = training.fingerprint
        if fp is not None and fp.digest:  # trained here: a pull request without registry access may have
            ev.claims = [ClaimedResult(pr=c.pr, head_sha=c.head_sha, metrics=c.metrics)  # reported these inputs
                         for c in registry.find_claims(tracking, entry.model, fp.digest)]
    else:
        ev = (recorded_evaluation(ws, entry.plan, reused, tracking=tracking)
              or run_evaluation(ws, ctx, entry.plan, reused.model_uri, tracking=tracking, progress=step.progress,
                                reused=reused))
    if not step.dry_run:
        _keep_evaluation(step, ev)
    return ev


def _keep_evaluation(step: Step, ev: EvaluationRecord) -> None:
    from mlops_ci.stages.evaluate import evaluation_tags

    tracking, training = step.backends.tracking, step.entry.training
    tags = evaluation_tags(ev)
    run_id = training.run_id or (training.reused.run_id if training.reused else None)
    if run_id:
        run_tags = tracking.get_run(run_id).tags if training.reused else {}
        if any(run_tags.get(k) != v for k, v in tags.items()):
            tracking.set_run_tags(run_id, tags)
    version = training.reused.version if training.reused else None
    if version and not ev.recorded and ev.status != "fail":
        tracking.set_version_tags(step.model, version, tags)


def _serve(step: Step) -> StageResult | None:
    """Serve the evaluated candidate in the runtime KServe will run, against the champion it was
    evaluated with (mlops_ci.stages.serve); nothing to serve before an evaluation or after a failed one."""
    from mlops_ci.stages.serve import recorded_serving, run_serving_check, serving_tags

    ev, training = step.entry.evaluation, step.entry.training
    if ev is None or step.dry_run:
        return None
    if ev.status == "fail":
        from mlops_ci.records import ServingCheckRecord

        return ServingCheckRecord(status="skipped", skip_reason="the evaluation failed: nothing will be served")
    reused = training.reused if training is not None else None
    champion = ev.champion if ev.champion_state == "present" and not (reused and reused.champion) else None
    if reused is not None:
        label, version = reused.label, reused.version
    else:
        label, version = f"the candidate (run {(training.run_id or '')[:8]})", None
    serving, tracking = step.ws.model(step.model).serving, step.backends.tracking
    if reused is not None and reused.version:
        recorded = recorded_serving(tracking.get_version(step.model, reused.version).tags, serving, champion)
        if recorded is not None:
            if recorded.candidate is not None:
                recorded.candidate = recorded.candidate.model_copy(update={"label": label, "version": version})
            return recorded
    result = run_serving_check(step.ws, step.entry.plan, candidate_uri=ev.candidate_uri, candidate_label=label,
                               candidate_version=version, champion=champion, tracking=tracking,
                               progress=step.progress)
    if result.status == "skipped" and reused is not None and reused.version:
        # a check turned off (or a runtime that cannot run here) never clears what one found before
        if tracking.get_version(step.model, reused.version).tags.get(registry.SERVING) == "fail":
            result.notes.append(f"{reused.label} failed its last serving check: it is promoted only with "
                                "--force --reason until a serving check passes")
        return result
    _keep_serving(step, serving_tags(result, serving))
    return result


def _keep_serving(step: Step, tags: dict[str, str]) -> None:
    """The serving check as tags of the candidate's run and of a reused version: a version whose
    serving check failed is promoted only with --force --reason, however it is named."""
    tracking, training = step.backends.tracking, step.entry.training
    reused = training.reused
    run_id = training.run_id or (reused.run_id if reused else None)
    if run_id:
        tracking.set_run_tags(run_id, tags)
    if reused is not None and reused.version and not throwaway(step.record):
        tracking.set_version_tags(step.model, reused.version, tags)


def _register(step: Step) -> StageResult | None:
    """A candidate that passed its evaluation and its serving check becomes a version (not in a dry
    run, nor from a job whose registry dies with it); a reused version is only read."""
    from mlops_ci.stages.register import register_candidate, reused_registration
    from mlops_ci.stages.serve import serving_tags

    ev, training, tracking = step.entry.evaluation, step.entry.training, step.backends.tracking
    serving = step.entry.serving
    if ev is None or ev.status == "fail" or (serving is not None and serving.status == "fail"):
        return None
    reused = training.reused
    if reused is not None and reused.version:
        return reused_registration(reused, tracking=tracking)
    if step.dry_run or throwaway(step.record):
        return None
    with step.progress.step(f"registering {step.model}"):
        lineage = (registry.lineage_tags(step.record.context, step.entry.plan, step.record.features) if reused is None
                   else registry.lineage_from(tracking.get_run(reused.run_id).tags))
        model_uri, run_id = training.model_uri or reused.model_uri, training.run_id or reused.run_id
        rec = register_candidate(step.model, model_uri, run_id=run_id, lineage=lineage, fp=training.fingerprint,
                                 evaluation=ev, tracking=tracking,
                                 serving=serving_tags(serving, step.ws.model(step.model).serving) if serving else None)
    if not rec.reused and run_id:
        rec.reference = _reference(step, rec.version, run_id, model_uri)
    return rec


def _reference(step: Step, version: str, run_id: str, model_uri: str) -> str | None:
    """Store what monitoring will compare the version's traffic with; a failure here is said and
    leaves the version registered (monitoring builds the reference on first use instead)."""
    from mlops_ci.errors import FatalError
    from mlops_ci.stages.reference import keep_reference

    try:
        with step.progress.step(f"storing the reference profiles of {step.model} v{version}"):
            return keep_reference(step.ws, step.entry.plan, name=step.model, version=version, run_id=run_id,
                                  model_uri=model_uri, tracking=step.backends.tracking)
    except (FatalError, OSError) as err:
        step.progress.log(f"the reference of {step.model} v{version} was not stored: {err}")
        return None


def _deployment(step: Step) -> StageResult | None:
    """What promoting the registered candidate to promotion.on_merge would commit: the same
    resolution as `promote --dry-run` from this context."""
    from mlops_ci.stages.candidate import choose
    from mlops_ci.stages.promote import promote

    env = step.ws.config.promotion.on_merge
    if step.entry.registration is None or not env:
        return None
    backends = step.backends
    candidate = choose(step.ws, backends.tracking, step.model, source=Source.of(step.record.context),
                       record=step.record, check_merged=False)
    return promote(step.ws, candidate, env, tracking=backends.tracking, gitops=backends.gitops, dry_run=True)


STAGES: list[Stage] = [
    Stage("check", _check),
    Stage("train", _train),  # a failed check stops it in the same call (it reads nothing the check wrote)
    Stage("evaluate", _evaluate, needs=("train",)),
    Stage("serve", _serve, needs=("evaluate",), label="serving check"),
    Stage("register", _register, needs=("evaluate", "serve")),
    Stage("deployment", _deployment, needs=("register",), label="deployment plan"),
]
AFTER_TRAINING = ("evaluate", "serve", "register", "deployment")


def dependents(name: str) -> list[str]:
    """The stages whose results (transitively) rest on ``name``'s."""
    out: list[str] = []
    for s in STAGES:
        if any(n == name or n in out for n in s.needs):
            out.append(s.name)
    return out


def run_stages(step: Step, names: Sequence[str] | None = None, *,
               after_each: Callable[[str], None] | None = None) -> ModelRecord:
    """Run the stages called ``names`` (None: all of them), in :data:`STAGES` order, into ``step.entry``."""
    for s in STAGES:
        if names is not None and s.name not in names:
            continue
        with stage(s.label or s.name, step.model):
            result = s.run(step)
        for later in dependents(s.name):
            step.entry.set_result(later, None)
        step.entry.set_result(s.name, result)
        step.ran.append(s.name)
        if after_each is not None:
            after_each(s.name)
    return step.entry


__all__ = ["AFTER_TRAINING", "STAGES", "Stage", "Step", "dependents", "run_stages"]
