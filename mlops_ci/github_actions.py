"""The one place that writes GitHub Actions' step files: outputs and the job summary.

``$GITHUB_OUTPUT`` gets every value in the multiline form ``name<<DELIMITER`` with a random
delimiter, so a value (which may come from a pull request) cannot end the block early and set
other outputs. ``$GITHUB_STEP_SUMMARY`` gets the report, trimmed to the 1 MiB GitHub shows.
Outside Actions (the variables unset) both are no-ops. Everything written is masked.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path

from mlops_ci.errors import InputError
from mlops_ci.masking import mask

SUMMARY_LIMIT_BYTES = 1 << 20  # GitHub refuses a step summary over 1 MiB
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _env_path(name: str, env: Mapping[str, str] | None) -> Path | None:
    value = (os.environ if env is None else env).get(name)
    return Path(value) if value else None


def format_output(name: str, value: object, *, delimiter: str | None = None) -> str:
    """One ``$GITHUB_OUTPUT`` entry: ``name<<ghadelimiter_<hex>``, the value, the delimiter."""
    if not _NAME.fullmatch(name):
        raise InputError(f"{name!r} is not a valid GitHub Actions output name",
                         hint="use letters, digits, '_' and '-', starting with a letter or '_'")
    text = mask("" if value is None else str(value))
    delimiter = delimiter or f"ghadelimiter_{uuid.uuid4().hex}"
    if delimiter in text or delimiter in name:
        raise InputError(f"the value of output {name!r} contains its delimiter {delimiter!r}; "
                         "refusing to write it, as it could set other outputs",
                         hint="this should not happen with a random delimiter: check where the value comes from")
    return f"{name}<<{delimiter}\n{text}\n{delimiter}\n"


def set_outputs(values: Mapping[str, object], *, env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``values`` to ``$GITHUB_OUTPUT``; returns the file, or None outside Actions."""
    path = _env_path("GITHUB_OUTPUT", env)
    if path is None:
        return None
    text = "".join(format_output(name, value) for name, value in values.items())
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
    return path


def fit_summary(markdown: str, *, limit_bytes: int = SUMMARY_LIMIT_BYTES, pointer: str) -> str:
    """``markdown`` (masked) in at most ``limit_bytes`` of UTF-8, trimmed with a note if needed."""
    from mlops_ci.render.document import masked
    from mlops_ci.render.report import fit_report

    text = masked(markdown)
    limit = limit_bytes
    fitted = text
    while len(fitted.encode("utf-8")) > limit_bytes and limit > 0:
        size = len(fitted.encode("utf-8"))
        limit = min(limit - 1, int(len(fitted) * limit_bytes / size) - 16)
        fitted = fit_report(text, max(limit, 0), pointer)
    return fitted


def append_summary(markdown: str, *, env: Mapping[str, str] | None = None,
                   pointer: str = "the full report is in the uploaded run record") -> Path | None:
    """Append the report to ``$GITHUB_STEP_SUMMARY`` (≤ 1 MiB); None outside Actions."""
    path = _env_path("GITHUB_STEP_SUMMARY", env)
    if path is None:
        return None
    used = path.stat().st_size if path.exists() else 0  # earlier writes of this step count too
    text = fit_summary(markdown, pointer=pointer, limit_bytes=max(SUMMARY_LIMIT_BYTES - used - 1, 0))
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    return path
