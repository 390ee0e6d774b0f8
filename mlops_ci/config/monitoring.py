"""`monitoring`: where a model's served traffic is logged, how it is cut into windows and graded
against the served version's reference, and when a retraining pull request is opened.

Thresholds use the grammar of ``checks``: ``warn`` and ``fail`` levels, a level left out keeps
its default, null turns it off.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, ValidationError, model_validator

from mlops_ci.config.base import Strict, Threshold, duration_setting, setting_errors
from mlops_ci.config.checks import ChecksConfig, ColumnChecks, DriftChecks, NullChecks

_PARTIAL = "; a level left out keeps this default, null turns it off"
# ``30m``, ``12h``, ``1d``, ``2w`` as a timedelta (ValueError otherwise)
parse_duration, Duration = duration_setting("mhdw", "30m, 12h, 1d or 2w", digits=5)


class LabelsConfig(Strict):
    """Ground truth that arrives after the predictions: a table joined to the logged rows."""

    path: str = Field(min_length=1, description="a CSV or Parquet file, or a glob of them (relative to the "
                      "repository, or any fsspec URL)")
    id_column: str = Field(default="id", min_length=1, description="the table's column holding the key")
    key: str = Field(default="request", description="what id_column matches: `request` (the logged request's "
                     "id; its rows in order when a request holds several) or the name of a feature column "
                     "sent in the request")
    label: str | None = Field(default=None, description="the table's column holding the truth (default: the "
                              "model's data.label)")


class RetrainConfig(Strict):
    """When served traffic says the model should be retrained, and how its data is refreshed."""

    enabled: bool = True
    after: int = Field(default=3, ge=1, le=100, description="consecutive windows (the latest ones) whose "
                       "drift is at fail")
    on_metric: bool = Field(default=True, description="also when a live metric (over the labelled rows of "
                            "the latest window) is below its evaluation gate's min or above its max")
    command: list[str] | None = Field(default=None, min_length=1, description="the repository's command that "
                                      "refreshes the data, as a list of arguments (no shell), run at the "
                                      "repository's root with MLOPS_CI_WINDOW_START and MLOPS_CI_WINDOW_END "
                                      "(ISO 8601, UTC) in its environment and mlops-ci's interpreter first on "
                                      "PATH: e.g. [dvc, repro, fetch-data] or [python, refresh.py]")
    command_timeout_s: float = Field(default=3600, gt=0, le=24 * 3600)
    snooze: Duration = Field(default="7d", description="after a retraining pull request is closed unmerged, "
                             "no new one for this long")


class MonitoringConfig(Strict):
    """Served traffic, read from KServe's payload logs, against the served version's reference."""

    logs: str | None = Field(default=None, description="where KServe's logger stores the payloads (a local "
                             "folder, or s3://, gs://, az:// through fsspec); default: serving.logging.url when "
                             "it logs to storage. The model's objects are under <logs>/<namespace>/<model>/")
    window: Duration = Field(default="1d", description="the width of one window of traffic")
    windows: int = Field(default=7, ge=1, le=366, description="windows graded, the latest ending at --until")
    min_rows: int = Field(default=200, ge=1, description="a window with fewer predicted rows is "
                          "`insufficient data`, never pass")
    drift: DriftChecks = Field(default=DriftChecks(), description="features and predictions against the "
                               "reference, as in checks.drift")
    nulls: NullChecks = Field(default=NullChecks(), description="null rates against the training data's")
    out_of_range: Threshold = Field(default=Threshold(warn=0.01, fail=0.05), description="share of a numeric "
                                    "feature's values outside the training data's [min, max]" + _PARTIAL)
    columns: dict[str, ColumnChecks] = Field(default={}, description="per-column overrides")
    ignore_columns: list[str] = Field(default=[], description="columns left out of the comparison, added to "
                                      "checks.ignore_columns (identifiers, dates: new values every day)")
    labels: LabelsConfig | None = None
    retrain: RetrainConfig = RetrainConfig()

    @model_validator(mode="after")
    def _levels_make_sense(self) -> MonitoringConfig:
        th = self.out_of_range
        if th.warn is not None and th.fail is not None and th.warn > th.fail:
            raise ValidationError.from_exception_data(type(self).__name__, setting_errors(
                [("out_of_range", th.model_dump(), f"warn {th.warn:g} is above fail {th.fail:g}: swap them")]))
        if any(level is not None and level > 1 for level in (th.warn, th.fail)):
            raise ValidationError.from_exception_data(type(self).__name__, setting_errors(
                [("out_of_range", th.model_dump(), "a share of the values: 0.01 is 1%")]))
        return self

    def width(self) -> timedelta:
        return parse_duration(self.window)

    def as_checks(self, label: str) -> ChecksConfig:
        """The thresholds as the checks' comparison takes them: drift, nulls, overrides; no row count
        (traffic volume is reported, not graded) and the label left out (it is not in traffic)."""
        from mlops_ci.config.checks import RowChecks

        return ChecksConfig(drift=self.drift, nulls=self.nulls, columns=self.columns,
                            ignore_columns=[*self.ignore_columns, label],
                            rows=RowChecks(max_change=Threshold(warn=None, fail=None)))


__all__ = ["Duration", "LabelsConfig", "MonitoringConfig", "RetrainConfig", "parse_duration"]
