"""The model registry's vocabulary: every tag mlops-ci writes on MLflow runs and model versions,
and the operations built on them.

    run (training)     lineage, fingerprint, and after evaluation: evaluation, metrics, champion
    version            the same, plus digest, origin, training run, deployed.<env>, override.*

- :func:`find_by_fingerprint`: a registered version, else a finished run with a logged model,
  that was trained from exactly these inputs. A rerun of an unchanged head, and the merge of a
  reviewed pull request, reuse it instead of training again.
- :func:`register_once`: registration is idempotent per fingerprint (or, without one, per run):
  a retry after a crash between registration and the run record finds the version it made.
- :func:`recorded_evaluation`: the evaluation a run or version carries (metrics, the champion it
  was compared with), so that a reuse can re-apply today's gates without predicting again.

Tags are plain strings; anything read back is validated here before a stage uses it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from mlops_ci.backends.tracking import ModelVersionInfo, RunInfo, Tracking

PREFIX = "mlops_ci."
# lineage: where a model was trained from (written from the trusted context, never from a record)
HEAD_SHA = "mlops_ci.head_sha"
BASE_SHA = "mlops_ci.base_sha"
EVENT = "mlops_ci.event"
REF = "mlops_ci.ref"
REPOSITORY = "mlops_ci.repository"
PR = "mlops_ci.pr"
DATA_PREFIX = "mlops_ci.data."  # + role: the content id of the train / eval data
FEATURES_COMMIT = "mlops_ci.features.commit"  # the last commit of the feature repository it was trained with
FEATURE_SERVICE = "mlops_ci.features.service"  # "<service>@<version>": the feature service it reads
GIT_COMMIT = "mlflow.source.git.commit"
# what it was trained from (see mlops_ci.fingerprint)
FINGERPRINT = "mlops_ci.fingerprint"
FINGERPRINT_PART = "mlops_ci.fingerprint."  # + component
# its evaluation
EVALUATION = "mlops_ci.evaluation"  # "pass" or "fail"
METRIC_PREFIX = "mlops_ci.metric."  # + metric: the candidate's value
CHAMPION_VERSION = "mlops_ci.champion_version"  # the champion it was compared with ("" for none)
CHAMPION_METRIC_PREFIX = "mlops_ci.champion_metric."  # + metric: the champion's value then
EVAL_DATA = "mlops_ci.eval_data"  # the eval set's content id
SERVING = "mlops_ci.serving"  # its serving check: "pass", "warn", "fail" or "skipped"
SERVING_RECORD = "mlops_ci.serving.record"  # that check's result (JSON), re-gated instead of served again
SERVING_SETTINGS = "mlops_ci.serving.settings"  # what it was measured under (a digest)
# the registered version
REFERENCE = "mlops_ci.reference"  # its run's artifact with the data and prediction profiles monitoring compares with
TRAINING_RUN = "mlops_ci.training_run"
DIGEST = "mlops_ci.digest"
ORIGIN = "mlops_ci.origin"  # "pull_request" (a pull request's run) or "trusted" (default branch, by hand)
DEPLOYED_PREFIX = "mlops_ci.deployed."  # + env: the GitOps commit that serves it there
OVERRIDE_REASON = "mlops_ci.override.reason"  # promote --force --reason of a candidate whose gates failed
OVERRIDE_BY = "mlops_ci.override.by"
OVERRIDE_GATES = "mlops_ci.override.failed_gates"

ORIGINS = ("pull_request", "trusted")
MAX_TAG_VALUE = 5000  # MLflow's limit for a tag value is 8000 characters; keep well under
_METRIC_NAME = re.compile(r"[A-Za-z0-9_./-]{1,64}")


def passed(tags: Mapping[str, str]) -> bool:
    """A version (or run) carries a passing mlops-ci evaluation and no failed serving check."""
    return tags.get(EVALUATION) == "pass" and tags.get(SERVING) != "fail"


def deployed(env: str) -> str:
    return f"{DEPLOYED_PREFIX}{env}"


def experiment_name(model: str) -> str:
    """The MLflow experiment that holds a model's training runs."""
    return f"mlops-ci/{model}"


def clip(value: str) -> str:
    return value if len(value) <= MAX_TAG_VALUE else value[:MAX_TAG_VALUE - 1] + "…"


# -- evaluation, as tags ------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordedEvaluation:
    """What a run or version says about its evaluation."""

    status: str  # "pass" or "fail"
    metrics: dict[str, float]
    champion_version: str | None  # None: evaluated without a champion
    champion_metrics: dict[str, float] = field(default_factory=dict)
    eval_data: str | None = None


def evaluation_tags(status: str, metrics: Mapping[str, float | None], *, champion_version: str | None,
                    champion_metrics: Mapping[str, float | None], eval_data: str | None) -> dict[str, str]:
    tags = {EVALUATION: status, CHAMPION_VERSION: champion_version or ""}
    for name, value in metrics.items():
        if value is not None:
            tags[METRIC_PREFIX + name] = repr(float(value))
    for name, value in champion_metrics.items():
        if value is not None:
            tags[CHAMPION_METRIC_PREFIX + name] = repr(float(value))
    if eval_data:
        tags[EVAL_DATA] = eval_data
    return tags


def _metrics(tags: Mapping[str, str], prefix: str, names: list[str]) -> dict[str, float] | None:
    out = {}
    for name in names:
        try:
            value = float(tags[prefix + name])
        except (KeyError, ValueError):
            return None
        out[name] = value
    return out


def recorded_metrics(tags: Mapping[str, str], names: list[str]) -> dict[str, float] | None:
    """The candidate metrics recorded in ``tags``; None where one is missing or NaN."""
    metrics = _metrics(tags, METRIC_PREFIX, names)
    return None if metrics is None or any(math.isnan(v) for v in metrics.values()) else metrics


def recorded_evaluation(tags: Mapping[str, str], names: list[str]) -> RecordedEvaluation | None:
    """The evaluation recorded in ``tags`` for metrics ``names``; None where one is missing or NaN
    (then the model is evaluated again) or the tags are not mlops-ci's."""
    status = tags.get(EVALUATION)
    metrics = recorded_metrics(tags, names)
    if status not in ("pass", "fail") or metrics is None:
        return None
    champion = tags.get(CHAMPION_VERSION)
    if champion is None:  # a version registered before mlops-ci recorded the comparison
        return None
    champion_metrics = (_metrics(tags, CHAMPION_METRIC_PREFIX, names) or {}) if champion else {}
    if champion and not champion_metrics:
        return None
    return RecordedEvaluation(status=status, metrics=metrics, champion_version=champion or None,
                              champion_metrics=champion_metrics, eval_data=tags.get(EVAL_DATA))


def metric_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The evaluation metrics recorded on a version, by name (for display)."""
    out = {}
    for key, value in sorted(tags.items()):
        name = key.removeprefix(METRIC_PREFIX)
        if key.startswith(METRIC_PREFIX) and _METRIC_NAME.fullmatch(name):
            try:
                out[name] = f"{float(value):.4f}"
            except ValueError:
                continue
    return out


# -- finding what was trained from the same inputs ----------------------------------------------

@dataclass(frozen=True)
class Match:
    """A model trained from the same inputs: a registered version, or a finished run."""

    run_id: str
    model_uri: str
    version: ModelVersionInfo | None = None
    run: RunInfo | None = None

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.version.tags if self.version is not None else self.run.tags if self.run else {})


def passing_first(versions: list[ModelVersionInfo]) -> list[ModelVersionInfo]:
    return sorted(versions, key=lambda v: (passed(v.tags), int(v.version)), reverse=True)


def find_by_fingerprint(tracking: Tracking, model: str, digest: str) -> Match | None:
    """The newest registered version with this fingerprint (a passing one first), else the newest
    finished training run with it that logged a model; None if nothing was trained from it."""
    versions = passing_first(tracking.search_versions(model, {FINGERPRINT: digest}))
    if versions:
        v = versions[0]
        return Match(run_id=v.run_id or v.tags.get(TRAINING_RUN, ""), model_uri=f"models:/{model}/{v.version}",
                     version=v)
    for run in tracking.search_runs(experiment_name(model), {FINGERPRINT: digest}, status="FINISHED"):
        uri = tracking.logged_model_uri(run.run_id, run.experiment_id)
        if uri:
            return Match(run_id=run.run_id, model_uri=uri, run=run)
    return None


def nearest_version(tracking: Tracking, model: str) -> ModelVersionInfo | None:
    """The newest registered version that carries a fingerprint (to say what changed since)."""
    versions = [v for v in tracking.search_versions(model, {}, limit=20) if v.tags.get(FINGERPRINT)]
    return max(versions, key=lambda v: int(v.version)) if versions else None


def register_once(tracking: Tracking, model: str, model_uri: str, *, run_id: str | None,
                  tags: dict[str, str]) -> tuple[ModelVersionInfo, bool]:
    """Register ``model_uri`` unless a version of the same fingerprint (else of the same run)
    exists already; (version, whether it was created now)."""
    key = {FINGERPRINT: tags[FINGERPRINT]} if tags.get(FINGERPRINT) else {TRAINING_RUN: run_id} if run_id else None
    if key is not None:
        existing = passing_first(tracking.search_versions(model, key))
        if existing:
            return existing[0], False
    return tracking.register(model, model_uri, run_id=run_id, tags={k: clip(v) for k, v in tags.items()}), True


# -- lineage ------------------------------------------------------------------------------------

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target", "issue_comment")


def origin_of(event: str, pr_number: int | None) -> str:
    """"pull_request" for a run on a pull request's code (its own job, or a slash command), else "trusted"."""
    return "pull_request" if event in PULL_REQUEST_EVENTS or pr_number else "trusted"


def lineage_tags(ctx, plan, features=None) -> dict[str, str]:
    """Where a model was trained from, for its run and its version: from the run's context (the
    event or the local checkout) and the features stage of this run (``features``: the feature
    repository's commit and the service's version), never from a record read from a file."""
    tags = {GIT_COMMIT: ctx.head_sha, HEAD_SHA: ctx.head_sha, EVENT: ctx.event,
            ORIGIN: origin_of(ctx.event, ctx.pr_number)}
    optional = {BASE_SHA: ctx.base_sha, REF: ctx.ref, REPOSITORY: ctx.repository,
                PR: str(ctx.pr_number) if ctx.pr_number else None}
    tags.update({k: clip(v) for k, v in optional.items() if v})
    for dv in plan.data:
        if dv.head_md5:
            tags[DATA_PREFIX + dv.role] = dv.head_md5
    if features is not None:
        tags.update(feature_tags(features, plan.model))
    return tags


def feature_tags(features, model: str) -> dict[str, str]:
    """The feature lineage of ``model`` from a features stage's result: the feature repository's
    commit and "<service>@<version>" of the service the model reads (none without one)."""
    service = features.service_of(model)
    if not service:
        return {}
    tags = {FEATURE_SERVICE: f"{service}@{features.services.get(service, 'unknown')}"}
    if features.commit:
        tags[FEATURES_COMMIT] = features.commit
    return tags


LINEAGE = (GIT_COMMIT, HEAD_SHA, BASE_SHA, EVENT, REF, REPOSITORY, PR, ORIGIN, FEATURES_COMMIT, FEATURE_SERVICE)


def lineage_from(tags: Mapping[str, str]) -> dict[str, str]:
    """The lineage tags of a run (what its training job wrote), to carry onto its version."""
    return {k: v for k, v in tags.items() if k in LINEAGE or k.startswith(DATA_PREFIX)}


# -- what a pull request without registry access reported ----------------------------------------
# A pull request from a fork runs without the registry's secret: it trains and evaluates against
# nothing, and nothing it registers survives. The trusted job that posts its report records what it
# claimed (its metrics, for its fingerprint) in an experiment of its own, never searched for models;
# the merge job, which trains those inputs once, shows its reproduction next to the claim. A claim
# is the pull request's word: it is displayed, never used to decide anything.

CLAIM_PR = "mlops_ci.claim.pr"
CLAIM_HEAD_SHA = "mlops_ci.claim.head_sha"
MAX_CLAIMS = 5


@dataclass(frozen=True)
class Claim:
    pr: int
    head_sha: str
    metrics: dict[str, float]


def claims_experiment(model: str) -> str:
    return f"mlops-ci/{model}/pull-request-claims"


def record_claim(tracking: Tracking, model: str, *, fingerprint: str, pr: int, head_sha: str,
                 metrics: Mapping[str, float]) -> None:
    """Keep what a pull request's own run reported for ``fingerprint`` (``pr`` and ``head_sha``
    come from the trusted event, not from the record)."""
    experiment = tracking.experiment(claims_experiment(model))
    run_id = tracking.start_run(experiment, run_name=f"pr-{pr}-{head_sha[:8]}",
                                tags={FINGERPRINT: fingerprint, CLAIM_PR: str(pr), CLAIM_HEAD_SHA: head_sha})
    tracking.set_run_tags(run_id, {METRIC_PREFIX + name: repr(float(value)) for name, value in metrics.items()
                                   if _METRIC_NAME.fullmatch(name) and math.isfinite(float(value))})
    tracking.end_run(run_id, "FINISHED")


def find_claims(tracking: Tracking, model: str, fingerprint: str) -> list[Claim]:
    """What pull requests reported for these inputs, newest first."""
    out = []
    for run in tracking.search_runs(claims_experiment(model), {FINGERPRINT: fingerprint}, status="FINISHED"):
        pr, head = run.tags.get(CLAIM_PR, ""), run.tags.get(CLAIM_HEAD_SHA, "")
        if not pr.isdigit() or not re.fullmatch(r"[0-9a-f]{40}", head):
            continue
        metrics = {}
        for key, value in run.tags.items():
            if key.startswith(METRIC_PREFIX) and _METRIC_NAME.fullmatch(key.removeprefix(METRIC_PREFIX)):
                try:
                    metrics[key.removeprefix(METRIC_PREFIX)] = float(value)
                except ValueError:
                    continue
        out.append(Claim(pr=int(pr), head_sha=head, metrics=metrics))
        if len(out) >= MAX_CLAIMS:
            break
    return out
