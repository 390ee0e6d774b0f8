"""The streaming profiler: batches, merging, bounded memory, the cache and bad inputs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_ci.checks.cache import ProfileCache, cache_key
from mlops_ci.checks.compare import compare_profiles
from mlops_ci.checks.profile import merge
from mlops_ci.checks.profiler import ProfileOptions, profile_table
from mlops_ci.checks.scan import ScanLimits, profile_file, profile_files
from mlops_ci.config.schema import ChecksConfig
from mlops_ci.errors import DataError

from conftest import ROOT


def table(rows=20_000, seed=0) -> pa.Table:
    rng = np.random.default_rng(seed)
    amount = rng.normal(100, 15, rows)
    amount[rng.uniform(size=rows) < 0.05] = np.nan
    return pa.table({
        "amount": amount,
        "count": rng.poisson(3, rows),
        "plan": rng.choice(["basic", "standard", "premium"], rows, p=[0.5, 0.3, 0.2]),
        "active": rng.uniform(size=rows) < 0.4,
        "label": (rng.uniform(size=rows) < 0.3).astype(int),
    })


def test_batch_size_does_not_change_the_profile():
    t = table()
    one = profile_table(t, batch_rows=t.num_rows)
    many = profile_table(t, batch_rows=1_000)
    for name in t.column_names:
        a, b = one.columns[name], many.columns[name]
        assert (a.rows, a.nulls, a.categories, a.minimum, a.maximum) == (b.rows, b.nulls, b.categories, b.minimum,
                                                                         b.maximum)
        if a.kind == "numeric":
            assert a.mean == pytest.approx(b.mean, rel=1e-12) and a.std == pytest.approx(b.std, rel=1e-12)
    amount = many.columns["amount"]
    values = t.column("amount").to_numpy()
    assert amount.nulls == int(np.isnan(values).sum())  # NaN counts as null
    assert amount.mean == pytest.approx(np.nanmean(values)) and amount.std == pytest.approx(np.nanstd(values))
    assert many.columns["plan"].categories == dict(pd.Series(t.column("plan")).value_counts())
    assert many.columns["active"].kind == "boolean" and set(many.columns["active"].categories) == {"true", "false"}


def test_head_counts_are_exact_with_base_edges():
    base = profile_table(table(seed=0))
    head_t = table(seed=1)
    head = profile_table(head_t, reference=base, batch_rows=777)
    edges = base.columns["amount"].edges
    values = head_t.column("amount").to_numpy()
    values = values[~np.isnan(values)]
    expected = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    assert head.columns["amount"].hist == expected.astype(float).tolist()


def test_sample_is_bounded_and_uniform():
    t = pa.table({"v": np.arange(200_000, dtype=float)})
    prof = profile_table(t, options=ProfileOptions(sample_size=4096), batch_rows=10_000)
    sample = np.asarray(prof.sample["v"])
    assert sample.size == 4096 and len(set(sample)) == 4096
    # a uniform sample of 0..199999: its deciles sit near the true ones
    assert np.quantile(sample, [0.1, 0.5, 0.9]) == pytest.approx([20_000, 100_000, 180_000], rel=0.05)
    # base histogram estimated from the sample, scaled to every row
    assert sum(prof.columns["v"].hist) == pytest.approx(200_000)


def test_split_files_merge_into_the_whole():
    t = table(rows=30_000)
    whole = profile_table(t)
    a = profile_table(t.slice(0, 10_000), options=ProfileOptions(seed=1))
    b = profile_table(t.slice(10_000), options=ProfileOptions(seed=2))
    merged = merge(a, b, sample_size=16_384, max_categories=1000)
    for name in t.column_names:
        m, w = merged.columns[name], whole.columns[name]
        assert (m.rows, m.nulls, m.categories, m.minimum, m.maximum) == (w.rows, w.nulls, w.categories, w.minimum,
                                                                         w.maximum)
        if m.kind == "numeric":
            assert m.mean == pytest.approx(w.mean, rel=1e-9) and m.std == pytest.approx(w.std, rel=1e-9)
    assert len(merged.sample_keys) == 16_384


def test_split_files_profile_file_by_file(tmp_path):
    t = table(rows=30_000)
    parts = []
    for i, (start, length) in enumerate([(0, 12_000), (12_000, 18_000)]):
        path = tmp_path / f"part{i}.parquet"
        pq.write_table(t.slice(start, length), path)
        parts.append((path, path.name))
    merged = profile_files(parts)
    assert merged.rows == 30_000 and merged.columns["plan"].categories == profile_table(t).columns["plan"].categories
    # identical data split differently shows no drift
    _, found = compare_profiles("train", profile_table(t), profile_table(t, reference=merged),
                                ChecksConfig(), label="label")
    assert found == []


def test_category_cap_is_bounded_and_marked():
    ids = pa.table({"id": [f"user-{i}" for i in range(50_000)]})
    prof = profile_table(ids, options=ProfileOptions(max_categories=100), batch_rows=5_000)
    col = prof.columns["id"]
    assert len(col.categories) <= 100 and col.truncated
    assert sum(col.categories.values()) + col.other == 50_000


def test_cache_round_trip_and_keys(tmp_path):
    base = profile_table(table())
    cache = ProfileCache(tmp_path)
    key = cache_key("0" * 32, ProfileOptions())
    assert cache.get(key) is None
    cache.put(key, base)
    again = cache.get(key)
    assert again.rows == base.rows and again.columns["amount"].hist == base.columns["amount"].hist
    assert all(math.isnan(x) == math.isnan(y) for x, y in zip(again.sample["amount"], base.sample["amount"]))
    head_key = cache_key("1" * 32, ProfileOptions(), base)
    other = profile_table(table(seed=3))
    assert head_key != cache_key("1" * 32, ProfileOptions(), other)  # other edges, other entry
    assert head_key != cache_key("1" * 32, ProfileOptions(bins=20), base)
    (tmp_path / f"{key}.json").write_text("{not json")
    assert cache.get(key) is None  # a broken entry is ignored, not trusted


# ---- bad inputs: each a clear message, never a crash -------------------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty.csv: the file is empty \(0 bytes\)"):
        profile_file(path, name="empty.csv")


def test_header_only_csv(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b,label\n")
    with pytest.raises(DataError, match="header.csv: the file has a header but no rows"):
        profile_file(path, name="header.csv")


def test_column_of_all_nulls(tmp_path):
    base = tmp_path / "base.csv"
    head = tmp_path / "head.csv"
    base.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(1000)))
    head.write_text("a,b,label\n" + "".join(f"{i},,{i % 2}\n" for i in range(1000)))
    b = profile_file(base, name="base.csv")
    h = profile_file(head, name="head.csv", reference=b)
    assert h.columns["b"].kind == "null" and h.columns["b"].null_rate == 1.0
    _, found = compare_profiles("train", b, h, ChecksConfig(), label="label")
    assert [(f.check, f.column, f.status, f.metric) for f in found] == [
        ("nulls", "b", "warn", "null_rate"), ("nulls", "b", "fail", "null_rate_increase")]
    assert found[0].message == "column 'b' is empty: all 1,000 values are null"


def test_mixed_types_in_a_later_block_are_widened_and_reported(tmp_path):
    path = tmp_path / "mixed.csv"
    rows = [f"{i},{i * 0.5},{i % 2}\n" for i in range(300_000)]
    rows.append("3.5,oops,1\n")  # after the first block: an int column gets a float, a number column text
    path.write_text("n,x,label\n" + "".join(rows))
    prof = profile_file(path, name="mixed.csv", limits=ScanLimits(memory_mb=64))
    assert prof.columns["n"].arrow_type == "double" and prof.columns["n"].kind == "numeric"
    assert prof.columns["x"].arrow_type == "string" and prof.rows == 300_001
    (note,) = prof.columns["x"].notes
    assert note == "column 'x' mixes types: the first rows read as double, but row 300,001 is 'oops'; it was read as string"
    assert prof.columns["n"].notes == []  # integers that turn out to be floats are not "mixed"
    base = profile_file(path, name="mixed.csv", limits=ScanLimits(memory_mb=64))
    _, found = compare_profiles("train", base, prof, ChecksConfig(), label="label")
    assert [(f.check, f.column, f.status) for f in found] == [("types", "x", "warn")]


def test_non_utf8_bytes_first_block(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,label\ncaf\u00e9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv: column 'name' is not valid UTF-8 text \(re-encode"):
        profile_file(path, name="latin1.csv")


def test_non_utf8_bytes_later_block(tmp_path):
    path = tmp_path / "late.csv"
    body = "".join(f"{i},name{i}\n" for i in range(300_000)).encode() + b"1,caf\xe9\n"
    path.write_bytes(b"n,name\n" + body)
    with pytest.raises(DataError, match=r"late.csv: column 'name' at row 300,001 is not valid UTF-8 text"):
        profile_file(path, name="late.csv", limits=ScanLimits(memory_mb=64))


def test_ragged_csv_names_the_problem(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match="ragged.csv: cannot be read as csv: .*Expected 2 columns, got 3"):
        profile_file(path, name="ragged.csv")


def test_not_parquet(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="fake.parquet: cannot be read as parquet"):
        profile_file(path, name="fake.parquet")


def test_memory_cap_exceeded_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "data.parquet"
    pq.write_table(table(rows=50_000), path, row_group_size=5_000)
    rss = iter(range(0, 10**12, 200 << 20))  # every reading 200 MB more than the last
    monkeypatch.setattr("mlops_ci.checks.scan.current_rss", lambda: next(rss) + (100 << 20))
    with pytest.raises(DataError, match=r"data.parquet: profiling needs more than the memory cap of 64 MB "
                                        r"\(used 200 MB after [\d,]+ rows\).*checks.memory_limit_mb"):
        profile_file(path, name="data.parquet", limits=ScanLimits(memory_mb=64))


LARGE = textwrap.dedent("""
    import resource, sys, time
    from pathlib import Path
    from mlops_ci.checks.scan import ScanLimits, profile_file
    start = time.monotonic()
    prof = profile_file(Path(sys.argv[1]), name="large.csv", limits=ScanLimits(memory_mb=int(sys.argv[2])))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(prof.rows, prof.columns["x"].mean, peak, round(time.monotonic() - start, 1))
""")


@pytest.mark.slow
def test_2gb_file_larger_than_the_memory_cap_streams(tmp_path):
    """A 2 GB CSV profiled under a 256 MB cap: it streams, memory stays bounded, no crash."""
    path = tmp_path / "large.csv"
    block = "".join(f"{i % 1000},{(i * 7) % 13},label{i % 3},some longer text field {i % 17}\n"
                    for i in range(100_000)).encode()
    with open(path, "wb") as fh:
        fh.write(b"x,y,label,note\n")
        while fh.tell() < 2 << 30:
            fh.write(block)
    size = path.stat().st_size
    rows_per_block = 100_000
    blocks = (size - 15) // len(block)
    proc = subprocess.run([sys.executable, "-c", LARGE, str(path), "256"], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    path.unlink()
    assert proc.returncode == 0, proc.stderr
    rows, mean, peak_mb, seconds = proc.stdout.split()
    assert int(rows) == blocks * rows_per_block
    assert float(mean) == pytest.approx(499.5)
    assert int(peak_mb) < 1024, f"peak RSS {peak_mb} MB for a {size >> 20} MB file"


def test_stratified_sample_keeps_each_class_share(tmp_path):
    from mlops_ci.data.sample import sample_file

    rng = np.random.default_rng(0)
    rows = 100_000
    labels = np.where(rng.uniform(size=rows) < 0.02, "rare", np.where(rng.uniform(size=rows) < 0.5, "a", "b"))
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"x": rng.normal(size=rows), "label": labels}), path, row_group_size=7_000)
    frame, total = sample_file(path, name="data.parquet", label="label", cap=1_000, seed=3)
    assert total == rows and len(frame) == pytest.approx(1_000, abs=3)
    shares = frame["label"].value_counts(normalize=True)
    expected = pd.Series(labels).value_counts(normalize=True)
    assert shares["rare"] == pytest.approx(expected["rare"], abs=0.002)  # the rare class is not lost
    assert shares["a"] == pytest.approx(expected["a"], abs=0.005)
    again, _ = sample_file(path, name="data.parquet", label="label", cap=1_000, seed=3)
    assert again.equals(frame)  # deterministic for a seed
    small, total = sample_file(path, name="data.parquet", label="label", cap=rows * 2)
    assert len(small) == rows == total  # under the cap: every row


def test_sample_of_a_continuous_label_is_one_stratum(tmp_path):
    from mlops_ci.data.sample import sample_file

    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"x": np.arange(50_000.0), "label": np.arange(50_000.0) / 7}), path,
                   row_group_size=5_000)
    frame, total = sample_file(path, name="data.parquet", label="label", cap=500)
    assert total == 50_000 and len(frame) == 500 and frame["x"].is_unique
