"""Reading data files: CSV parsed in ranges ahead of the profiler (the same rows, types and errors as
Arrow's streaming reader), and JSON lines (profiled like the same data as CSV; a type change is
refused with its column; `mlops-ci check` on a project whose data are JSON lines)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import cli, commit, git, tiny_frame

from mlops_ci.checks.profiler import ProfileOptions
from mlops_ci.checks.scan import ScanLimits, profile_file
from mlops_ci.data.csvread import ReadOptions, csv_range_batches, csv_stream_batches
from mlops_ci.data.tables import read_frame
from mlops_ci.errors import DataError, ExitCode


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame({"n": rng.integers(0, 1000, rows), "x": rng.normal(size=rows).round(5),
                         "plan": rng.choice(["basic", "standard, annual", 'pro "x"'], rows),
                         "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), "s")})


def _same(a, b):
    assert a.rows == b.rows and list(a.columns) == list(b.columns)
    for name in a.columns:
        x, y = a.columns[name], b.columns[name]
        assert (x.kind, x.nulls, x.categories, x.minimum, x.maximum) == (y.kind, y.nulls, y.categories, y.minimum,
                                                                         y.maximum), name


def test_csv_ranges_give_the_streaming_reader_s_rows_in_order(tmp_path):
    path = tmp_path / "d.csv"
    _frame(120_000).to_csv(path, index=False)
    options = ReadOptions(block_bytes=1 << 20)
    ranges = list(csv_range_batches(path, "d.csv", options))
    assert len(ranges) > 1  # the file spans several ranges
    import pyarrow as pa

    got = pa.Table.from_batches(ranges)
    want = pa.Table.from_batches(list(csv_stream_batches(path, "d.csv", options)))
    assert got.schema == want.schema and got.equals(want)


def test_a_value_that_does_not_fit_a_later_range_names_its_row_in_the_file(tmp_path):
    path = tmp_path / "late.csv"
    rows = [f"{i},{i * 0.5}\n" for i in range(400_000)]
    rows[350_000] = "350000,not a number\n"
    path.write_text("n,x\n" + "".join(rows))
    prof = profile_file(path, name="late.csv", limits=ScanLimits(memory_mb=64))
    assert prof.columns["x"].arrow_type == "string" and prof.rows == 400_000
    assert prof.columns["x"].notes == [("column 'x' mixes types: the first rows read as double, but row 350,001 "
                                        "is 'not a number'; it was read as string")]


def test_a_short_row_in_a_later_range_is_an_error_not_a_retype(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("a,b\n" + "1,2\n" * 300_000 + "3\n" + "4,5\n" * 10)
    with pytest.raises(DataError, match="short.csv: cannot be read as csv"):
        profile_file(path, name="short.csv", limits=ScanLimits(memory_mb=64))


def test_json_lines_profile_as_the_same_data_as_csv(tmp_path):
    frame = _frame(30_000).assign(when=lambda f: f["when"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    options = ProfileOptions()
    _same(profile_file(tmp_path / "d.jsonl", name="d.jsonl", options=options, seed=1),
          profile_file(tmp_path / "d.csv", name="d.csv", options=options, seed=1))
    back = read_frame(tmp_path / "d.jsonl", name="d.jsonl")
    assert back["n"].dtype == np.int64 and not pd.api.types.is_datetime64_any_dtype(back["when"])  # no dates parsed


@pytest.mark.parametrize("text, message", [
    ('{"a": 1, "b": "x"}\n' * 3 + '{"a": "1", "b": "y"}\n', "column 'a' mixes types: number and then string"),
    ('{"a": 1}\nnot json\n', "cannot be read as JSON lines"),
    ('{"a": "x"}\n{"a": "\xff"}\n'.encode("latin-1"), "not valid UTF-8|cannot be read as JSON lines"),
])
def test_json_lines_that_cannot_be_read_say_why(tmp_path, text, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DataError, match=message):
        profile_file(path, name="bad.jsonl")


@pytest.mark.slow
def test_check_on_json_lines_data_through_the_cli(tiny_repo):
    """A project whose data are JSON lines: `mlops-ci check` profiles both sides and finds the drift."""
    def write(seed, shift):
        (tiny_repo / "data").mkdir(exist_ok=True)
        frame = tiny_frame(seed=seed, shift=shift)
        frame.iloc[: len(frame) // 4].to_json(tiny_repo / "data" / "eval.jsonl", orient="records", lines=True)
        frame.iloc[len(frame) // 4:].to_json(tiny_repo / "data" / "train.jsonl", orient="records", lines=True)

    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("data/train.csv", "data/train.jsonl")
                      .replace("data/eval.csv", "data/eval.jsonl"))
    git(tiny_repo, "rm", "--quiet", "data/train.csv", "data/eval.csv")
    write(0, 0.0)
    commit(tiny_repo, "data as JSON lines")
    git(tiny_repo, "checkout", "--quiet", "-b", "pr/shift")
    write(1, 3.0)
    commit(tiny_repo, "new data")
    proc = cli(tiny_repo, "check")
    assert proc.returncode == ExitCode.GATE_FAILED, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert any("column 'x1' drifted" in line for line in proc.stdout.splitlines()), proc.stdout[-2000:]


def test_an_extra_field_late_in_a_csv_names_its_row_in_the_file(tmp_path):
    path = tmp_path / "extra.csv"
    rows = ["1,2\n"] * 400_000
    rows[350_000] = "1,2,3\n"
    path.write_text("a,b\n" + "".join(rows))
    with pytest.raises(DataError, match="data row 350,001: Expected 2 columns, got 3"):
        profile_file(path, name="extra.csv", limits=ScanLimits(memory_mb=64))


def test_a_line_break_inside_quotes_in_a_long_csv_is_named(tmp_path):
    path = tmp_path / "breaks.csv"
    path.write_text("a,b\n" + '1,"two\nlines"\n' * 400_000)
    with pytest.raises(DataError, match="a quoted value holds a line break"):
        profile_file(path, name="breaks.csv", limits=ScanLimits(memory_mb=64))


def _jsonl_rows(n: int, late: str | None = None, at: int = 0) -> bytes:
    lines = [f'{{"n": {i % 7}, "x": {i * 0.5}, "plan": "p{i % 3}", "where": {{"lat": 1.5, "lon": 2}}, "tags": ["a"]}}\n'
             for i in range(n)]
    if late is not None:
        lines[at] = late
    return "".join(lines).encode()


def _read_jsonl(path):
    import pyarrow as pa

    from mlops_ci.data.jsonlines import jsonl_batches

    return pa.Table.from_batches(list(jsonl_batches(path, path.name, ReadOptions(block_bytes=64 << 10))))


@pytest.mark.parametrize("late, column, arrow_type", [
    ('{"n": 3.5, "x": 1.0, "plan": "p1", "where": null, "tags": []}\n', "n", "double"),  # integers, then a decimal
    ('{"n": 1, "x": 1.0, "plan": "p1", "note": "late", "where": null, "tags": []}\n', "note", "string"),  # a new key
])
def test_a_long_json_lines_file_has_one_schema_whatever_its_first_block_holds(tmp_path, late, column, arrow_type):
    path = tmp_path / "long.jsonl"
    path.write_bytes(_jsonl_rows(60_000, late, at=50_000))
    assert path.stat().st_size > 4 << 20  # several ranges of 1 MB
    table = _read_jsonl(path)
    assert table.num_rows == 60_000 and str(table.schema.field(column).type) == arrow_type
    assert table.column(column).null_count == (59_999 if column == "note" else 0)


def test_a_column_null_until_late_takes_its_later_type(tmp_path):
    path = tmp_path / "sparse.jsonl"
    lines = ['{"a": 1, "r": null}\n'] * 60_000
    lines[55_000] = '{"a": 1, "r": 2.5}\n'
    path.write_text("".join(lines))
    table = _read_jsonl(path)
    assert str(table.schema.field("r").type) == "double" and table.column("r").null_count == 59_999


@pytest.mark.parametrize("late, message", [
    ('{"n": "3", "x": 1.0, "plan": "p1", "where": null, "tags": []}\n', "column 'n' mixes types: number and then string"),
    ('not json\n', r"cannot be read as JSON lines \(at row 50,001\)"),
])
def test_a_long_json_lines_file_that_cannot_be_read_says_where(tmp_path, late, message):
    path = tmp_path / "long.jsonl"
    path.write_bytes(_jsonl_rows(60_000, late, at=50_000))
    with pytest.raises(DataError, match=message):
        _read_jsonl(path)


def test_nested_json_values_are_counted_not_profiled(tmp_path):
    path = tmp_path / "nested.jsonl"
    path.write_bytes(_jsonl_rows(2_000))
    prof = profile_file(path, name="nested.jsonl")
    assert {n: c.kind for n, c in prof.columns.items()} == {"n": "numeric", "x": "numeric", "plan": "categorical",
                                                            "where": "nested", "tags": "nested"}
    assert prof.columns["where"].rows == 2_000


def test_a_json_array_is_not_json_lines(tmp_path):
    path = tmp_path / "array.jsonl"
    path.write_text('[{"a": 1}, {"a": 2}]')
    with pytest.raises(DataError, match="one JSON array, not one JSON object per line") as err:
        profile_file(path, name="array.jsonl")
    assert "lines=True" in err.value.hint


def test_config_validate_names_a_data_file_whose_format_it_cannot_tell(tiny_repo):
    config = tiny_repo / ".mlops-ci.yaml"
    config.write_text(config.read_text().replace("data/train.csv", "data/train.json"))
    proc = cli(tiny_repo, "config", "validate")
    assert proc.returncode != 0 and "cannot tell the format of 'data/train.json' from its name" in proc.stdout + proc.stderr
