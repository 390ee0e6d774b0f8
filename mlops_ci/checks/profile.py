"""Column profiles: what one pass over a dataset leaves behind, and how two profiles merge.

A profile holds counts, nulls, types, min/max, mean/std, a fixed-edge histogram, category
frequencies and a bounded row sample of the numeric columns (for quantiles and Wasserstein
distance). Drift is computed from two profiles, never from raw rows. Profiles are plain data,
written to JSON for the cache (:mod:`mlops_ci.checks.cache`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

PROFILE_VERSION = 2
OTHER = "__other__"


@dataclass
class ColumnProfile:
    name: str
    kind: str  # numeric | categorical | boolean | datetime | null | nested (struct, list, map)
    arrow_type: str
    rows: int = 0
    nulls: int = 0  # nulls, plus NaN in numeric columns
    nonfinite: int = 0  # +-inf in numeric columns (kept out of mean/std/min/max)
    minimum: float | str | None = None
    maximum: float | str | None = None
    mean: float | None = None
    std: float | None = None  # population standard deviation of the finite values
    # interior edges; bins are (-inf, e0], (e0, e1], ..., (ek, inf). Counts are exact when the
    # edges were given up front (the head side), estimated from the sample otherwise (the base).
    edges: list[float] | None = None
    hist: list[float] | None = None
    categories: dict[str, int] = field(default_factory=dict)  # every category up to the cap
    other: int = 0  # rows in categories beyond the cap
    truncated: bool = False  # more distinct values than the cap: counts beyond it are approximate
    notes: list[str] = field(default_factory=list)  # e.g. a column read as text because types were mixed

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def valid(self) -> int:
        return self.rows - self.nulls

    def top_categories(self, k: int) -> dict[str, int]:
        """The k most frequent categories, the rest summed under :data:`OTHER`."""
        pairs = sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0]))
        top = dict(pairs[:k])
        rest = sum(v for _, v in pairs[k:]) + self.other
        if rest:
            top[OTHER] = rest
        return top


@dataclass
class TableProfile:
    rows: int
    columns: dict[str, ColumnProfile]
    # row sample shared by the numeric columns: the rows with the smallest random keys
    sample_keys: list[float] = field(default_factory=list)
    sample: dict[str, list[float]] = field(default_factory=dict)  # NaN where the row's value is null
    source: str = ""
    version: int = PROFILE_VERSION

    def column_sample(self, name: str) -> list[float]:
        """The sampled finite values of one numeric column."""
        return [v for v in self.sample.get(name, []) if math.isfinite(v)]

    def to_json(self) -> dict:
        data = asdict(self)
        data["sample"] = {k: [None if math.isnan(v) else v for v in vs] for k, vs in self.sample.items()}
        return data

    @classmethod
    def from_json(cls, data: dict) -> TableProfile:
        names = {f.name for f in fields(ColumnProfile)}
        columns = {k: ColumnProfile(**{n: v for n, v in c.items() if n in names})
                   for k, c in data["columns"].items()}
        sample = {k: [math.nan if v is None else float(v) for v in vs] for k, vs in data.get("sample", {}).items()}
        return cls(rows=int(data["rows"]), columns=columns, sample_keys=[float(x) for x in data.get("sample_keys", [])],
                   sample=sample, source=str(data.get("source", "")), version=int(data.get("version", 0)))


def _merge_moments(a: ColumnProfile, b: ColumnProfile, out: ColumnProfile) -> None:
    na, nb = a.valid - a.nonfinite, b.valid - b.nonfinite
    if a.mean is None or na <= 0:
        out.mean, out.std = b.mean, b.std
        return
    if b.mean is None or nb <= 0:
        out.mean, out.std = a.mean, a.std
        return
    n = na + nb
    delta = b.mean - a.mean
    m2 = (a.std or 0.0) ** 2 * na + (b.std or 0.0) ** 2 * nb + delta * delta * na * nb / n
    out.mean = a.mean + delta * nb / n
    out.std = math.sqrt(max(m2 / n, 0.0))


def _extreme(x, y, pick):
    values = [v for v in (x, y) if v is not None]
    return pick(values) if values else None


def merge_columns(a: ColumnProfile, b: ColumnProfile, *, max_categories: int) -> ColumnProfile:
    if a.kind != b.kind:
        raise ValueError(f"column {a.name!r} is {a.kind} in one part and {b.kind} in another")
    out = ColumnProfile(name=a.name, kind=a.kind, arrow_type=a.arrow_type, rows=a.rows + b.rows,
                        nulls=a.nulls + b.nulls, nonfinite=a.nonfinite + b.nonfinite,
                        minimum=_extreme(a.minimum, b.minimum, min), maximum=_extreme(a.maximum, b.maximum, max),
                        notes=a.notes + [n for n in b.notes if n not in a.notes])
    if a.kind == "numeric":
        _merge_moments(a, b, out)
        if a.edges is not None and a.edges == b.edges and a.hist is not None and b.hist is not None:
            out.edges, out.hist = list(a.edges), [x + y for x, y in zip(a.hist, b.hist)]
    counts = dict(a.categories)
    for key, value in b.categories.items():
        counts[key] = counts.get(key, 0) + value
    out.other = a.other + b.other
    out.truncated = a.truncated or b.truncated
    if len(counts) > max_categories:
        keep = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        out.other += sum(v for _, v in keep[max_categories:])
        counts = dict(keep[:max_categories])
        out.truncated = True
    out.categories = counts
    return out


def merge(a: TableProfile, b: TableProfile, *, sample_size: int, max_categories: int) -> TableProfile:
    """One profile of the rows of both (a dataset split across files, profiled file by file)."""
    if list(a.columns) != list(b.columns):
        raise ValueError(f"cannot merge profiles with different columns: {list(a.columns)} vs {list(b.columns)}")
    columns = {name: merge_columns(a.columns[name], b.columns[name], max_categories=max_categories)
               for name in a.columns}
    keys = a.sample_keys + b.sample_keys
    order = sorted(range(len(keys)), key=keys.__getitem__)[:sample_size]
    sample = {}
    for name in a.sample:
        both = a.sample[name] + b.sample.get(name, [math.nan] * len(b.sample_keys))
        sample[name] = [both[i] for i in order]
    return TableProfile(rows=a.rows + b.rows, columns=columns, sample_keys=[keys[i] for i in order],
                        sample=sample, source=f"{a.source}+{b.source}")
