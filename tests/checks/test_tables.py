"""Bad data inputs give one clear message each."""

from __future__ import annotations

import re

import pytest

from mlops_ci.data.tables import read_columns, read_frame, read_table, require_label
from mlops_ci.errors import DataError


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty (0 bytes)"),
    (b"a,b,label\n", "the file has a header but no rows"),
    (b"a,b\n1,\xff\xfe\n", "not valid UTF-8"),
])
def test_bad_csv_files(tmp_path, content, message):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)):
        read_table(path, name="data/d.csv")
    with pytest.raises(DataError, match=re.escape(message)):
        read_frame(path, name="data/d.csv")


def test_missing_file_and_label(tmp_path):
    with pytest.raises(DataError, match="data/x.csv: data file not found"):
        read_columns(tmp_path / "x.csv", name="data/x.csv")
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"data/d.csv: label column 'y' not found \(columns: a, b\)"):
        require_label(path, name="data/d.csv", label="y")


def test_unknown_format(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("{}")
    with pytest.raises(DataError, match="cannot tell the file format"):
        read_table(path, name="data/d.json")


def test_mixed_types_and_all_nulls_are_read(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("mixed,empty,label\n1,,0\nx,,1\n2.5,,0\n")
    table = read_table(path, name="d.csv")
    assert str(table.schema.field("mixed").type) == "string"
    assert table.column("empty").null_count == 3
