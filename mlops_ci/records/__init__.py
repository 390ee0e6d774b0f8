"""Typed records passed between stages, collected into one versioned RunRecord document.

The report is rendered only from a RunRecord, so `mlops-ci report` can run later and
elsewhere from an uploaded record. A record read from a file is untrusted input: it is
size-capped and validated against these models (unknown keys are refused). One module per
part: ``context`` (where and why, the plan), ``checks``, ``model`` (training, evaluation,
registration), ``serving`` (the serving check), ``promotion`` (promotions, requests, rollbacks), ``run`` (the document).
"""

from __future__ import annotations

from mlops_ci.records.base import MAX_RECORD_BYTES, RECORD_SCHEMA_VERSION, Record, Status, worst
from mlops_ci.records.context import Context, DataVersion, ModelPlan
from mlops_ci.records.checks import ChecksRecord, ColumnSummary, DatasetCheck, Finding
from mlops_ci.records.model import (
    ChampionRef, ClaimedResult, EvaluationRecord, Fingerprint, GateResult, MetricComparison,
    RegistrationRecord, ReusedModel, TrainingRecord)
from mlops_ci.records.serving import (Latency, Parity, ParityMismatch, ServedModel, ServingCheckRecord,
                                      ServingFinding)
from mlops_ci.records.features import FeaturesRecord
from mlops_ci.records.promotion import FileChange, PromotionRecord, PromotionRequest, RollbackRecord
from mlops_ci.records.run import (STAGE_NAMES, ModelRecord, RunRecord, StageFailure, StageResult, load_record, save_record,
                                  write_text_atomic)

__all__ = [
    "ChampionRef", "ChecksRecord", "ClaimedResult", "ColumnSummary", "Context", "DataVersion", "DatasetCheck",
    "EvaluationRecord", "FeaturesRecord", "FileChange", "Finding", "Fingerprint", "GateResult", "MAX_RECORD_BYTES",
    "MetricComparison", "ModelPlan", "ModelRecord", "PromotionRecord", "PromotionRequest",
    "RECORD_SCHEMA_VERSION", "Record", "RegistrationRecord", "ReusedModel", "RollbackRecord", "RunRecord",
    "STAGE_NAMES", "Latency", "Parity", "ParityMismatch", "ServedModel", "ServingCheckRecord", "ServingFinding",
    "StageFailure", "StageResult", "Status", "TrainingRecord", "load_record", "save_record", "worst", "write_text_atomic"
]
