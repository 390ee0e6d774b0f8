"""The report's serving section: the candidate beside the champion as the runtime served them, the
gates, and the latency distribution as a Mermaid chart. Every value from the record is masked and
escaped (a runtime's log is a pull request's output: it is shown only inside a code fence)."""

from __future__ import annotations

from mlops_ci.records import ServedModel, ServingCheckRecord
from mlops_ci.records.serving import PERCENTILES
from mlops_ci.render.charts import PALETTE, _plain
from mlops_ci.render.document import details
from mlops_ci.render.markdown import ICON, esc, fenced

MIB = 1 << 20
MAX_INPUTS_SHOWN = 20


def _cell(served: ServedModel | None, value) -> str:
    if served is None:
        return "—"
    if served.error is not None and served.latency is None and value is None:
        return "not measured"
    return value if value is not None else "—"


def _rows(record: ServingCheckRecord) -> list[str]:
    cand, champ = record.candidate, record.champion
    limit = record.memory_limit_bytes
    both = [m for m in (cand, champ) if m is not None]

    def ms(m, key):
        value = getattr(m.latency, key) if m.latency is not None else None
        return f"{value:.1f} ms" if value is not None else None

    def rss(m):
        if m.peak_memory_bytes is None:
            return None
        default = ", the default limit" if record.memory_limit_default else ""
        share = f" ({m.peak_memory_bytes / limit:.0%} of {limit / MIB:.0f} MiB{default})" if limit else ""
        return f"{m.peak_memory_bytes / MIB:.0f} MiB{share}"

    rows = [("ready after start (cold start)", lambda m: f"{m.ready_s:.1f} s" if m.ready_s is not None else None),
            ("p50", lambda m: ms(m, "p50_ms")), ("p95", lambda m: ms(m, "p95_ms")), ("p99", lambda m: ms(m, "p99_ms")),
            ("requests/s", lambda m: f"{m.latency.rps:.1f}" if m.latency is not None else None),
            ("failed requests", lambda m: f"{m.latency.errors} of {m.latency.requests}" if m.latency else None),
            ("peak memory (all processes)", rss)]
    head = "| | " + " | ".join(esc(m.label) for m in both) + " |"
    out = [head, "|---" * (len(both) + 1) + "|"]
    for name, fn in rows:
        out.append(f"| {name} | " + " | ".join(esc(_cell(m, fn(m))) for m in both) + " |")
    return out


def latency_chart(record: ServingCheckRecord) -> list[str]:
    """Latency by percentile, candidate (bars) and champion (line), in milliseconds."""
    series = [m for m in (record.candidate, record.champion)
              if m is not None and m.latency is not None and len(m.latency.percentiles_ms) == len(PERCENTILES)]
    if not series:
        return []
    top = max(max(m.latency.percentiles_ms) for m in series)
    title = "latency in ms by percentile: " + ("candidate as bars, champion as line" if len(series) == 2
                                               else "candidate")
    out = ["```mermaid", *PALETTE, "xychart-beta", f'    title "{title}"',
           "    x-axis [" + ", ".join(f'"p{q}"' for q in PERCENTILES) + "]",
           f'    y-axis "ms" 0 --> {_plain(max(1.0, round(top * 1.1, 1)))}']
    kinds = ("bar", "line")
    for kind, m in zip(kinds, series):
        out.append(f"    {kind} [" + ", ".join(_plain(round(v, 2)) for v in m.latency.percentiles_ms) + "]")
    return out + ["```"]


def serving_section(record: ServingCheckRecord | None) -> list[str]:
    if record is None:
        return []
    head = f"#### Serving check {ICON[record.status]} {record.status}" + (" (recorded)" if record.recorded else "")
    if record.status == "skipped" and record.candidate is None:
        return [head, f"Not run: {esc(record.skip_reason or 'skipped')}."]
    lat = record.candidate.latency
    load = f"{lat.requests} requests at concurrency {lat.concurrency}" if lat is not None else "no load measured"
    if record.champion is not None:
        how = (f" against {esc(record.champion.label)}, one server at a time with the same requests ({load})")
    else:
        how = f" ({load}; no champion to compare with)"
    out = [head, f"Served in {esc(record.runtime or 'the runtime')}, the runtime KServe runs for this model, on "
           f"127.0.0.1{how}.", ""]
    out += _rows(record)
    out.append("")
    out += [f"- {ICON[f.status]} {esc(f.message)}" for f in record.findings]
    first = record.parity.first if record.parity is not None else None
    if first is not None:
        inputs = [f"| {esc(k)} | {esc(v)} |" for k, v in list(first.inputs.items())[:MAX_INPUTS_SHOWN]]
        out += ["", details(f"First differing row: eval row {first.row}",
                            ["| input | value |", "|---|---|", *inputs, "",
                             f"served {esc(first.served)}, evaluation {esc(first.expected)}"])]
    for m in (record.candidate, record.champion):
        if m is not None and m.error is not None and m.log_tail:
            log = ["```text", *fenced(m.log_tail.splitlines()), "```"]
            out += ["", details(f"The runtime's last log lines ({esc(m.label)})", log)]
    chart = latency_chart(record)
    if chart:
        out += [""] + chart
    out += [""] + [f"ℹ️ {esc(n)}" for n in record.notes] if record.notes else []
    return out


__all__ = ["latency_chart", "serving_section"]
