"""The `checks.suites` section: which deepchecks suites run, and what their results mean.

A check's failed condition fails the gate unless ``statuses`` says ``warn`` or ``ignore``; a
check that crashed or did not run (or a worker that crashed) is gated by ``on_error``. The
suites themselves run in their own environment (:mod:`mlops_ci.checks.suites`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlops_ci.config.base import Action, Strict

SuiteName = Literal["data_integrity", "train_test_validation", "model_evaluation"]
SUITE_NAMES: tuple[str, ...] = ("data_integrity", "train_test_validation", "model_evaluation")


class SuiteConfig(Strict):
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


class SuitesConfig(Strict):
    data_integrity: SuiteConfig = SuiteConfig()
    train_test_validation: SuiteConfig = SuiteConfig()
    model_evaluation: SuiteConfig = SuiteConfig()

    def get(self, name: str) -> SuiteConfig:
        if name not in SUITE_NAMES:
            raise KeyError(name)
        return getattr(self, name)
