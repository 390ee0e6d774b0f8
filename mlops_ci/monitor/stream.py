"""Served traffic profiled as it streams: one log object at a time, bounded memory, mergeable.

The frame path (:func:`.traffic.pair`, then :func:`.windows.analyse` per window) builds one pandas
frame of all traffic; this path computes the same per-window profiles without it:

- objects are read one at a time; their records are checked as :mod:`.logs` checks them (an
  object with a bad record is skipped whole, a :class:`~.logs.Corrupt`);
- the V2 bodies are decoded in bulk (:mod:`.bulk`), the exact decoder of :mod:`.traffic` taking
  what does not fit a template;
- each window's feature rows and predictions go into the profiler on the reference's bin edges
  (as :func:`.windows.analyse` profiles them), with a count of values outside the training range;
- requests are paired with responses by id within and across objects; an id waiting for its
  other half is kept in a bounded dict (``max_pending`` each way; what falls out is counted).

Every row's sample key derives from its object's name, so a run over the objects split into
shards (:func:`mlops_ci.monitor.stream_merge.shard_objects`; one process each, :meth:`WindowProfiles.to_json` between them) and
then :func:`merge` d gives the single run's profiles: counts, histograms, categories, ranges and
samples exactly, means and deviations to float rounding; ids still waiting are paired in the merge.
:func:`analyse` grades the windows as :func:`.windows.analyse` does. The columns are those of
the first request decoded; a later request's other columns are left out (and noted).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

from mlops_ci.checks.profile import ColumnProfile, TableProfile
from mlops_ci.monitor.logs import Corrupt, list_objects, read_object

PREDICTION = "prediction"
OUTSIDE, UNDECODABLE = -1, -2  # pending requests outside every window / not decodable (not profiled)


@dataclass
class Counts:
    """What was read and what could not be used. ``unanswered`` and ``orphans`` count the ids that
    fell out of the bounded dicts; :attr:`WindowProfiles.unanswered` adds those still waiting."""

    objects: int = 0
    corrupt: int = 0
    requests: int = 0
    undecodable: int = 0
    unanswered: int = 0
    orphans: int = 0
    outside: int = 0  # decoded requests outside every window
    bulk: int = 0  # bodies decoded in bulk
    exact: int = 0  # bodies decoded one by one


@dataclass
class WindowProfiles:
    """Per window the feature and prediction profiles, rows, requests and values outside the
    training range; the counts; the ids still waiting for their other half."""

    windows: list[tuple[str, str]]
    options: dict
    prediction_edges: list[float] | None = None
    estimated: list[str] = field(default_factory=list)  # numeric features without reference edges
    features: list[TableProfile | None] = field(default_factory=list)
    predictions: list[TableProfile | None] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    outside: list[dict[str, int]] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    corrupt: list[Corrupt] = field(default_factory=list)  # the first 50
    problems: list[str] = field(default_factory=list)  # the first 5
    pending: dict[str, tuple[int, int]] = field(default_factory=dict)  # request id -> (window, rows)
    waiting: dict[str, tuple] = field(default_factory=dict)  # response id -> (score(s) or error, key(s))

    @property
    def unanswered(self) -> int:
        return self.counts.unanswered + sum(1 for w, _ in self.pending.values() if w != UNDECODABLE)

    @property
    def orphans(self) -> int:
        return self.counts.orphans + len(self.waiting)

    def note(self, text: str) -> None:
        if len(self.problems) < 5:
            self.problems.append(text)

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["features"] = [p and p.to_json() for p in self.features]
        out["predictions"] = [p and p.to_json() for p in self.predictions]
        out["counts"] = vars(self.counts).copy()
        out["corrupt"] = [[c.path, c.reason] for c in self.corrupt]
        out["waiting"] = {k: [_plain(v), _plain(keys)] for k, (v, keys) in self.waiting.items()}
        return out

    @classmethod
    def from_json(cls, data: dict) -> WindowProfiles:
        out = cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
        out.windows = [tuple(w) for w in out.windows]
        out.features = [p and TableProfile.from_json(p) for p in out.features]
        out.predictions = [p and TableProfile.from_json(p) for p in out.predictions]
        out.counts = Counts(**data["counts"])
        out.corrupt = [Corrupt(p, r) for p, r in out.corrupt]
        out.pending = {k: (int(w), int(n)) for k, (w, n) in out.pending.items()}
        out.waiting = {k: (_unplain(v), _unplain(keys)) for k, (v, keys) in out.waiting.items()}
        return out


def _plain(v):
    """A score, scores or an error as JSON (NaN as null)."""
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) else v
    return [None if math.isnan(x) else float(x) for x in v]


def _unplain(v):
    if v is None:
        return math.nan
    if isinstance(v, list):
        return [math.nan if x is None else float(x) for x in v]
    return v


def windows_ending(until: datetime, width, count: int) -> list[tuple[datetime, datetime]]:
    """``count`` windows of ``width`` ending at ``until``, oldest first (as :func:`.windows.split` cuts them)."""
    return [(until - i * width, until - (i - 1) * width) for i in range(count, 0, -1)]


def seed_of(path: str) -> int:
    """An object's seed for its rows' sample keys: from its name and folder within the store, so a
    shard that sees the store under another prefix draws the same keys."""
    name = "/".join(path.rsplit("/", 4)[-4:])
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def reference_of(edges: list[float] | None) -> TableProfile:
    col = ColumnProfile(name=PREDICTION, kind="numeric", arrow_type="double", edges=edges)
    return TableProfile(rows=0, columns={PREDICTION: col} if edges is not None else {})


def settle(out: WindowProfiles, request: tuple[int, int], scores, keys, ident: str, buffered: list) -> None:
    """A request (window, rows) answered by ``scores`` (or the error reading them): the scores and
    their keys go to ``buffered[window]``; a mismatch is undecodable, as in the frame path."""
    w, rows = request
    if w == UNDECODABLE:
        return
    many = not isinstance(scores, float | str)
    if not isinstance(scores, str) and (len(scores) if many else 1) != rows:
        scores = f"{len(scores) if many else 1} predictions for {rows} rows"
    if isinstance(scores, str):
        out.counts.undecodable += 1
        out.note(f"response {ident[:60]}: {scores}")
        return
    if w >= 0:
        for s, k in zip(scores, keys) if many else [(scores, keys)]:
            if not math.isnan(s):  # the frame path drops NaN predictions before profiling
                buffered[w][0].append(float(s))
                buffered[w][1].append(float(k))


def _read(path: str):
    """An object's records, or why it is skipped."""
    from mlops_ci.monitor.objects import read_records

    return read_object(path, read_records)

class _Run:
    """One pass over some objects: per-window profilers, the pending dicts, the counts."""

    def __init__(self, reference: dict, windows: Sequence[tuple[datetime, datetime]], *, max_pending: int,
                 flush_rows: int) -> None:
        import numpy as np

        from mlops_ci.checks.profiler import ProfileOptions

        self.options = ProfileOptions(**reference["options"])
        self.train = TableProfile.from_json(reference["profiles"]["train"])
        col = TableProfile.from_json(reference["profiles"]["predictions"]).columns.get(PREDICTION)
        n = len(windows)
        self.edges = np.array([int(t.astimezone(UTC).timestamp() * 1_000_000) for w in windows for t in w])
        self.max_pending, self.flush_rows = max_pending, flush_rows
        self.out = WindowProfiles(windows=[(a.isoformat(), b.isoformat()) for a, b in windows],
                                  options=reference["options"], prediction_edges=col.edges if col else None,
                                  rows=[0] * n, requests=[0] * n, outside=[{} for _ in range(n)])
        self.profilers: dict[tuple[str, int], object] = {}
        self.buffered = [([], []) for _ in range(n)]  # scores and their keys, waiting for a flush
        self.schema: dict | None = None  # column -> Arrow type, from the first request decoded
        self.templates: dict = {}

    def profiler(self, kind: str, w: int):
        from mlops_ci.checks.profiler import Profiler

        if (kind, w) not in self.profilers:
            reference = self.train if kind == "features" else reference_of(self.out.prediction_edges)
            self.profilers[kind, w] = Profiler(options=self.options, reference=reference)
        return self.profilers[kind, w]

    def add_object(self, path: str) -> None:
        import numpy as np

        from mlops_ci.monitor.bulk import decode_requests, decode_responses

        self.out.counts.objects += 1
        got = _read(path)
        if isinstance(got, Corrupt):
            self.out.counts.corrupt += 1
            if len(self.out.corrupt) < 50:
                self.out.corrupt.append(got)
            return
        rng = np.random.default_rng(seed_of(path))
        ids = np.asarray(got.ids, dtype=object)
        parts, exact = decode_requests(got, self.templates)
        self._requests(list(ids[got.is_request]), got.times[got.is_request], parts, exact, rng)
        self._responses(list(ids[~got.is_request]), decode_responses(got, self.templates), rng)

    def _conform(self, columns: dict, n: int, ident: str):
        """``columns`` as the run's schema: Arrow arrays in its order (an error text when they do not fit)."""
        import pyarrow as pa

        arrays = {k: v if isinstance(v, (pa.Array, pa.ChunkedArray)) else
                  pa.array(v.tolist(), type=pa.float64() if v.dtype.kind in "fiub" else pa.string(), from_pandas=True)
                  for k, v in columns.items()}
        if self.schema is None:
            self.schema = {k: a.type for k, a in arrays.items()}
        for extra in [k for k in arrays if k not in self.schema]:
            self.out.note(f"request {ident[:60]}: column {extra[:60]!r} is not among the first request's columns "
                          "(left out)")
        try:
            return [arrays[k].cast(t) if k in arrays else pa.nulls(n, t) for k, t in self.schema.items()]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            return f"columns of other types than the first request's ({str(err)[:120]})"

    def _requests(self, ids: list[str], times, parts: list, exact: dict, rng) -> None:
        import numpy as np
        import pyarrow as pa

        counts, n = self.out.counts, len(ids)
        counts.requests += n
        ok, rows_of, owners, chunks = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64), [], []
        for positions, columns in parts:
            counts.bulk += len(positions)
            got = self._conform(columns, len(positions), ids[positions[0]])
            if isinstance(got, str):
                for i in positions.tolist():
                    exact[i] = got
                continue
            ok[positions], rows_of[positions] = True, 1
            owners.append(positions)
            chunks.append(got)
        for i, frame in sorted(exact.items()):
            counts.exact += not isinstance(frame, str)
            got = frame if isinstance(frame, str | Exception) else self._conform(
                {k: frame[k].to_numpy() for k in frame.columns}, len(frame), ids[i])
            if isinstance(got, str | Exception):
                counts.undecodable += 1
                self.out.note(f"request {ids[i][:60]}: {got}")
                continue
            ok[i], rows_of[i] = True, len(frame)
            owners.append(np.full(len(frame), i))
            chunks.append(got)
        window = np.searchsorted(self.edges, times, side="right")
        window = np.where(window % 2 == 1, (window - 1) // 2, OUTSIDE)  # inside [start, end) of one window
        counts.outside += int((ok & (window == OUTSIDE)).sum())
        if chunks:
            owner = np.concatenate(owners)
            table = pa.Table.from_arrays([pa.chunked_array([c[j] for c in chunks]) for j in range(len(self.schema))],
                                         names=list(self.schema)).combine_chunks()
            keys, row_window = rng.random(len(owner)), window[owner]
            for w in np.unique(row_window[row_window >= 0]).tolist():
                take = np.flatnonzero(row_window == w)
                batch = table if len(take) == len(owner) else table.take(pa.array(take))
                self.profiler("features", w).add(batch.to_batches()[0], keys=keys[take])
                self.out.rows[w] += len(take)
                self.out.requests[w] += len(np.unique(owner[take]))
                self._count_outside(w, batch)
        state = np.where(ok, window, UNDECODABLE).tolist()
        self.out.pending.update(zip(ids, zip(state, rows_of.tolist())))
        waiting = self.out.waiting
        for ident in [i for i in ids if i in waiting] if waiting else []:  # answered before it was read
            settle(self.out, self.out.pending.pop(ident), *waiting.pop(ident), ident, self.buffered)
        self._trim()

    def _count_outside(self, w: int, batch) -> None:
        import numpy as np

        counts = self.out.outside[w]
        for name, col in self.train.columns.items():
            if (col.kind != "numeric" or name not in batch.column_names or not isinstance(col.minimum, (int, float))
                    or str(batch.schema.field(name).type) != "double"):
                continue  # a text column is not coerced to numbers here (the frame path does)
            values = np.asarray(batch.column(name).to_numpy(zero_copy_only=False), dtype=float)
            values = values[np.isfinite(values)]
            counts[name] = counts.get(name, 0) + int(((values < col.minimum) | (values > col.maximum)).sum())

    def _responses(self, ids: list[str], scores: list, rng) -> None:
        """Responses (a score, scores, or why they could not be read) with the requests waiting for them."""
        sizes = [1 if isinstance(s, float) else 0 if isinstance(s, str) else len(s) for s in scores]
        keys, start = rng.random(sum(sizes)).tolist(), 0
        pending, waiting, buffered = self.out.pending, self.out.waiting, self.buffered
        for ident, s, n in zip(ids, scores, sizes):
            k = keys[start] if isinstance(s, float) else keys[start:start + n]
            start += n
            request = pending.pop(ident, None)
            if request is None:
                waiting[ident] = (s, k)
            elif request[0] >= 0 and request[1] == 1 and isinstance(s, float):  # the common case, inline
                if not math.isnan(s):  # the frame path drops NaN predictions
                    buffered[request[0]][0].append(s)
                    buffered[request[0]][1].append(k)
            else:
                settle(self.out, request, s, k, ident, buffered)
        for w in range(len(buffered)):
            if len(buffered[w][0]) >= self.flush_rows:
                self.flush(w)
        self._trim()

    def flush(self, w: int) -> None:
        import numpy as np
        import pyarrow as pa

        values, keys = self.buffered[w]
        if values:
            self.profiler("scores", w).add(pa.record_batch({PREDICTION: np.asarray(values, dtype=float)}),
                                           keys=np.asarray(keys, dtype=float))
        self.buffered[w] = ([], [])

    def _trim(self) -> None:
        out = self.out
        while len(out.pending) > self.max_pending:
            w, _ = out.pending.pop(next(iter(out.pending)))
            out.counts.unanswered += w != UNDECODABLE
        while len(out.waiting) > self.max_pending:
            out.waiting.pop(next(iter(out.waiting)))
            out.counts.orphans += 1

    def finish(self) -> WindowProfiles:
        n = len(self.out.rows)
        for w in range(n):
            self.flush(w)
        done = {key: p.finish() for key, p in self.profilers.items()}
        self.out.features = [done.get(("features", w)) for w in range(n)]
        self.out.predictions = [done.get(("scores", w)) for w in range(n)]
        self.out.estimated = sorted({name for p in self.out.features if p for name, c in p.columns.items()
                                     if c.kind == "numeric" and (self.train.columns.get(name) is None
                                                                 or self.train.columns[name].edges is None)})
        return self.out


def profile_objects(paths: Sequence[str], reference: dict, windows: Sequence[tuple[datetime, datetime]], *,
                    max_pending: int = 200_000, flush_rows: int = 65_536) -> WindowProfiles:
    """Profile the traffic in ``paths`` (log objects, read in this order) window by window against
    ``reference`` (the document of mlops_ci.stages.reference)."""
    run = _Run(reference, windows, max_pending=max_pending, flush_rows=flush_rows)
    for path in paths:
        run.add_object(path)
    return run.finish()



# merging shards' profiles and grading them: mlops_ci.monitor.stream_merge (merge, analyse, traffic_counts)
__all__ = ["Counts", "WindowProfiles", "list_objects", "profile_objects", "seed_of", "windows_ending"]
