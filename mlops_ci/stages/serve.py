"""The serving check: the candidate served in the runtime KServe will run, against the champion.

For each model (the candidate, then the champion: one server at a time, so on a small runner
neither competes with the other for the cores and the numbers compare), from its registry
artifact on free loopback ports (mlops_ci.runtime):

1. cold start: the process started until ``/v2/health/ready`` and the model are ready;
2. the sample of eval rows sent one per request (for the champion, the same requests as its
   warm-up): the candidate's answers must equal the evaluation's pyfunc scores (parity);
3. latency: ``requests`` requests from ``concurrency`` clients in a closed loop, p50/p95/p99
   and requests/s;
4. memory: the peak memory of the runtime's processes (their proportional set sizes) from start
   to the end of the load, against ``serving.limits.memory``.

Then the gates of ``serving.check`` grade the numbers (:mod:`mlops_ci.stages.serve_gates`). A
runtime that cannot run here is ``skipped`` with the reason, never ``pass``.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

from mlops_ci.config.serving import quantity_value
from mlops_ci.console import NullProgress, Progress
from mlops_ci.errors import BackendError, InputError
from mlops_ci.records import ModelPlan, Parity, ParityMismatch, ServedModel, ServingCheckRecord, worst
from mlops_ci.records.serving import PERCENTILES, Latency
from mlops_ci.stages.serve_gates import grade
from mlops_ci.workspace import Workspace

MAX_BODY_TEXT = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(text: str, limit: int = MAX_BODY_TEXT) -> str:
    return " ".join(str(text).split())[:limit]


def _score(values) -> list[float]:
    """A served answer's outputs as the evaluation scores them: a row's last column (P(class 1) of
    a two-column probability output), else its only value (Tracking.predict's rule)."""
    import numpy as np

    from mlops_ci.metrics import row_scores

    return row_scores(np.asarray(values, dtype=float)).reshape(-1).tolist()


MAX_LOG_TAIL = 6000  # characters of the runtime's log kept in the record (its last ones)
LOAD_DEADLINE_S = 300.0  # the most a load may take: a hung predict fails the check, never hangs the run
PORT_TAKEN = "address already in use"


class _Failed(Exception):
    """A served model could not be measured: the one-line reason, and the runtime's log tail."""

    def __init__(self, message: str, log_tail: str | None = None):
        super().__init__(_one_line(message, 1000))
        self.log_tail = log_tail[-MAX_LOG_TAIL:] if log_tail else log_tail


def _latency(load, concurrency: int) -> Latency:
    from mlops_ci.runtime.load import percentile_ms

    lat = load.latencies_s
    ok = len(lat)

    def at(q):
        return round(percentile_ms(lat, q), 3) if ok else None

    return Latency(requests=len(load.answers), concurrency=concurrency, errors=len(load.errors),
                   wall_s=round(load.wall_s, 4), p50_ms=at(50), p95_ms=at(95), p99_ms=at(99),
                   rps=round(ok / load.wall_s, 2) if load.wall_s > 0 else 0.0,
                   percentiles_ms=[at(q) for q in PERCENTILES] if ok else [])


def _refusal(server, answer, rows: list[int], what: str) -> _Failed:
    if not server.alive():
        return _Failed(f"MLServer exited (code {server.proc.returncode}) while answering {what}", server.log_tail())
    text = answer.body.decode("utf-8", "replace")
    try:
        text = json.loads(text).get("error", text)
    except (ValueError, AttributeError):
        pass
    if answer.status == 0:
        return _Failed(f"no answer to eval row {rows[answer.index]} ({_one_line(text)})", server.log_tail())
    return _Failed(f"MLServer answered HTTP {answer.status} to eval row {rows[answer.index]}: {_one_line(text)}",
                   server.log_tail())


def serve_one(served: ServedModel, *, model_dir: Path, name: str, bodies: list[bytes], rows: list[int], check,
              workdir: Path, progress: Progress) -> list[list[float]]:
    """Serve ``model_dir``, fill ``served`` with what was measured and return its answers to ``bodies``
    (one score list per row). Raises :class:`_Failed` when the model could not be measured."""
    from mlops_ci.runtime import mlserver
    from mlops_ci.runtime.load import PeakMemory, drive
    from mlops_ci.runtime.v2 import outputs
    from mlops_ci.toolenv import EnvBuildError

    try:
        env = mlserver.environment(model_dir, progress=progress)
    except InputError as err:  # a requirement line of the model's that is not installed from its files
        raise _Failed(f"the model's requirements cannot be installed: {err}") from err
    except (EnvBuildError, BackendError, OSError) as err:
        lines = [line for line in str(err).splitlines() if line.strip()]
        last = " / ".join(line.strip() for line in lines[1:][-2:])
        raise _Failed(f"the runtime's environment could not be built: {_one_line(lines[0] if lines else err, 300)}"
                      + (f"; pip's last lines: {_one_line(last, 400)}" if last else ""), str(err)) from err
    with progress.step(f"serving {served.label} of {name} in MLServer"):
        for attempt in (1, 2):  # a free port taken by someone else before MLServer bound it: once more
            try:
                return _measure(served, mlserver.MLServer(env, model_dir, name, workdir / f"try-{attempt}"),
                                bodies=bodies, rows=rows, check=check)
            except _Failed as err:
                if attempt == 2 or PORT_TAKEN not in (err.log_tail or "").lower() or served.ready_s is not None:
                    raise
    raise AssertionError("unreachable")


def _measure(served: ServedModel, server, *, bodies: list[bytes], rows: list[int], check) -> list[list[float]]:
    from mlops_ci.runtime import mlserver
    from mlops_ci.runtime.load import PeakMemory, drive
    from mlops_ci.runtime.v2 import outputs

    try:
        server.start()
    except OSError as err:
        raise _Failed(f"MLServer could not start: {err}") from err
    with server:
        with PeakMemory(server.proc.pid) as peak:
            try:
                served.ready_s = round(server.wait_ready(check.ready_timeout_s), 3)
            except mlserver.ServeError as err:
                first = str(err).splitlines()[0]
                raise _Failed(first, server.log_tail()) from err
            parity = drive(server.infer_url, bodies, requests=len(bodies), concurrency=check.concurrency,
                           stop_on_error=True, alive=server.alive, deadline_s=LOAD_DEADLINE_S)
            bad = next((a for a in parity.answers if a.status != 200), None)
            if bad is not None:
                raise _refusal(server, bad, rows, "the sample rows")
            answers = []
            for answer in parity.answers:
                try:
                    answers.append(_score(outputs(json.loads(answer.body))))
                except (ValueError, TypeError) as err:
                    raise _Failed(f"MLServer's answer to eval row {rows[answer.index]} holds no numeric output: "
                                  f"{_one_line(err)}") from err
            if len(parity.answers) < len(bodies):
                raise _Failed(f"the sample rows were not all answered within {LOAD_DEADLINE_S:.0f}s "
                              f"({len(parity.answers)} of {len(bodies)})", server.log_tail())
            load = drive(server.infer_url, bodies, requests=check.requests, concurrency=check.concurrency,
                         alive=server.alive, deadline_s=LOAD_DEADLINE_S)
        served.peak_memory_bytes = peak.peak
        served.latency = _latency(load, check.concurrency)
        if load.errors:
            first = load.errors[0]
            failed = _refusal(server, first, rows, f"request {first.seq + 1} of the load")
            raise _Failed(f"{len(load.errors)} of {len(load.answers)} requests under load failed: {failed}",
                          failed.log_tail)
        if len(load.answers) < check.requests:
            raise _Failed(f"the load did not finish within {LOAD_DEADLINE_S:.0f}s ({len(load.answers)} of "
                          f"{check.requests} requests answered)", server.log_tail())
    return answers


def _parity(expected, answers: list[list[float]], sample, rows: list[int], tolerance: float) -> Parity:
    import numpy as np

    worst, mismatches, first = 0.0, 0, None
    for i, served in enumerate(answers):
        want = [float(expected[i])]
        same = len(served) == len(want) and all(
            abs(s - w) <= tolerance * max(1.0, abs(w)) or (np.isnan(s) and np.isnan(w)) for s, w in zip(served, want))
        if len(served) == len(want):
            worst = max(worst, max((abs(s - w) for s, w in zip(served, want)), default=0.0))
        if not same:
            mismatches += 1
            if first is None:
                first = ParityMismatch(row=rows[i], served=served[:100], expected=want,
                                       inputs={_CONTROL.sub("?", str(k))[:256]: _one_line(v, 200) for k, v in
                                               list(sample.iloc[i].items())[:200]})
    return Parity(rows=len(answers), tolerance=tolerance, max_abs_diff=worst, mismatches=mismatches, first=first)


def run_serving_check(ws: Workspace, plan: ModelPlan, *, candidate_uri: str, candidate_label: str,
                      candidate_version: str | None, champion, tracking, progress: Progress | None = None
                      ) -> ServingCheckRecord:
    """Serve the candidate at ``candidate_uri`` (and ``champion``, a ChampionRef or None) and grade it."""
    from mlops_ci.runtime import runtime_for, v2
    from mlops_ci.stages.evaluate import load_eval_data

    progress = progress or NullProgress()
    start = time.monotonic()
    cfg = ws.model(plan.model)
    serving, check = cfg.serving, cfg.serving.check
    if not check.enabled:
        return ServingCheckRecord(status="skipped", skip_reason="serving.check.enabled is false")
    runtime, why = runtime_for(serving)
    if runtime is None:
        return ServingCheckRecord(status="skipped", skip_reason=why)
    from mlops_ci.runtime import mlserver

    limit = quantity_value(serving.limits.memory)
    record = ServingCheckRecord(status="pass", runtime=f"MLServer 1.7.1 ({mlserver.IMPLEMENTATION})",
                                memory_limit_bytes=int(limit) if limit else None,
                                memory_limit_default="limits" not in serving.model_fields_set)
    frame, _, _ = load_eval_data(ws, plan)
    sample = v2.sendable(frame).head(check.sample_rows)
    if sample.empty:
        record.status, record.skip_reason = "skipped", (f"{cfg.data.eval} has no row without a missing value: "
                                                        "a V2 JSON request cannot carry one")
        return record
    rows = [int(i) if str(i).isdigit() else n for n, i in enumerate(sample.index)]  # positions in the eval set
    bodies = [v2.request_json(sample.iloc[[i]]).encode() for i in range(len(sample))]
    expected = tracking.predict(candidate_uri, sample)
    record.candidate = ServedModel(role="candidate", label=candidate_label, version=candidate_version)
    if champion is not None:
        record.champion = ServedModel(role="champion", label=f"champion v{champion.version}",
                                      version=champion.version)
    with tempfile.TemporaryDirectory(prefix="mlops-ci-serving-") as tmp:
        for served, uri in ((record.candidate, candidate_uri),
                            (record.champion, champion.model_uri if champion is not None else None)):
            if served is None:
                continue
            try:
                try:
                    model_dir = Path(tracking.local_copy(tracking.artifact_location(uri)))
                except (BackendError, OSError) as err:
                    raise _Failed(f"its files could not be fetched from the registry: {err}") from err
                answers = serve_one(served, model_dir=model_dir, name=plan.model, bodies=bodies, rows=rows,
                                    check=check, workdir=Path(tmp) / served.role, progress=progress)
            except _Failed as err:
                served.error, served.log_tail = str(err), err.log_tail
                if served.role == "candidate":
                    break
                continue
            if served.role == "candidate":
                record.parity = _parity(expected, answers, sample, rows, check.tolerance)
    record.findings = grade(record, check)
    record.status = worst(f.status for f in record.findings) if record.findings else "pass"
    record.duration_s = round(time.monotonic() - start, 3)
    progress.log(summary_line(record))
    return record


def summary_line(record: ServingCheckRecord) -> str:
    """The check in one console line: its status, the candidate's numbers, what failed or warned."""
    cand = record.candidate
    parts = [f"serving check: {record.status}"]
    lat = cand.latency if cand is not None else None
    if lat is not None and lat.p99_ms is not None:
        memory = cand.peak_memory_bytes
        parts.append(f"p99 {lat.p99_ms:.1f} ms, {lat.rps:.0f} requests/s, ready in {cand.ready_s:.1f} s"
                     + (f", peak memory {memory / (1 << 20):.0f} MiB" if memory else ""))
    parts += [f"{f.status}: {f.message}" for f in record.findings if f.status in ("warn", "fail")]
    return " · ".join(parts)


def settings_digest(serving) -> str:
    """What a serving check's numbers depend on besides the model: its settings, the memory limit
    and the runtime's pins."""
    import hashlib

    from mlops_ci.runtime.mlserver import REQUIREMENTS

    from mlops_ci.plan import serving_of

    text = json.dumps([serving_of(serving), REQUIREMENTS.read_text(encoding="utf-8")], sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def serving_tags(record: ServingCheckRecord, serving) -> dict[str, str]:
    """The check as registry tags: its status, and (when it fits in a tag) the result itself with
    the digest of what it was measured under, so that the merge of the same version against the
    same champion re-gates it instead of serving it again."""
    from mlops_ci import registry

    tags = {registry.SERVING: record.status}
    kept = record.model_copy(update={
        "candidate": record.candidate.model_copy(update={"log_tail": None}) if record.candidate else None,
        "champion": record.champion.model_copy(update={"log_tail": None}) if record.champion else None})
    text = kept.model_dump_json(exclude_defaults=False)
    if record.status != "skipped" and len(text) <= registry.MAX_TAG_VALUE:
        tags.update({registry.SERVING_RECORD: text, registry.SERVING_SETTINGS: settings_digest(serving)})
    else:  # an older recorded result no longer stands for this version
        tags.update({registry.SERVING_RECORD: "", registry.SERVING_SETTINGS: ""})
    return tags


def recorded_serving(tags: dict[str, str], serving, champion) -> ServingCheckRecord | None:
    """The serving check recorded on a version, if it was measured under today's settings against
    today's champion (``champion``: a ChampionRef or None); else None (serve it again)."""
    from pydantic import ValidationError

    from mlops_ci import registry

    text = tags.get(registry.SERVING_RECORD)
    if not text or tags.get(registry.SERVING_SETTINGS) != settings_digest(serving):
        return None
    try:
        record = ServingCheckRecord.model_validate_json(text)
    except ValidationError:
        return None
    then = record.champion.version if record.champion is not None else None
    if then != (champion.version if champion is not None else None) or record.status != tags.get(registry.SERVING):
        return None
    label = f" against {record.champion.label}" if record.champion is not None else ""
    return record.model_copy(update={"recorded": True, "notes": [*record.notes, (
        f"recorded: the serving check of {record.candidate.label if record.candidate else 'this version'}{label} "
        "under the same settings, re-gated here instead of served again")]})


__all__ = ["recorded_serving", "run_serving_check", "serve_one", "serving_tags", "settings_digest"]
