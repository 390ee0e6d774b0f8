"""Typed config and results of the deepchecks suites: what the core sees, never deepchecks itself.

A check's ``status`` is what deepchecks said; its ``outcome`` is what that means for the gate
after the suite's policy (``statuses`` for failed conditions, ``on_error`` for checks that
crashed or did not run). The suite's ``status`` is the worst outcome of its checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SuiteName = Literal["data_integrity", "train_test_validation", "model_evaluation"]
SUITE_NAMES: tuple[str, ...] = ("data_integrity", "train_test_validation", "model_evaluation")
Task = Literal["binary", "multiclass", "regression"]
Action = Literal["fail", "warn", "ignore"]

# pass/warn/fail: the check ran and its worst condition said so (pass when it has none).
# error: the check raised, or one of its conditions did. not_run: it is in the suite but the
# worker produced no result for it. skipped: deepchecks said it does not apply to these inputs
# (no datetime or index column, no model object, too few samples); the reason is in `error`.
CheckStatus = Literal["pass", "warn", "fail", "error", "not_run", "skipped"]
Outcome = Literal["pass", "warn", "fail", "ignored"]
SuiteStatus = Literal["pass", "warn", "fail", "error"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SuiteConfig(_Strict):
    enabled: bool = False
    on_error: Action = Field(
        default="fail",
        description="what a check that crashed or did not run (or a worker that crashed) means",
    )
    sample_rows: int = Field(
        default=100_000, ge=100, description="rows per frame at most, stratified by label"
    )
    timeout_minutes: float = Field(default=30, gt=0, le=24 * 60)
    conditions: dict[str, dict[str, dict[str, Any] | None]] = Field(
        default_factory=dict,
        description=(
            "replaces a check's conditions: check name (FeatureDrift or 'Feature Drift') -> "
            "condition method (add_condition_drift_score_less_than or drift_score_less_than) "
            "-> its keyword arguments; an empty mapping removes all of the check's conditions"
        ),
    )
    statuses: dict[str, Action] = Field(
        default_factory=dict,
        description="what a failed condition of a check means (default: fail)",
    )


class SuitesConfig(_Strict):
    data_integrity: SuiteConfig = SuiteConfig()
    train_test_validation: SuiteConfig = SuiteConfig()
    model_evaluation: SuiteConfig = SuiteConfig()

    def get(self, name: str) -> SuiteConfig:
        if name not in SUITE_NAMES:
            raise KeyError(name)
        return getattr(self, name)


class SuiteSpec(_Strict):
    """One suite to run: its name and its config (``SuitesConfig.get(name)``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: SuiteName
    config: SuiteConfig = SuiteConfig()


class ConditionOutcome(_Strict):
    name: str
    status: Literal["pass", "warn", "fail", "error"]
    message: str = ""


class SuiteCheckResult(_Strict):
    name: str = Field(description="the check's class name, e.g. FeatureDrift")
    header: str = Field(description="its title in the report, e.g. 'Feature Drift'")
    dataset: Literal["train", "test"] | None = Field(
        default=None, description="for single-dataset checks run on both frames"
    )
    status: CheckStatus
    outcome: Outcome
    conditions: list[ConditionOutcome] = Field(default_factory=list)
    values: dict[str, float] = Field(
        default_factory=dict, description="numbers from the check's value, e.g. 'x1.Drift score'"
    )
    error: str | None = None
    duration_s: float | None = None


class SuiteResult(_Strict):
    suite: SuiteName
    status: SuiteStatus = Field(
        description="pass/warn/fail: the verdict; error: the suite produced no results and "
        "its on_error is 'ignore', so it does not gate"
    )
    checks: list[SuiteCheckResult] = Field(default_factory=list)
    html_path: str | None = None
    result_path: str | None = None
    duration_s: float
    sampled_rows: dict[str, int] = Field(
        default_factory=dict, description="rows sent to the worker per frame (train, test)"
    )
    total_rows: dict[str, int] = Field(default_factory=dict)
    error: str | None = None
    deepchecks_version: str | None = None

    @property
    def blocking(self) -> bool:
        return self.status == "fail"

    def failed_checks(self) -> list[SuiteCheckResult]:
        return [check for check in self.checks if check.outcome == "fail"]


# --- what the worker writes: untrusted, so bounded and strict ------------------------------------

Text = Annotated[str, StringConstraints(max_length=4000)]


class _Untrusted(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class WorkerCondition(_Untrusted):
    name: Text
    status: Literal["pass", "warn", "fail", "error"]
    message: Text = ""


class WorkerCheck(_Untrusted):
    name: Annotated[str, StringConstraints(max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    header: Text
    dataset: Literal["train", "test"] | None = None
    status: CheckStatus
    conditions: list[WorkerCondition] = Field(default_factory=list, max_length=100)
    values: dict[Annotated[str, StringConstraints(max_length=200)], float] = Field(
        default_factory=dict, max_length=1000)
    error: Text | None = None
    duration_s: float | None = Field(default=None, ge=0)


class WorkerResult(_Untrusted):
    protocol: int
    suite: Annotated[str, StringConstraints(max_length=100)]
    deepchecks_version: Annotated[str, StringConstraints(max_length=50)] | None = None
    duration_s: float = Field(ge=0)
    html: Annotated[str, StringConstraints(max_length=4096)] | None = None
    html_error: Text | None = None
    checks: list[WorkerCheck] = Field(max_length=1000)


@dataclass(frozen=True)
class Predictions:
    """Precomputed model outputs, row-aligned with the frames (no model crosses the boundary).

    ``y_proba_*`` are arrays of shape (rows, classes) whose columns follow ``classes``;
    ``classes`` is required with probabilities (sorted labels, as scikit-learn's
    ``model.classes_``).
    """

    y_pred_train: Any = None
    y_pred_test: Any = None
    y_proba_train: Any = None
    y_proba_test: Any = None
    classes: list[Any] | None = None
