"""The gates of ``serving.check``, graded from what the serving check measured.

Each ``Threshold`` warns at or above ``warn`` and fails at or above ``fail`` (like the data
checks); a gate whose number could not be measured is ``skipped`` with the reason, never ``pass``.
"""

from __future__ import annotations

from mlops_ci.checks.compare import grade as grade_threshold
from mlops_ci.config.base import Threshold
from mlops_ci.records import ServingCheckRecord, ServingFinding

MIB = 1 << 20


def _graded(check: str, value: float, th: Threshold, what: str, *, fmt=lambda x: f"{x:g}") -> ServingFinding:
    status = grade_threshold(value, th)
    level = {"fail": th.fail, "warn": th.warn}.get(status)
    limit = f"; {status}s at {fmt(level)}" if level is not None else ""
    return ServingFinding(check=check, status=status, value=value, warn=th.warn, fail=th.fail,
                          message=f"{what}{limit}")


def _parity(record: ServingCheckRecord) -> ServingFinding:
    p = record.parity
    if p.mismatches:
        f = p.first
        return ServingFinding(check="parity", status="fail", value=float(p.mismatches), message=(
            f"{p.mismatches} of {p.rows} sample rows are answered differently than the evaluation scored them; "
            f"first: eval row {f.row}, served {_values(f.served)}, evaluation {_values(f.expected)}"))
    return ServingFinding(check="parity", status="pass", value=0.0, message=(
        f"all {p.rows} sample rows are answered as the evaluation scored them (largest difference "
        f"{p.max_abs_diff:.3g}, tolerance {p.tolerance:g})"))


def _values(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values[:5]) + (", ..." if len(values) > 5 else "") + "]"


def grade(record: ServingCheckRecord, check) -> list[ServingFinding]:
    cand, champ = record.candidate, record.champion
    if cand is None:
        return []
    if cand.error is not None:
        return [ServingFinding(check="runtime", status="fail", message=f"{cand.label}: {cand.error}")]
    out = [_parity(record)]
    lat = cand.latency
    if check.max_p99_ms.warn is not None or check.max_p99_ms.fail is not None:
        out.append(_graded("p99_ms", lat.p99_ms, check.max_p99_ms, f"p99 latency {lat.p99_ms:.1f} ms",
                            fmt=lambda x: f"{x:g} ms"))
    if champ is None:
        out.append(ServingFinding(check="latency_ratio", status="skipped",
                                  message="no champion to compare with: the latency ratio is not graded"))
    elif champ.error is not None or champ.latency is None or not champ.latency.p99_ms:
        out.append(ServingFinding(check="latency_ratio", status="skipped", message=(
            f"{champ.label} could not be served here ({champ.error}): the latency ratio is not graded")))
    else:
        ratio = lat.p99_ms / champ.latency.p99_ms
        out.append(_graded("latency_ratio", round(ratio, 3), check.max_latency_ratio,
                           f"p99 {lat.p99_ms:.1f} ms is {ratio:.2f}x {champ.label}'s {champ.latency.p99_ms:.1f} ms",
                           fmt=lambda x: f"{x:g}x"))
    limit = record.memory_limit_bytes
    if cand.peak_memory_bytes is None or not limit:
        out.append(ServingFinding(check="memory_share", status="skipped", message=(
            "peak memory cannot be measured on this machine (no /proc): the memory gate is not graded")))
    else:
        share = cand.peak_memory_bytes / limit
        over = ": the pod would be OOMKilled" if share >= 1 else ""
        out.append(_graded("memory_share", round(share, 4), check.max_memory_share,
                           f"peak memory {cand.peak_memory_bytes / MIB:.0f} MiB is {share:.0%} of limits.memory "
                           f"({limit / MIB:.0f} MiB{', the default' if record.memory_limit_default else ''}){over}",
                           fmt=lambda x: f"{x:.0%}"))
    out.append(_graded("cold_start_s", cand.ready_s, check.max_cold_start_s,
                       f"ready {cand.ready_s:.1f} s after the runtime started", fmt=lambda x: f"{x:g} s"))
    return out


__all__ = ["grade"]
