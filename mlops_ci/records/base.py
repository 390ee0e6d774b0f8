"""What every record shares: the strict base model, statuses and their order, NaN kept visible, and
the constrained types every field uses: a record read from a file is untrusted input, so every
string is checked at load (SHAs, pull request numbers, owner/name, names and versions, content
ids; one-line identifiers refuse control characters) and every string and list is capped."""

from __future__ import annotations

import math
import re
from datetime import datetime, UTC
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

RECORD_SCHEMA_VERSION = 2  # 2: a model's results keyed by stage (1 is still read)
MAX_RECORD_BYTES = 8 << 20

Status = Literal["pass", "warn", "fail", "skipped"]
_SEVERITY = {"skipped": 0, "pass": 1, "warn": 2, "fail": 3}


def worst(statuses) -> Status:
    statuses = list(statuses)
    if not statuses:
        return "skipped"
    return max(statuses, key=_SEVERITY.__getitem__)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=1 << 18)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters (newlines included) are not allowed here")
    return value


# patterns are Rust regexes (pydantic-core): `$` is the end of the text, never before a newline
Sha = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
# "feat:": data written from the feature store (mlops_ci.features.data.content_id)
ContentId = Annotated[str, StringConstraints(pattern=r"^(md5:[0-9a-f]{32}|git:[0-9a-f]{40}|feat:[0-9a-f]{40})$")]
Repository = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")]
ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")]
Version = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,9}$")]
RunId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
PrNumber = Annotated[int, Field(ge=1, le=10**9)]
Ident = Annotated[str, StringConstraints(max_length=256), AfterValidator(_one_line)]  # names, refs, stages
PathText = Annotated[str, StringConstraints(max_length=1024), AfterValidator(_one_line)]
UriText = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_one_line)]
Message = Annotated[str, StringConstraints(max_length=8192)]
LongText = Annotated[str, StringConstraints(max_length=65536)]


def float_out(value: float | None) -> float | str | None:
    # JSON has no NaN: keep it visible as a string instead of silently dropping it
    if value is not None and math.isnan(value):
        return "NaN"
    return value
