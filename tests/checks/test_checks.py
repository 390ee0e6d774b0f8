"""Data checks with planted faults: each fault gives exactly its finding; identical data none."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlops_ci.checks import drift
from mlops_ci.checks.compare import compare_profiles
from mlops_ci.checks.profiler import ProfileOptions, profile_table
from mlops_ci.config.schema import ChecksConfig


def frame(rows=5000, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.normal(100, 15, rows),
        "count": rng.poisson(3, rows),
        "plan": rng.choice(["basic", "standard", "premium"], rows, p=[0.5, 0.3, 0.2]),
        "label": (rng.uniform(size=rows) < 0.3).astype(int),
    })


def findings(base: pd.DataFrame, head: pd.DataFrame, **cfg):
    checks = ChecksConfig.model_validate(cfg)
    b = profile_table(pa.Table.from_pandas(base, preserve_index=False))
    h = profile_table(pa.Table.from_pandas(head, preserve_index=False), reference=b)
    return compare_profiles("train", b, h, checks, label="label")


def test_identical_data_has_zero_findings():
    columns, found = findings(frame(), frame())
    assert found == []
    assert all(c.psi == pytest.approx(0, abs=1e-12) and c.js == pytest.approx(0, abs=1e-12) for c in columns)
    assert all(c.wasserstein == pytest.approx(0, abs=1e-12) for c in columns if c.kind == "numeric")


def test_resampled_data_stays_under_thresholds():
    _, found = findings(frame(seed=0), frame(seed=1))
    assert found == []


def test_shifted_numeric_column():
    head = frame(seed=1)
    head["amount"] += 15  # one standard deviation
    columns, found = findings(frame(), head)
    assert [(f.check, f.column, f.status) for f in found] == [("drift", "amount", "fail")]
    assert "PSI" in found[0].message and "W/σ" in found[0].message
    amount = next(c for c in columns if c.column == "amount")
    assert amount.psi > 0.25 and amount.wasserstein == pytest.approx(1.0, abs=0.05)


def test_reweighted_category():
    head = frame(seed=1)
    rng = np.random.default_rng(5)
    head["plan"] = rng.choice(["basic", "standard", "premium"], len(head), p=[0.2, 0.3, 0.5])
    _, found = findings(frame(), head)
    assert [(f.check, f.column, f.status) for f in found] == [("drift", "plan", "fail")]


def test_new_category():
    head = frame(seed=1)
    head.loc[head.index[:100], "plan"] = "enterprise"  # 2% of rows
    _, found = findings(frame(), head)
    new = [f for f in found if f.metric == "new_categories"]
    assert [(f.check, f.column, f.status, f.value) for f in new] == [("drift", "plan", "warn", 1.0)]
    assert new[0].message == "column 'plan' has new categories (100 rows): 'enterprise'"


def test_injected_nulls():
    head = frame(seed=1)
    head["amount"] = head["amount"].astype(float)
    head.loc[head.index[::5], "amount"] = np.nan  # 20% nulls
    _, found = findings(frame(), head)
    nulls = [f for f in found if f.check == "nulls"]
    assert [(f.column, f.status) for f in nulls] == [("amount", "fail")]
    assert nulls[0].value == pytest.approx(0.2, abs=1e-9)
    assert "null rate rose from 0.0% to 20.0%" in nulls[0].message


def test_dropped_column():
    _, found = findings(frame(), frame(seed=1).drop(columns=["count"]))
    assert [(f.check, f.column, f.status) for f in found] == [("schema", "count", "fail")]
    assert found[0].message == "column 'count' was removed"


def test_added_column_warns():
    head = frame(seed=1)
    head["extra"] = 1.0
    _, found = findings(frame(), head)
    assert [(f.check, f.column, f.status) for f in found] == [("schema", "extra", "warn")]


def test_retyped_column():
    head = frame(seed=1)
    head["count"] = head["count"].map(lambda x: f"n{x}")
    _, found = findings(frame(), head)
    retyped = [f for f in found if f.check == "schema"]
    assert [(f.column, f.status) for f in retyped] == [("count", "fail")]
    assert "changed type int64 -> string" in retyped[0].message


def test_int_to_float_widening_is_not_a_retype():
    head = frame(seed=1)
    head["count"] = head["count"].astype(float)
    _, found = findings(frame(), head)
    assert found == []


def test_label_drift_is_named_as_label():
    head = frame(seed=1)
    head["label"] = (np.random.default_rng(9).uniform(size=len(head)) < 0.6).astype(int)
    _, found = findings(frame(), head)
    assert [(f.check, f.column, f.status) for f in found] == [("label_drift", "label", "fail")]
    assert found[0].message.startswith("label 'label' drifted")


def test_policies_are_configurable():
    head = frame(seed=1).drop(columns=["count"])
    _, found = findings(frame(), head, schema={"removed": "warn"})
    assert [f.status for f in found] == ["warn"]
    _, found = findings(frame(), head, schema={"removed": "ignore"})
    assert found == []
    shifted = frame(seed=1)
    shifted["amount"] += 15
    # a partial override keeps the default fail level; `fail: null` turns it off
    _, found = findings(frame(), shifted, drift={"psi": {"warn": 0.1}, "js": {"warn": 0.1},
                                                 "wasserstein": {"warn": 0.1}})
    assert [f.status for f in found] == ["fail"]
    _, found = findings(frame(), shifted, drift={"psi": {"warn": 0.1, "fail": None}, "js": {"warn": 0.1, "fail": None},
                                                 "wasserstein": {"warn": 0.1, "fail": None}})
    assert [f.status for f in found] == ["warn"]
    _, found = findings(frame(), shifted, ignore_columns=["amount"])
    assert found == []


def test_psi_and_js_known_values():
    assert drift.psi([50, 50], [50, 50]) == 0
    # PSI of (0.5, 0.5) -> (0.9, 0.1): 0.4*ln(1.8) + (-0.4)*ln(0.2)
    assert drift.psi([50, 50], [90, 10]) == pytest.approx(0.4 * math.log(1.8) + 0.4 * math.log(5))
    assert drift.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert 0 < drift.js_distance([50, 50], [90, 10]) < 1
    from scipy.spatial.distance import jensenshannon

    assert drift.js_distance([3, 5, 2], [1, 1, 8]) == pytest.approx(jensenshannon([.3, .5, .2], [.1, .1, .8], base=2))


def test_histogram_edges_come_from_base_quantiles():
    base = profile_table(pa.table({"v": np.arange(1000, dtype=float)}), options=ProfileOptions(bins=10))
    col = base.columns["v"]
    assert len(col.edges) == 9 and sum(col.hist) == 1000
    assert max(col.hist) - min(col.hist) <= 1  # quantile bins hold equal shares
    head = profile_table(pa.table({"v": np.arange(1000, dtype=float) + 5000}), reference=base)
    assert head.columns["v"].edges == col.edges and head.columns["v"].hist[-1] == 1000


def test_all_null_column_profiles_without_crash():
    table = pa.table({"v": pa.array([None] * 10, type=pa.float64()), "c": pa.array([None] * 10, type=pa.string())})
    prof = profile_table(table)
    assert prof.columns["v"].null_rate == 1.0 and prof.columns["v"].hist == [0.0]
    assert prof.columns["c"].categories == {}
