"""The note an aborted rollout leaves on the pull request that shipped the version: what was aborted,
why (the analysis, whose messages quote Prometheus and the logs: escaped), and what serves now."""

from __future__ import annotations

from mlops_ci.records.rollout import RolloutRecord
from mlops_ci.render.markdown import code, esc

MARKER = "<!-- mlops-ci:rollout -->"


def abort_note(record: RolloutRecord) -> str:
    lines = [MARKER, (f"### ❌ mlops-ci: the rollout of {esc(record.model)} v{esc(record.version)} to "
             f"{code(record.env)} was aborted"), "", esc(record.reason)]
    failing = [f for f in record.findings if f.status != "pass"]
    if failing:
        lines += ["", *[f"- {esc(f.status)} · {esc(f.source)}/{esc(f.name)}: {esc(f.message)}" for f in failing[:10]]]
    if record.commit_sha:
        lines += ["", (f"Rollback commit {code(record.commit_sha[:12])}. Automatic promotion of {esc(record.model)} into "
                  f"{code(record.env)} is on hold until `mlops-ci rollback --clear-hold --model {esc(record.model)} "
                  f"--env {esc(record.env)} --reason TEXT`.")]
    return "\n".join(lines) + "\n"


__all__ = ["MARKER", "abort_note"]
