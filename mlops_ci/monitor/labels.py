"""Ground truth that arrives after the predictions, joined to the logged rows.

The table (CSV or Parquet; a file, a glob of them, or any fsspec URL) holds a key column and the
label. The key is the logged request's id (a request holding several rows is matched to the
table's rows with that id in order), or a feature column sent in the request. Rows without a
label stay unlabelled; a label whose key was never logged is counted, not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlops_ci.monitor.traffic import ID

LABEL = "_label"
_ORDER = "_nth"


@dataclass
class Joined:
    frame: pd.DataFrame  # the traffic with LABEL (NaN where no label arrived)
    labels: int  # rows read from the table
    unmatched: int  # labels whose key is not in the traffic
    mismatched: int = 0  # requests whose label count differs from their row count: not labelled


def read_labels(location: str, *, key: str, label: str) -> pd.DataFrame:
    """Every table ``location`` names (a glob is expanded), their ``key`` and ``label`` columns."""
    import fsspec

    from mlops_ci.errors import DataError

    fs, _ = fsspec.core.url_to_fs(location)
    paths = sorted(fs.glob(location.split("://", 1)[1] if "://" in location else location))
    if not paths:
        raise DataError(f"monitoring.labels.path: nothing matches {location!r}")
    parts = []
    for path in paths:
        with fs.open(path, "rb") as fh:
            table = pd.read_parquet(fh) if path.endswith(".parquet") else pd.read_csv(fh)
        missing = [c for c in (key, label) if c not in table.columns]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r} (monitoring.labels: id_column {key!r}, label "
                            f"{label!r})")
        parts.append(table[[key, label]])
    return pd.concat(parts, ignore_index=True)


def join(traffic: pd.DataFrame, labels: pd.DataFrame, *, key: str, on: str, label: str) -> Joined:
    """``traffic`` with the label of each row whose key is in ``labels`` (``on``: ``request`` or a
    feature column of the traffic)."""
    table = labels.rename(columns={key: "_key", label: LABEL}).copy()
    table["_key"] = table["_key"].astype(str)
    frame = traffic.copy()
    mismatched = 0
    if on == "request":
        frame["_key"] = frame[ID].astype(str)
        # a request of several rows takes its labels in order, only when there are exactly as many
        # labels as rows: any other count could pair a label with the wrong row
        rows, given = frame.groupby("_key").size(), table.groupby("_key").size()
        both = rows.index.intersection(given.index)
        uneven = both[rows[both].to_numpy() != given[both].to_numpy()]
        mismatched = len(uneven)
        table = table[~table["_key"].isin(set(uneven))]
        frame[_ORDER] = frame.groupby("_key").cumcount()
        table[_ORDER] = table.groupby("_key").cumcount()
        keys = ["_key", _ORDER]
    else:
        frame["_key"] = frame[on].astype(str)
        table = table.drop_duplicates("_key", keep="last")  # a corrected label replaces the first
        keys = ["_key"]
    merged = frame.merge(table, on=keys, how="left")
    matched = set(map(tuple, merged.loc[merged[LABEL].notna(), keys].itertuples(index=False)))
    unmatched = sum(1 for k in table[keys].itertuples(index=False) if tuple(k) not in matched)
    return Joined(merged.drop(columns=keys), len(labels), unmatched, mismatched)


__all__ = ["LABEL", "Joined", "join", "read_labels"]
