"""Register a candidate whose gates passed: a registry version with lineage and a digest.

Only evaluated, passing candidates reach the registry, so a failed gate (a NaN metric, a
regression) leaves nothing registered, unless a writer promotes it anyway (`promote --force
--reason`, which registers it then with the override recorded). Registration is idempotent per
training fingerprint (mlops_ci.registry.register_once): a retry after a crash, a rerun of the
same head, or a merge of a reviewed pull request finds the version that exists instead of
registering a duplicate. A model reused from an earlier version registers nothing.
"""

from __future__ import annotations

from mlops_ci import fingerprint, registry
from mlops_ci.backends.tracking import Tracking
from mlops_ci.errors import GateFailed
from mlops_ci.records import EvaluationRecord, Fingerprint, RegistrationRecord, ReusedModel
from mlops_ci.stages.evaluate import evaluation_tags

EVALUATION_TAG = registry.EVALUATION
DIGEST_TAG = registry.DIGEST


def failed_gates(evaluation: EvaluationRecord) -> str:
    return "; ".join(g.message for g in evaluation.gates if g.status == "fail")


def register_candidate(
    model: str,
    model_uri: str,
    *,
    run_id: str | None,
    lineage: dict[str, str],
    fp: Fingerprint | None,
    evaluation: EvaluationRecord,
    tracking: Tracking,
    override: dict[str, str] | None = None,
    serving: dict[str, str] | None = None,
) -> RegistrationRecord:
    """Register ``model_uri`` (or find the version of its fingerprint) with its lineage, fingerprint
    and evaluation (and its serving check's tags); ``override`` (registry.OVERRIDE_* tags) lets a
    candidate whose gates failed in."""
    if evaluation.status == "fail" and not override:
        raise GateFailed(f"{model}: not registered because gates failed: {failed_gates(evaluation)}")
    served = dict(serving or {})
    tags = {**lineage, **fingerprint.tags(fp), registry.TRAINING_RUN: run_id or "", **evaluation_tags(evaluation),
            **served, **(override or {})}
    mv, created = registry.register_once(tracking, model, model_uri, run_id=run_id, tags=tags)
    if not created and mv.tags.get(registry.SERVING) == "fail" and served.get(registry.SERVING) == "skipped":
        served = {}  # a check that did not run never clears one that failed
    latest = {**evaluation_tags(evaluation), **served, **(override or {})}
    if not created and any(mv.tags.get(k) != v for k, v in latest.items()):
        tracking.set_version_tags(model, mv.version, latest)  # today's evaluation of the same model
    digest = mv.tags.get(DIGEST_TAG) or tracking.digest(mv.artifact_uri)
    if mv.tags.get(DIGEST_TAG) != digest:
        tracking.set_version_tags(model, mv.version, {DIGEST_TAG: digest})
    return RegistrationRecord(name=model, version=mv.version, source=mv.source, artifact_uri=mv.artifact_uri,
                              digest=digest, run_id=run_id, reused=not created,
                              override=(override or {}).get(registry.OVERRIDE_REASON),
                              reference=mv.tags.get(registry.REFERENCE))


def reused_registration(reused: ReusedModel, *, tracking: Tracking) -> RegistrationRecord:
    """The existing version of a model reused from the registry (nothing is registered)."""
    mv = tracking.get_version(reused.name, reused.version or "")
    digest = mv.tags.get(DIGEST_TAG) or tracking.digest(mv.artifact_uri)
    return RegistrationRecord(name=mv.name, version=mv.version, source=mv.source, artifact_uri=mv.artifact_uri,
                              digest=digest, run_id=mv.run_id, reused=True, reference=mv.tags.get(registry.REFERENCE))
