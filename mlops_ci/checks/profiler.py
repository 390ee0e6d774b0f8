"""The one-pass profiler: feed it Arrow record batches, get a :class:`TableProfile`.

Memory is bounded by the options, not by the data: per column a few numbers, at most
``max_categories`` category counts, and one shared row sample of ``sample_size`` rows (the rows
with the smallest random keys, so samples of two files merge into a sample of both).

Numeric histograms need edges. With a ``reference`` profile (the base side) the edges are
known up front and the counts are exact; without one (the base side itself) the edges are the
sample's quantiles and the counts are estimated from the sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_ci.checks.profile import ColumnProfile, TableProfile

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


@dataclass(frozen=True)
class ProfileOptions:
    bins: int = 10
    max_categories: int = 1000
    sample_size: int = 16_384
    seed: int = 0

    def key(self) -> str:
        return f"b{self.bins}-c{self.max_categories}-s{self.sample_size}-r{self.seed}"


def column_kind(dtype: pa.DataType) -> str:
    import pyarrow.types as t

    if t.is_dictionary(dtype):
        dtype = dtype.value_type
    if t.is_boolean(dtype):
        return "boolean"
    if t.is_integer(dtype) or t.is_floating(dtype) or t.is_decimal(dtype):
        return "numeric"
    if t.is_temporal(dtype):
        return "datetime"
    if t.is_null(dtype):
        return "null"
    if t.is_nested(dtype):
        return "nested"  # struct, list, map: rows and nulls counted, values not profiled
    return "categorical"


def type_name(dtype: pa.DataType) -> str:
    import pyarrow.types as t

    if t.is_dictionary(dtype):
        dtype = dtype.value_type
    # string and large_string are the same logical type for a schema diff
    return str(dtype).replace("large_", "")


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    import numpy as np

    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    qs = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(x) for x in np.unique(qs)]


class _Numeric:
    """Running count, mean and M2 (Chan et al.'s parallel update), min, max and histogram."""

    def __init__(self, edges: list[float] | None) -> None:
        import numpy as np

        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.nonfinite = 0
        self.edges = None if edges is None else np.asarray(edges, dtype=float)
        self.hist = None if edges is None else np.zeros(len(edges) + 1, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        """``values``: the batch's non-null values as float64 (NaN already removed)."""
        import numpy as np

        if self.hist is not None and values.size:
            # bins are (e[i-1], e[i]]: count values <= each edge (one vectorized pass per edge,
            # several times faster than a binary search per value), then take differences
            at_most = np.fromiter((np.count_nonzero(values <= e) for e in self.edges), dtype=np.int64,
                                  count=self.edges.size)
            self.hist += np.diff(at_most, prepend=0, append=values.size)
        finite = values if np.isfinite(values.sum()) else values[np.isfinite(values)]
        self.nonfinite += values.size - finite.size
        n = finite.size
        if n == 0:
            return
        mean = float(finite.mean())
        m2 = float(((finite - mean) ** 2).sum())
        total = self.n + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total
        self.minimum = min(self.minimum, float(finite.min()))
        self.maximum = max(self.maximum, float(finite.max()))


class _Categories:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.counts: dict[str, int] = {}
        self.other = 0
        self.truncated = False

    def add(self, array: pa.Array) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
            array = pc.cast(array, pa.string())
        vc = pc.value_counts(array.drop_null())
        if len(vc) > self.cap:  # keep the batch's most frequent values only
            order = pc.sort_indices(vc.field("counts"), sort_keys=[("", "descending")])
            vc = vc.take(order)
            self.other += int(pc.sum(vc.field("counts")[self.cap:]).as_py() or 0)
            vc = vc[: self.cap]
            self.truncated = True
        counts = self.counts
        for key, count in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
            counts[key] = counts.get(key, 0) + count
        if len(counts) > self.cap:
            keep = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.other += sum(v for _, v in keep[self.cap:])
            self.counts = dict(keep[: self.cap])
            self.truncated = True


class Profiler:
    """Accumulates batches of one file; :meth:`finish` returns its profile."""

    def __init__(self, *, options: ProfileOptions = ProfileOptions(), reference: TableProfile | None = None,
                 source: str = "", seed: int | None = None) -> None:
        import numpy as np

        self.options = options
        self.reference = reference
        self.source = source
        self.rows = 0
        self._rng = np.random.default_rng(options.seed if seed is None else seed)
        self._columns: dict[str, ColumnProfile] = {}
        self._numeric: dict[str, _Numeric] = {}
        self._categories: dict[str, _Categories] = {}
        self._temporal: dict[str, list] = {}
        self._sample_keys = np.empty(0)
        self._sample: dict[str, np.ndarray] = {}

    def _start(self, schema: pa.Schema) -> None:
        import numpy as np

        for f in schema:
            kind = column_kind(f.type)
            self._columns[f.name] = ColumnProfile(name=f.name, kind=kind, arrow_type=type_name(f.type))
            if kind == "numeric":
                ref = self.reference.columns.get(f.name) if self.reference else None
                edges = ref.edges if ref is not None and ref.kind == "numeric" else None
                self._numeric[f.name] = _Numeric(edges)
                self._sample[f.name] = np.empty(0)
            elif kind in ("categorical", "boolean"):
                self._categories[f.name] = _Categories(self.options.max_categories)
            elif kind == "datetime":
                self._temporal[f.name] = [None, None]

    def add(self, batch: pa.RecordBatch, keys: np.ndarray | None = None) -> None:
        """Profile ``batch``; ``keys`` (one in [0, 1) per row) replace the random sample keys, so a
        caller that derives them from the rows themselves gets the same sample however it splits them."""
        import numpy as np
        import pyarrow.compute as pc

        if not self._columns:
            self._start(batch.schema)
        n = batch.num_rows
        self.rows += n
        keys = self._rng.random(n) if keys is None else np.asarray(keys, dtype=float)
        if keys.shape != (n,):
            raise ValueError(f"{keys.shape[0] if keys.ndim else 0} sample keys for {n} rows")
        take = self._sample_rows(keys)
        for name, prof in self._columns.items():
            array = batch.column(name)
            prof.rows += n
            prof.nulls += array.null_count
            if prof.kind == "numeric":
                values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=float)
                nan = np.isnan(values)
                extra = int(nan.sum()) - array.null_count  # NaN stored as a value, not a null
                if extra > 0:
                    prof.nulls += extra
                self._numeric[name].add(values[~nan] if nan.any() else values)
                if take is not None:
                    self._sample[name] = np.concatenate([self._sample[name], values[take]])
            elif prof.kind in ("categorical", "boolean"):
                self._categories[name].add(array)
            elif prof.kind == "datetime" and array.null_count < n:
                lo, hi = pc.min_max(array).values()
                span = self._temporal[name]
                span[0] = lo.as_py() if span[0] is None else min(span[0], lo.as_py())
                span[1] = hi.as_py() if span[1] is None else max(span[1], hi.as_py())
        if take is not None:
            self._trim_sample(keys[take])

    def _sample_rows(self, keys: np.ndarray) -> np.ndarray | None:
        """Indices of this batch's rows that may enter the sample (their key beats the current cut)."""
        import numpy as np

        if not self._numeric:
            return None
        if self._sample_keys.size < self.options.sample_size:
            return np.arange(keys.size)
        cut = self._sample_keys.max()
        idx = np.flatnonzero(keys < cut)
        return idx if idx.size else None

    def _trim_sample(self, new_keys: np.ndarray) -> None:
        import numpy as np

        keys = np.concatenate([self._sample_keys, new_keys])
        if keys.size > self.options.sample_size:
            keep = np.argpartition(keys, self.options.sample_size - 1)[: self.options.sample_size]
            keep.sort()
            keys = keys[keep]
            for name in self._sample:
                self._sample[name] = self._sample[name][keep]
        self._sample_keys = keys

    def finish(self) -> TableProfile:
        import numpy as np

        for name, acc in self._numeric.items():
            prof = self._columns[name]
            prof.nonfinite = acc.nonfinite
            if acc.n:
                prof.minimum, prof.maximum = acc.minimum, acc.maximum
                prof.mean, prof.std = acc.mean, math.sqrt(max(acc.m2 / acc.n, 0.0))
            if acc.hist is not None:
                prof.edges, prof.hist = [float(e) for e in acc.edges], [float(c) for c in acc.hist]
        for name, acc in self._categories.items():
            prof = self._columns[name]
            prof.categories, prof.other, prof.truncated = acc.counts, acc.other, acc.truncated
        for name, (lo, hi) in self._temporal.items():
            self._columns[name].minimum = None if lo is None else str(lo)
            self._columns[name].maximum = None if hi is None else str(hi)
        order = np.argsort(self._sample_keys, kind="stable")
        profile = TableProfile(
            rows=self.rows, columns=self._columns, source=self.source,
            sample_keys=self._sample_keys[order].tolist(),
            sample={name: values[order].tolist() for name, values in self._sample.items()},
        )
        return estimate_histograms(profile, self.options.bins)


def estimate_histograms(profile: TableProfile, bins: int) -> TableProfile:
    """Give every numeric column without exact counts quantile edges and counts from the sample."""
    import numpy as np

    for name, prof in profile.columns.items():
        if prof.kind != "numeric" or prof.hist is not None:
            continue
        values = np.asarray(profile.column_sample(name), dtype=float)
        prof.edges = quantile_edges(values, bins)
        prof.hist = sample_histogram(values, prof.edges, prof.valid)
    return profile


def sample_histogram(values, edges: list[float], total: int) -> list[float]:
    """Counts of a sample over ``edges``, scaled to ``total`` rows."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return [0.0] * (len(edges) + 1)
    idx = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    return (counts * (total / values.size)).tolist()


def profile_table(table: pa.Table, *, options: ProfileOptions = ProfileOptions(),
                  reference: TableProfile | None = None, batch_rows: int = 262_144) -> TableProfile:
    """Profile an in-memory table batch by batch (the same pass :func:`profile_file` makes)."""
    profiler = Profiler(options=options, reference=reference)
    for batch in table.to_batches(max_chunksize=batch_rows):
        profiler.add(batch)
    return profiler.finish()
