"""deepchecks suites as part of the check and evaluate stages.

`data_integrity` and `train_test_validation` run on the head's train and eval data (a row
sample stratified by label, taken while streaming the files); `model_evaluation` runs on the
candidate's predictions for the eval set and a train sample. The suites run in their own
environment (:mod:`mlops_ci.checks.suites`); this module only picks the inputs and turns the
results into findings. A suite that crashed or did not run fails the gate unless its config
says ``on_error: warn`` or ``ignore``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.checks.suites.models import Predictions, SuiteSpec
from mlops_ci.config.schema import ModelConfig
from mlops_ci.console import Progress
from mlops_ci.data.fetch import worktree_file
from mlops_ci.data.sample import sample_file
from mlops_ci.data.versions import TrackedFile
from mlops_ci.records import Finding, ModelPlan
from mlops_ci.records.suites import SuiteResult
from mlops_ci.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DATA_SUITES = ("data_integrity", "train_test_validation")
TASKS = {"binary_classification": "binary", "regression": "regression"}


def enabled(cfg: ModelConfig, names) -> list[SuiteSpec]:
    return [SuiteSpec(name=n, config=cfg.checks.suites.get(n)) for n in names if cfg.checks.suites.get(n).enabled]


def _local(ws: Workspace, plan: ModelPlan, role: str) -> tuple[Path, str]:
    version = next(dv for dv in plan.data if dv.role == role)
    tracked = TrackedFile.from_hash(version.path, version.head_md5)
    return (worktree_file(ws.top, tracked) if tracked is not None else ws.root / version.path), version.path


def _sample(ws: Workspace, plan: ModelPlan, cfg: ModelConfig, role: str, cap: int) -> pd.DataFrame:
    local, name = _local(ws, plan, role)
    frame, _ = sample_file(local, name=name, label=cfg.data.label, cap=cap, fmt=cfg.data.format)
    return frame


def _binary(labels: pd.Series) -> pd.Series:
    return labels.astype(str).isin(["1", "True", "true", "1.0"]).astype(int)


def findings_of(result: SuiteResult) -> list[Finding]:
    """One finding per check that warned or failed, and one for a suite that did not run."""
    found = []
    for check in result.checks:
        if check.outcome not in ("warn", "fail"):
            continue
        reasons = [c.message or c.name for c in check.conditions if c.status != "pass"]
        if check.error:
            reasons.append(f"{check.status}: {check.error}")
        where = f" ({check.dataset})" if check.dataset else ""
        found.append(Finding(check="suite", dataset=result.suite, status=check.outcome,
                             message=f"deepchecks {check.header}{where}: " + "; ".join(reasons or [check.status])))
    if result.error and result.status in ("warn", "fail"):
        found.append(Finding(check="suite", dataset=result.suite, status=result.status,
                             message=f"deepchecks {result.suite} did not run: {result.error.splitlines()[0]}"))
    return found


def run_data_suites(ws: Workspace, plan: ModelPlan, cfg: ModelConfig, *,
                    progress: Progress) -> list[SuiteResult]:
    from mlops_ci.checks.suites.env import ensure_env
    from mlops_ci.checks.suites.runner import run_suite

    specs = enabled(cfg, DATA_SUITES)
    if not specs:
        return []
    cap = max(spec.config.sample_rows for spec in specs)
    with progress.step(f"sampling {cfg.data.train} and {cfg.data.eval} for deepchecks (≤ {cap:,} rows each)"):
        train = _sample(ws, plan, cfg, "train", cap)
        test = _sample(ws, plan, cfg, "eval", cap)
    env = ensure_env(progress=progress)
    task = TASKS[cfg.evaluation.task]
    return [run_suite(spec, train=train, test=test, label=cfg.data.label, task=task, env=env,
                      out_dir=ws.state_dir / "suites" / plan.model / spec.name, progress=progress)
            for spec in specs]


def run_model_suite(ws: Workspace, plan: ModelPlan, cfg: ModelConfig, *, eval_frame: pd.DataFrame,
                    eval_labels: np.ndarray, eval_scores, predict, progress: Progress) -> list[SuiteResult]:
    """model_evaluation on the candidate: ``predict(frame)`` scores a train sample the same way."""
    import numpy as np

    from mlops_ci.checks.suites.env import ensure_env
    from mlops_ci.checks.suites.runner import run_suite

    specs = enabled(cfg, ("model_evaluation",))
    if not specs:
        return []
    spec = specs[0]
    label = cfg.data.label
    train = _sample(ws, plan, cfg, "train", spec.config.sample_rows)
    test = eval_frame.assign(**{label: eval_labels})
    task = TASKS[cfg.evaluation.task]
    if task == "binary":
        train[label] = _binary(train[label])
        test[label] = test[label].astype(int)
        train_scores = np.asarray(predict(train.drop(columns=[label])), dtype=float).reshape(-1)
        test_scores = np.asarray(eval_scores, dtype=float).reshape(-1)
        threshold = cfg.evaluation.threshold
        preds = Predictions(
            y_proba_train=np.column_stack([1 - train_scores, train_scores]),
            y_proba_test=np.column_stack([1 - test_scores, test_scores]),
            y_pred_train=(train_scores >= threshold).astype(int),
            y_pred_test=(test_scores >= threshold).astype(int), classes=[0, 1])
    else:
        preds = Predictions(y_pred_train=np.asarray(predict(train.drop(columns=[label])), dtype=float).reshape(-1),
                            y_pred_test=np.asarray(eval_scores, dtype=float).reshape(-1))
    env = ensure_env(progress=progress)
    return [run_suite(spec, train=train, test=test, label=label, task=task, predictions=preds, env=env,
                      out_dir=ws.state_dir / "suites" / plan.model / spec.name, progress=progress)]
