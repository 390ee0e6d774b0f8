"""Register a candidate whose gates passed: a registry version with lineage and a digest.

Only evaluated, passing candidates reach the registry, so a failed gate (a NaN metric, a
regression) leaves nothing registered. A candidate that was not retrained (the champion was
trained from the same inputs) registers nothing either: its record names the champion's
existing version, so promoting it is a no-op where the champion is served.
"""

from __future__ import annotations

from mlops_ci import fingerprint
from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import GateFailed, InputError
from mlops_ci.records import Context, EvaluationRecord, ModelPlan, RegistrationRecord, TrainingRecord
from mlops_ci.stages.evaluate import METRIC_TAG_PREFIX
from mlops_ci.stages.train import lineage_tags

EVALUATION_TAG = "mlops_ci.evaluation"
DIGEST_TAG = "mlops_ci.digest"


def register_candidate(
    ctx: Context,
    plan: ModelPlan,
    training: TrainingRecord,
    evaluation: EvaluationRecord,
    *,
    tracking: Tracking,
) -> RegistrationRecord:
    if evaluation.status == "fail":
        failed = "; ".join(g.message for g in evaluation.gates if g.status == "fail")
        raise GateFailed(f"{plan.model}: not registered because gates failed: {failed}")
    tags = lineage_tags(ctx, plan)
    tags.update(fingerprint.tags(training.fingerprint))
    tags["mlops_ci.training_run"] = training.run_id or ""
    tags[EVALUATION_TAG] = "pass"
    for m in evaluation.metrics:
        if m.candidate is not None:
            tags[f"{METRIC_TAG_PREFIX}{m.name}"] = f"{m.candidate:.6g}"
    mv = tracking.register(plan.model, training.model_uri, run_id=training.run_id, tags=tags)
    digest = tracking.digest(mv.artifact_uri)
    tracking.set_version_tags(plan.model, mv.version, {DIGEST_TAG: digest})
    return RegistrationRecord(name=plan.model, version=mv.version, source=mv.source, artifact_uri=mv.artifact_uri,
                              digest=digest, run_id=training.run_id)


def reused_registration(plan: ModelPlan, training: TrainingRecord, *, tracking: Tracking) -> RegistrationRecord:
    """The champion's existing version for a candidate that was not retrained (nothing is registered)."""
    ref = training.reused_from
    if ref is None:
        raise InputError(f"{plan.model}: training was not reused from a champion")
    mv = tracking.get_version(ref.name, ref.version)
    digest = mv.tags.get(DIGEST_TAG) or tracking.digest(mv.artifact_uri)
    return RegistrationRecord(name=mv.name, version=mv.version, source=mv.source, artifact_uri=mv.artifact_uri,
                              digest=digest, run_id=mv.run_id, reused=True)
