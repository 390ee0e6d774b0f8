"""The deepchecks suites' results as the record keeps them: what the core made of the worker's
answer (mlops_ci.checks.suites), never deepchecks' own objects.

A check's ``status`` is what deepchecks said; its ``outcome`` is what that means for the gate
after the suite's policy (``statuses`` for failed conditions, ``on_error`` for checks that
crashed or did not run). The suite's ``status`` is the worst outcome of its checks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# the same names as mlops_ci.config.suites.SUITE_NAMES (records do not import config)
SuiteName = Literal["data_integrity", "train_test_validation", "model_evaluation"]

# pass/warn/fail: the check ran and its worst condition said so (pass when it has none).
# error: the check raised, or one of its conditions did. not_run: it is in the suite but the
# worker produced no result for it. skipped: deepchecks said it does not apply to these inputs
# (no datetime or index column, no model object, too few samples); the reason is in `error`.
CheckStatus = Literal["pass", "warn", "fail", "error", "not_run", "skipped"]
Outcome = Literal["pass", "warn", "fail", "ignored"]
SuiteStatus = Literal["pass", "warn", "fail", "error"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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
