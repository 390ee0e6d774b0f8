"""The `checks` section of a model: data checks and their warn/fail thresholds.

Every ``Threshold`` setting given in part keeps the rest of its default (see
:class:`mlops_ci.config.base.Strict`); a column's override keeps the rest of the model-level
threshold it overrides (:meth:`ChecksConfig.column_thresholds`).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator

from pydantic import BaseModel, Field

from mlops_ci.config.base import Action, Strict, Threshold
from mlops_ci.config.suites import SuitesConfig

_PARTIAL = "; a level left out keeps this default, null turns it off"


class DriftChecks(Strict):
    """Drift of each feature column, as effect sizes (no p-values: at large n everything is "significant")."""

    psi: Threshold = Field(default=Threshold(warn=0.1, fail=0.25),
                           description="population stability index" + _PARTIAL)
    js: Threshold = Field(default=Threshold(warn=0.1, fail=0.2), description="Jensen–Shannon distance, base 2"
                          + _PARTIAL)
    wasserstein: Threshold = Field(
        default=Threshold(warn=0.1, fail=0.25),
        description="numeric columns: Wasserstein (earth mover's) distance over the base's standard deviation"
        + _PARTIAL,
    )
    new_categories: Action = Field(default="warn", description="categories the base never had")
    bins: int = Field(default=10, ge=2, le=100, description="histogram bins, edges from base quantiles")
    top_categories: int = Field(default=20, ge=1, le=1000, description="categories compared one by one; "
                                "the rest are summed as one")


class LabelChecks(Strict):
    """Drift of the label column (class balance or target distribution), graded on its own."""

    psi: Threshold = Field(default=Threshold(warn=0.05, fail=0.2), description="population stability index"
                           + _PARTIAL)
    js: Threshold = Field(default=Threshold(warn=0.05, fail=0.15), description="Jensen–Shannon distance, base 2"
                          + _PARTIAL)
    wasserstein: Threshold = Field(default=Threshold(warn=0.1, fail=0.25),
                                   description="numeric labels: Wasserstein distance over the base's standard "
                                   "deviation" + _PARTIAL)
    new_classes: Action = Field(default="fail", description="label values the base never had")


class NullChecks(Strict):
    max_increase: Threshold = Field(
        default=Threshold(warn=0.02, fail=0.10),
        description="relative to base: increase of a column's null rate, head minus base" + _PARTIAL,
    )
    max_rate: Threshold = Field(default=Threshold(), description="absolute: a column's null rate in the head"
                                + _PARTIAL)
    all_null: Action = Field(default="warn", description="a column with no values at all")


class RowChecks(Strict):
    min: int | None = Field(default=None, ge=0, description="absolute: fewer rows than this fails")
    max_change: Threshold = Field(
        default=Threshold(warn=0.5), description="relative to base: |head rows - base rows| / base rows" + _PARTIAL
    )


class SchemaChecks(Strict):
    added: Action = "warn"
    removed: Action = "fail"
    retyped: Action = "fail"
    mixed_types: Action = Field(default="warn", description="a CSV column holding numbers and text")


_OVERRIDE = ("; a level left out keeps the model-level threshold's ({}), null turns it off for this column")


class ColumnChecks(Strict):
    """Overrides for one column; what is left out falls back to the model-level settings above."""

    psi: Threshold | None = Field(default=None, description="PSI" + _OVERRIDE.format("drift.psi, or label.psi "
                                                                                     "for the label column"))
    js: Threshold | None = Field(default=None, description="Jensen–Shannon distance" + _OVERRIDE.format(
        "drift.js, or label.js for the label column"))
    wasserstein: Threshold | None = Field(default=None, description="Wasserstein distance / σ" + _OVERRIDE.format(
        "drift.wasserstein, or label.wasserstein for the label column"))
    max_null_increase: Threshold | None = Field(default=None, description="null rate increase"
                                                + _OVERRIDE.format("nulls.max_increase"))
    max_null_rate: Threshold | None = Field(default=None, description="null rate" + _OVERRIDE.format(
        "nulls.max_rate"))


class ChecksConfig(Strict):
    enabled: bool = True
    drift: DriftChecks = DriftChecks()
    label: LabelChecks = LabelChecks()
    nulls: NullChecks = NullChecks()
    rows: RowChecks = RowChecks()
    schema_: SchemaChecks = Field(default=SchemaChecks(), alias="schema")
    columns: dict[str, ColumnChecks] = Field(default={}, description="per-column overrides")
    ignore_columns: list[str] = []
    max_categories: int = Field(default=1000, ge=10, le=100_000,
                                description="distinct values counted exactly per column; beyond, approximate")
    sample_size: int = Field(default=16_384, ge=256, le=1_000_000,
                             description="rows kept for quantiles and Wasserstein distance")
    memory_limit_mb: int = Field(default=1024, ge=64, description="memory profiling may use; files stream")
    suites: SuitesConfig = Field(
        default=SuitesConfig(),
        description="deepchecks suites, run in their own environment: data_integrity and "
        "train_test_validation on the head's train and eval data, model_evaluation on the candidate",
    )

    def column_thresholds(self, column: str, *, is_label: bool) -> dict[str, Threshold]:
        """The thresholds that grade ``column``, keyed like :class:`ColumnChecks`: the model-level
        ones (``label`` for the label column, else ``drift``; ``nulls``), each merged with the
        column's override, level by level."""
        scores = self.label if is_label else self.drift
        model_level = {"psi": scores.psi, "js": scores.js, "wasserstein": scores.wasserstein,
                       "max_null_increase": self.nulls.max_increase, "max_null_rate": self.nulls.max_rate}
        over = self.columns.get(column) or ColumnChecks()
        return {key: th.overridden_by(getattr(over, key)) for key, th in model_level.items()}


def threshold_fields(model: type[BaseModel] = ChecksConfig,
                     prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Threshold]]:
    """``(path, default)`` of every ``Threshold`` setting with a default in ``model`` and the
    sections under it, by the keys written in the file (``("drift", "psi")``, ...)."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = field.annotation
        if annotation is Threshold and isinstance(field.default, Threshold):
            yield prefix + (key,), field.default
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from threshold_fields(annotation, prefix + (key,))


def setting(model: BaseModel, path: tuple[str, ...]) -> typing.Any:
    """The value at ``path`` (keys as written in the file, aliases included) under ``model``."""
    node: typing.Any = model
    for key in path:
        name = next(n for n, f in type(node).model_fields.items() if key in (n, f.alias))
        node = getattr(node, name)
    return node
