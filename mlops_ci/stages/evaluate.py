"""Evaluate stage: the candidate and the champion on the same eval set, then the gates.

The champion is the model version holding the MLflow alias of the champion environment.
Both models are loaded through their pyfunc interface, so any MLflow model works. NaN never
passes a gate; "no champion" is an explicit state decided by evaluation.no_champion.

A candidate that was not retrained because a model was trained before from the same inputs
(see mlops_ci.stages.reuse) is not trained again, and where possible not evaluated again
either: the evaluation recorded on its run or version (its metrics, and the champion's it was
compared with) is reused when the champion is still the same version, and today's gates are
applied to it. When the champion changed since, the reused model is evaluated against the new
one (a prediction on the eval set, no training).
"""

from __future__ import annotations

import math
import time

from mlops_ci import registry
from mlops_ci.backends.tracking import ModelVersionInfo, Tracking
from mlops_ci.config.schema import EvaluationConfig
from mlops_ci.console import NullProgress, Progress
from mlops_ci.data.fetch import worktree_file
from mlops_ci.data.tables import label_missing, read_frame
from mlops_ci.data.versions import TrackedFile
from mlops_ci.errors import BackendError, DataError
from mlops_ci.metrics import METRICS
from mlops_ci.records import (ChampionRef, Context, EvaluationRecord, GateResult, MetricComparison, ModelPlan,
                              ReusedModel)
from mlops_ci.stages.suites import findings_of, run_model_suite
from mlops_ci.workspace import Workspace



def load_eval_data(ws: Workspace, plan: ModelPlan, *, source=None):
    """Features (pandas) and labels (numpy) of the eval set, plus its content id from the plan.
    ``source``: where a tracked file's content is read from (default: the work tree, checked)."""
    import numpy as np

    cfg = ws.model(plan.model)
    rel = cfg.data.eval
    version = next(dv for dv in plan.data if dv.role == "eval")
    tracked = TrackedFile.from_hash(version.path, version.head_md5)
    # a file tracked by neither git nor DVC is used as the work tree has it
    local = (source or (lambda t: worktree_file(ws.top, t)))(tracked) if tracked is not None else ws.root / rel
    frame = read_frame(local, name=rel, fmt=cfg.data.format)
    label = cfg.data.label
    if label not in frame.columns:
        raise label_missing(rel, label, frame.columns)
    y = frame.pop(label)
    if y.isna().any():
        raise DataError(f"{rel}: label column {label!r} has {int(y.isna().sum())} empty values",
                        hint="drop or fill those rows in the eval set")
    if cfg.evaluation.task == "binary_classification":
        values = set(np.unique(y.astype(str)))
        if not values <= {"0", "1", "True", "False", "0.0", "1.0"}:
            raise DataError(f"{rel}: label column {label!r} must hold 0/1 for binary_classification, "
                            f"found {sorted(values)[:5]}")
        y = positive(y)
    return frame, np.asarray(y, dtype=float), version.head_md5


def positive(y):
    """A binary label column as 0/1 (1, True, 1.0 are the positive class)."""
    return y.astype(str).isin(["1", "True", "1.0"]).astype(int)


def compute_metrics(ev: EvaluationConfig, y, predictions) -> dict[str, float]:
    table = METRICS[ev.task]
    names = ev.metrics or list(table)
    return {name: table[name].fn(y, predictions, ev.threshold) for name in names}


def _fmt(x: float | None) -> str:
    """Four decimals, as the report's tables show metrics."""
    return "n/a" if x is None else ("NaN" if math.isnan(x) else f"{x:.4f}")


def apply_gates(
    ev: EvaluationConfig, comparisons: list[MetricComparison], *, champion_present: bool, champion_label: str
) -> list[GateResult]:
    """Gate results for the candidate: every configured bound, plus 'no NaN' and 'champion'."""
    results: list[GateResult] = []
    by_name = {c.name: c for c in comparisons}
    for c in comparisons:
        if c.candidate is None or math.isnan(c.candidate):
            results.append(GateResult(metric=c.name, kind="finite", value=c.candidate, status="fail",
                                      message=f"{c.name} of the candidate is NaN: a NaN metric never passes"))
    if not champion_present:
        status = "pass" if ev.no_champion == "pass" else "fail"
        results.append(GateResult(metric="*", kind="champion", status=status,
                                  message=f"no champion ({champion_label}); evaluation.no_champion={ev.no_champion}"))
    for metric, gate in ev.gates.items():
        c = by_name[metric]
        value = c.candidate
        nan = value is None or math.isnan(value)
        if gate.min is not None:
            ok = not nan and value >= gate.min
            results.append(GateResult(metric=metric, kind="min", threshold=gate.min, value=value,
                                      status="pass" if ok else "fail",
                                      message=f"{metric} {_fmt(value)} {'≥' if ok else '<'} min {gate.min}"))
        if gate.max is not None:
            ok = not nan and value <= gate.max
            results.append(GateResult(metric=metric, kind="max", threshold=gate.max, value=value,
                                      status="pass" if ok else "fail",
                                      message=f"{metric} {_fmt(value)} {'≤' if ok else '>'} max {gate.max}"))
        if gate.max_regression is not None:
            if not champion_present:
                results.append(GateResult(metric=metric, kind="max_regression", threshold=gate.max_regression,
                                          status="skipped", message=f"{metric}: no champion to compare with"))
                continue
            champ = c.champion
            if nan or champ is None or math.isnan(champ):
                results.append(GateResult(metric=metric, kind="max_regression", threshold=gate.max_regression,
                                          status="fail", message=f"{metric}: cannot compare candidate "
                                          f"{_fmt(value)} with champion {_fmt(champ)} (NaN never passes)"))
                continue
            regression = (champ - value) if c.higher_is_better else (value - champ)
            ok = regression <= gate.max_regression
            results.append(GateResult(
                metric=metric, kind="max_regression", threshold=gate.max_regression, value=regression,
                status="pass" if ok else "fail",
                message=(f"{metric} {_fmt(value)} vs champion {_fmt(champ)}: "
                         + (f"worse by {regression:.4f} {'≤' if ok else '>'} allowed {gate.max_regression}"
                            if regression > 0 else "not worse"))))
    return results


def resolve_champion(ws: Workspace, model: str, tracking: Tracking) -> tuple[str | None, ModelVersionInfo | None]:
    """The champion environment's alias and the version holding it (None, None without one)."""
    env = ws.config.champion_env(model)
    alias = ws.config.alias_for(env) if env else None
    return alias, tracking.version_by_alias(model, alias) if alias else None


def champion_ref(model: str, alias: str, mv: ModelVersionInfo) -> ChampionRef:
    return ChampionRef(name=model, version=mv.version, alias=alias, run_id=mv.run_id,
                       model_uri=f"models:/{model}/{mv.version}")


def metric_names(ev: EvaluationConfig) -> list[str]:
    return ev.metrics or list(METRICS[ev.task])


def evaluation_tags(e: EvaluationRecord) -> dict[str, str]:
    """The evaluation as tags for the candidate's run and version (what a later reuse reads)."""
    return registry.evaluation_tags(
        "fail" if e.status == "fail" else "pass", {m.name: m.candidate for m in e.metrics},
        champion_version=e.champion.version if e.champion is not None and e.champion_state == "present" else None,
        champion_metrics={m.name: m.champion for m in e.metrics}, eval_data=e.dataset_md5)


def _record(ws: Workspace, plan: ModelPlan, comparisons: list[MetricComparison], *, candidate_uri: str,
            champion: ChampionRef | None, label: str, reused: ReusedModel, start: float) -> EvaluationRecord:
    cfg = ws.model(plan.model)
    ev = cfg.evaluation
    present = champion is not None
    gates = apply_gates(ev, comparisons, champion_present=present, champion_label=label)
    version = next((dv for dv in plan.data if dv.role == "eval"), None)
    return EvaluationRecord(status="fail" if any(g.status == "fail" for g in gates) else "pass",
                            dataset=cfg.data.eval, dataset_md5=version.head_md5 if version else None,
                            candidate_uri=candidate_uri, champion=champion,
                            champion_state="present" if present else "none", no_champion_policy=ev.no_champion,
                            metrics=comparisons, gates=gates, duration_s=round(time.monotonic() - start, 3),
                            reused=reused, recorded=True)


def recorded_evaluation(ws: Workspace, plan: ModelPlan, reused: ReusedModel, *,
                        tracking: Tracking) -> EvaluationRecord | None:
    """The evaluation recorded for a reused model, under today's gates, if it still holds: the
    champion is the model itself, or the same version it was compared with (and the same eval
    set). None when it must be evaluated again (champion changed, tags missing, model suites)."""
    start = time.monotonic()
    cfg = ws.model(plan.model)
    ev = cfg.evaluation
    if cfg.checks.suites.model_evaluation.enabled and not reused.champion:
        return None  # suites are not recorded: run them again on the reused model
    names = metric_names(ev)
    tags = (tracking.get_version(plan.model, reused.version).tags if reused.version
            else tracking.get_run(reused.run_id).tags)
    alias, mv = resolve_champion(ws, plan.model, tracking)
    table = METRICS[ev.task]
    eval_data = next((dv.head_md5 for dv in plan.data if dv.role == "eval"), None)
    if reused.champion and mv is not None:  # the champion itself: compared with itself
        metrics = registry.recorded_metrics(tags, names)
        if metrics is None:
            return None
        comparisons = [MetricComparison(name=n, higher_is_better=table[n].higher_is_better, candidate=v, champion=v)
                       for n, v in metrics.items()]
        return _record(ws, plan, comparisons, candidate_uri=reused.model_uri, champion=champion_ref(plan.model, alias, mv),
                       label=f"alias {plan.model}@{alias}", reused=reused, start=start)
    rec = registry.recorded_evaluation(tags, names)
    if rec is None or rec.champion_version != (mv.version if mv else None) or (rec.eval_data or eval_data) != eval_data:
        return None
    comparisons = [MetricComparison(name=n, higher_is_better=table[n].higher_is_better, candidate=rec.metrics[n],
                                    champion=rec.champion_metrics.get(n)) for n in names]
    champion = champion_ref(plan.model, alias, mv) if mv is not None else None
    label = f"alias {plan.model}@{alias}" if alias else "no champion environment configured"
    return _record(ws, plan, comparisons, candidate_uri=reused.model_uri, champion=champion, label=label,
                   reused=reused, start=start)


def run_evaluation(
    ws: Workspace,
    ctx: Context,
    plan: ModelPlan,
    candidate_uri: str,
    *,
    tracking: Tracking,
    progress: Progress | None = None,
    reused: ReusedModel | None = None,
) -> EvaluationRecord:
    """Predict the eval set with the candidate (``candidate_uri``) and the champion, then the gates."""
    import numpy as np

    progress = progress or NullProgress()
    model = plan.model
    cfg = ws.model(model)
    ev = cfg.evaluation
    start = time.monotonic()
    with progress.step(f"evaluating {model} on {cfg.data.eval}"):
        frame, y, data_hash = load_eval_data(ws, plan)
        scores = tracking.predict(candidate_uri, frame)
        candidate = compute_metrics(ev, y, scores)
        champion, champion_metrics, state = None, {}, "none"
        alias, mv = resolve_champion(ws, model, tracking)
        if mv is not None:
            champion = champion_ref(model, alias, mv)
            try:
                champion_metrics = compute_metrics(ev, y, tracking.predict(champion.model_uri, frame))
                state = "present"
            except BackendError as err:
                progress.log(f"champion {model} v{mv.version} could not be evaluated: {err}")
                state = "unusable"
    table = METRICS[ev.task]
    comparisons = [MetricComparison(name=n, higher_is_better=table[n].higher_is_better, candidate=v,
                                    champion=champion_metrics.get(n)) for n, v in candidate.items()]
    label = f"alias {model}@{alias}" if alias else "no champion environment configured"
    if state == "unusable":
        label += f" points at v{mv.version}, which failed to predict"
    gates = apply_gates(ev, comparisons, champion_present=state == "present", champion_label=label)
    suites = run_model_suite(ws, plan, cfg, eval_frame=frame, eval_labels=y, eval_scores=scores,
                             predict=lambda f: tracking.predict(candidate_uri, f), progress=progress)
    gates += [GateResult(metric=f.dataset, kind="suite", status="fail" if f.status == "fail" else "pass",
                         message=f.message) for r in suites for f in findings_of(r)]
    status = "fail" if any(g.status == "fail" for g in gates) else "pass"
    notes = []
    if ev.task == "binary_classification" and len(scores) and set(np.unique(scores)) <= {0.0, 1.0}:
        notes.append("every score of the candidate is exactly 0 or 1: it predicts labels, so roc_auc and log_loss "
                     "see labels, not P(class 1); log a scikit-learn classifier with "
                     "pyfunc_predict_fn='predict_proba' (see 'The model contract' in the README)")
    return EvaluationRecord(status=status, dataset=cfg.data.eval, dataset_md5=data_hash, rows=len(y), notes=notes,
                            candidate_uri=candidate_uri, champion=champion, champion_state=state,
                            no_champion_policy=ev.no_champion, metrics=comparisons, gates=gates, suites=suites,
                            duration_s=round(time.monotonic() - start, 3), reused=reused)
