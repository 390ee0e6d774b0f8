"""What every record shares: the strict base model, statuses and their order, NaN kept visible."""

from __future__ import annotations

import math
from datetime import datetime, UTC
from typing import Literal

from pydantic import BaseModel, ConfigDict

RECORD_SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 8 << 20

Status = Literal["pass", "warn", "fail", "skipped"]
_SEVERITY = {"skipped": 0, "pass": 1, "warn": 2, "fail": 3}


def worst(statuses) -> Status:
    statuses = list(statuses)
    if not statuses:
        return "skipped"
    return max(statuses, key=_SEVERITY.__getitem__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _float_out(value: float | None) -> float | str | None:
    # JSON has no NaN: keep it visible as a string instead of silently dropping it
    if value is not None and math.isnan(value):
        return "NaN"
    return value
