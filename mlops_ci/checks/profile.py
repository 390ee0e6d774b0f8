"""Column profiles: counts, nulls, ranges, fixed-edge histograms and category frequencies.

Histogram edges come from the base side's quantiles so that base and head profiles are
comparable bin by bin; drift is computed from two profiles, never from raw rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

OTHER = "__other__"


@dataclass
class ColumnProfile:
    name: str
    kind: str  # numeric | categorical | datetime | boolean
    arrow_type: str
    rows: int
    nulls: int
    minimum: float | str | None = None
    maximum: float | str | None = None
    mean: float | None = None
    std: float | None = None
    edges: list[float] | None = None  # interior edges; bins are (-inf, e0], (e0, e1], ..., (ek, inf)
    hist: list[int] | None = None
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0


@dataclass
class TableProfile:
    rows: int
    columns: dict[str, ColumnProfile]


def column_kind(dtype: pa.DataType) -> str:
    import pyarrow.types as t

    if t.is_boolean(dtype):
        return "boolean"
    if t.is_integer(dtype) or t.is_floating(dtype) or t.is_decimal(dtype):
        return "numeric"
    if t.is_temporal(dtype):
        return "datetime"
    return "categorical"


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    import numpy as np

    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    qs = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(x) for x in np.unique(qs)]


def _numeric(chunked: pa.ChunkedArray) -> np.ndarray:
    import numpy as np
    import pyarrow.compute as pc

    arr = pc.drop_null(chunked)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=float)


def profile_column(
    name: str, chunked: pa.ChunkedArray, *, edges: list[float] | None, bins: int, top_k: int
) -> ColumnProfile:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column_kind(chunked.type)
    # string and large_string (and friends) are the same logical type for a schema diff
    prof = ColumnProfile(name=name, kind=kind, arrow_type=str(chunked.type).replace("large_", ""),
                         rows=len(chunked), nulls=chunked.null_count)
    if kind == "numeric":
        values = _numeric(chunked)
        if values.size:
            prof.minimum, prof.maximum = float(values.min()), float(values.max())
            prof.mean, prof.std = float(values.mean()), float(values.std())
        prof.edges = quantile_edges(values, bins) if edges is None else list(edges)
        idx = np.searchsorted(np.asarray(prof.edges, dtype=float), values, side="left")
        prof.hist = np.bincount(idx, minlength=len(prof.edges) + 1).astype(int).tolist()
    elif kind == "datetime":
        non_null = pc.drop_null(chunked)
        if len(non_null):
            prof.minimum = str(pc.min(non_null).as_py())
            prof.maximum = str(pc.max(non_null).as_py())
    else:
        values = chunked.cast(pa.string()) if kind == "boolean" else chunked
        if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
            values = pc.cast(values, pa.string())
        counts = pc.value_counts(pc.drop_null(values))
        pairs = sorted(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()),
                       key=lambda kv: (-kv[1], kv[0]))
        prof.categories = {str(k): int(v) for k, v in pairs[:top_k]}
        rest = sum(v for _, v in pairs[top_k:])
        if rest:
            prof.categories[OTHER] = int(rest)
    return prof


def profile_table(
    table: pa.Table,
    *,
    bins: int = 10,
    top_k: int = 20,
    reference: TableProfile | None = None,
) -> TableProfile:
    """Profile every column; numeric columns reuse ``reference``'s edges when it has the column."""
    columns = {}
    for name in table.column_names:
        ref = reference.columns.get(name) if reference else None
        edges = ref.edges if ref is not None and ref.kind == "numeric" else None
        # head categories are counted over base's top-k plus their own, so "other" is comparable
        columns[name] = profile_column(name, table.column(name), edges=edges, bins=bins,
                                       top_k=top_k if ref is None else max(top_k, len(ref.categories) + top_k))
    return TableProfile(rows=table.num_rows, columns=columns)
