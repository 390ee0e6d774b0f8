"""Register a candidate whose gates passed: a registry version with lineage and a digest.

Only evaluated, passing candidates reach the registry, so a failed gate (a NaN metric, a
regression) leaves nothing registered.
"""

from __future__ import annotations

from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import GateFailed
from mlops_ci.records import Context, EvaluationRecord, ModelPlan, RegistrationRecord, TrainingRecord
from mlops_ci.stages.train import lineage_tags

EVALUATION_TAG = "mlops_ci.evaluation"


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
    tags["mlops_ci.training_run"] = training.run_id or ""
    tags[EVALUATION_TAG] = "pass"
    for m in evaluation.metrics:
        if m.candidate is not None:
            tags[f"mlops_ci.metric.{m.name}"] = f"{m.candidate:.6g}"
    mv = tracking.register(plan.model, training.model_uri, run_id=training.run_id, tags=tags)
    digest = tracking.digest(mv.artifact_uri)
    tracking.set_version_tags(plan.model, mv.version, {"mlops_ci.digest": digest})
    return RegistrationRecord(name=plan.model, version=mv.version, source=mv.source, artifact_uri=mv.artifact_uri,
                              digest=digest, run_id=training.run_id)
