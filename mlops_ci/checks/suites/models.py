"""What the core sends to and reads from the deepchecks worker: the suite to run, the
precomputed predictions, and the worker's result (untrusted, so bounded and strict).

The suites' config lives in :mod:`mlops_ci.config.suites`, their results as the record keeps
them in :mod:`mlops_ci.records.suites`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mlops_ci.config.suites import SuiteConfig, SuiteName
from mlops_ci.records.suites import CheckStatus

Task = Literal["binary", "multiclass", "regression"]


class SuiteSpec(BaseModel):
    """One suite to run: its name and its config (``SuitesConfig.get(name)``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: SuiteName
    config: SuiteConfig = SuiteConfig()


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
