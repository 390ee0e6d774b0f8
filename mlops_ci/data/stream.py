"""Stream a CSV or Parquet file as Arrow record batches, so memory stays bounded by the batch.

CSV column types are inferred from the first block. When a later block holds a value the
inferred type cannot hold (``3.5`` in an integer column, ``abc`` in a numeric one, text in a
column whose first block was empty), :class:`Retype` says which column to widen; the caller
restarts the scan with that column's type fixed (see :func:`mlops_ci.checks.scan.profile_file`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.data.tables import require_file, detect_format
from mlops_ci.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

_ROW = r"(?:Row #(?P<row>\d+): )?"
_CONVERSION = re.compile(r"In CSV column #(?P<col>\d+): " + _ROW +
                         r"CSV conversion error to (?P<type>[\w\[\], ]+): invalid value '(?P<value>.*)'$", re.S)
_BAD_UTF8 = re.compile(r"In CSV column #(?P<col>\d+): " + _ROW + r"CSV conversion error to \w+: invalid UTF8 data")
_UTF8_HINT = "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"


@dataclass
class Retype(Exception):
    """A later block of a CSV file does not fit the type inferred from its first block."""

    column: str
    was: str  # the inferred type, e.g. "int64"
    to: str  # "double" or "string"
    value: str  # the first value that did not fit
    where: str  # "row 1,234" or "after row 1,000" when the reader does not say

    def note(self) -> str:
        value = self.value if len(self.value) <= 40 else self.value[:37] + "..."
        return (f"column {self.column!r} mixes types: the first rows read as {self.was}, "
                f"but {self.where} is {value!r}; it was read as {self.to}")


def _widen(was: str, value: str) -> str:
    if was.startswith(("int", "uint")):
        try:
            float(value)
            return "double"
        except ValueError:
            return "string"
    return "string"


@dataclass(frozen=True)
class ReadOptions:
    """How a file is streamed; ``block_bytes`` bounds the memory one CSV block takes."""

    block_bytes: int = 16 << 20
    batch_rows: int = 262_144
    column_types: Mapping[str, str] | None = None  # CSV only: column -> "double" / "string"


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    return {"double": pa.float64(), "string": pa.string()}[name]


def iter_batches(local: Path, *, name: str, fmt: str = "auto",
                 options: ReadOptions = ReadOptions()) -> Iterator[pa.RecordBatch]:
    """Yield the file's record batches; bad input raises :class:`DataError`, a type clash :class:`Retype`."""
    fmt = detect_format(name, fmt)
    require_file(local, name)
    if fmt == "parquet":
        yield from _parquet_batches(local, name, options)
    else:
        yield from _csv_batches(local, name, options)


def _parquet_batches(local: Path, name: str, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(local, pre_buffer=False, buffer_size=options.block_bytes)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"{name}: cannot be read as parquet: {str(err).splitlines()[0]}") from err
    if not pf.schema_arrow.names:
        raise DataError(f"{name}: the file has no columns")
    if pf.metadata.num_rows == 0:
        raise DataError(f"{name}: the file has columns but no rows", hint="check the export that produced it")
    try:
        yield from pf.iter_batches(batch_size=options.batch_rows)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"{name}: cannot be read as parquet: {str(err).splitlines()[0]}") from err


def _csv_batches(local: Path, name: str, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter="\t" if name.endswith(".tsv") else ",")
    read = pacsv.ReadOptions(block_size=options.block_bytes, use_threads=False)
    types = {col: _arrow_type(t) for col, t in (options.column_types or {}).items()}
    try:
        reader = pacsv.open_csv(local, read_options=read, parse_options=parse,
                                convert_options=pacsv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as err:
        raise _csv_error(name, err, None, 0) from err
    rows = 0
    with reader:
        schema = reader.schema
        if not schema.names:
            raise DataError(f"{name}: the file has no columns")
        binary = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
        if binary:  # the first block held bytes that are not UTF-8
            raise DataError(f"{name}: column {binary[0]!r} is not valid UTF-8 text", hint=_UTF8_HINT)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as err:
                raise _csv_error(name, err, schema, rows) from err
            rows += batch.num_rows
            yield batch
    if rows == 0:
        raise DataError(f"{name}: the file has a header but no rows", hint="check the export that produced it")


def _csv_error(name: str, err: Exception, schema: pa.Schema | None, rows: int) -> Exception:
    text = str(err)
    first = text.splitlines()[0] if text else type(err).__name__
    if "Empty CSV file" in text:
        return DataError(f"{name}: the CSV file has no header row")
    col = None
    match = _CONVERSION.search(text) or _BAD_UTF8.search(text)
    if match and schema is not None and int(match.group("col")) < len(schema):
        col = schema.names[int(match.group("col"))]
    # Arrow numbers rows from 1 with the header as row 1: the data row is one less
    row = f"row {int(match.group('row')) - 1:,}" if match and match.group("row") else f"after row {rows:,}"
    if match and match.re is _BAD_UTF8 or "UTF8" in text or "UTF-8" in text:
        where = f"column {col!r} at {row}" if col else "the file"
        return DataError(f"{name}: {where} is not valid UTF-8 text", hint=_UTF8_HINT)
    if match and col is not None:
        was = str(schema.field(col).type)
        value = match.group("value")
        return Retype(column=col, was=was, to=_widen(was, value), value=value, where=row)
    return DataError(f"{name}: cannot be read as csv: {first}",
                     hint="check the row shown; every row must have as many fields as the header")
