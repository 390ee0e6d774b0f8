"""A row sample of a file, stratified by label, taken while streaming (memory bounded by the cap).

Each row gets a random key; per label value the rows with the smallest keys are kept, at most
``cap`` of them. At the end each label keeps its share of ``cap`` (at least one row), so a
rare class survives the sampling. A label with too many distinct values to be a class (a
regression target) is sampled as one stratum.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.data.stream import ReadOptions, iter_batches

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

MAX_CLASSES = 100
_KEY = "__mlops_ci_key__"


def _keep_smallest(table: pa.Table, cap: int) -> pa.Table:
    import pyarrow.compute as pc

    if table.num_rows <= cap:
        return table
    return table.take(pc.select_k_unstable(table, k=cap, sort_keys=[(_KEY, "ascending")]))


def sample_file(local: Path, *, name: str, label: str | None, cap: int, fmt: str = "auto", seed: int = 0,
                options: ReadOptions = ReadOptions()) -> tuple[pd.DataFrame, int]:
    """At most ``cap`` rows of the file as a DataFrame, and the file's total row count."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    strata: dict[object, pa.Table] = {}
    counts: dict[object, int] = {}
    stratified = label is not None
    total = 0
    for batch in iter_batches(local, name=name, fmt=fmt, options=options):
        table = pa.Table.from_batches([batch]).append_column(_KEY, pa.array(rng.random(batch.num_rows)))
        total += batch.num_rows
        if stratified and label in table.column_names:
            values = pc.unique(table.column(label)).to_pylist()
            if len(set(counts) | set(values)) > MAX_CLASSES:
                stratified = False  # a continuous target: one stratum from here on
                merged = pa.concat_tables([*strata.values(), table])
                strata, counts = {None: _keep_smallest(merged, cap)}, {None: total}
                continue
            for value in values:
                mask = pc.is_null(table.column(label)) if value is None else pc.equal(table.column(label), value)
                part = table.filter(mask)
                counts[value] = counts.get(value, 0) + part.num_rows
                old = strata.get(value)
                strata[value] = _keep_smallest(part if old is None else pa.concat_tables([old, part]), cap)
        else:
            counts[None] = counts.get(None, 0) + batch.num_rows
            old = strata.get(None)
            strata[None] = _keep_smallest(table if old is None else pa.concat_tables([old, table]), cap)
    parts = []
    for value, kept in strata.items():
        share = max(1, round(cap * counts[value] / total)) if total > cap else kept.num_rows
        parts.append(_keep_smallest(kept, min(share, kept.num_rows)))
    sample = pa.concat_tables(parts).sort_by(_KEY).drop_columns([_KEY])
    return sample.to_pandas(), total
