"""CSV files read as Arrow record batches, and what Arrow's CSV errors mean.

A plain CSV file is parsed in ranges, two ahead on a thread pool, while the caller profiles the last
one. Arrow's streaming CSV reader parses one block after another on the calling thread
(``use_threads`` gains nothing on a stream), so profiling a CSV file took three times as long as
``pandas.read_csv`` reading it. Here the file is cut into ranges at line ends after its header
(which each range is given again); up to two ranges are parsed ahead on a pool of two threads
(Arrow lets go of the GIL while it parses) and their batches are yielded in the file's order. The
caller sees what the streaming reader gives: the same rows in the same order, column types
inferred from the first range and fixed for the others, the same errors. Like Arrow's reader with
``newlines_in_values`` off (its default), a line end inside a quoted value is not supported.
A compressed file (``.csv.gz``) goes through Arrow's streaming reader.

When a later range holds a value the inferred type cannot hold (``3.5`` in an integer column,
``abc`` in a numeric one, text in a column whose first range was empty), :class:`Retype` says which
column to widen and where.
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from mlops_ci.errors import DataError

if TYPE_CHECKING:
    from concurrent.futures import Future

    import pyarrow as pa

T = TypeVar("T")

_ROW = r"(?:Row #(?P<row>\d+): )?"
_ROW_NUMBER = re.compile(r"Row #(\d+)")
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


def arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    return {"double": pa.float64(), "string": pa.string()}[name]


def csv_batches(local: Path, name: str, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    """A CSV file's record batches: in ranges parsed ahead (:func:`csv_range_batches`), or through
    Arrow's streaming reader when it is compressed."""
    if name.lower().endswith(".gz"):
        yield from csv_stream_batches(local, name, options)
    else:
        yield from csv_range_batches(local, name, options)


def csv_stream_batches(local: Path, name: str, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    """A compressed CSV file through Arrow's streaming reader (one block after another)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter="\t" if name.endswith(".tsv") else ",")
    read = pacsv.ReadOptions(block_size=options.block_bytes, use_threads=False)
    types = {col: arrow_type(t) for col, t in (options.column_types or {}).items()}
    try:
        reader = pacsv.open_csv(local, read_options=read, parse_options=parse,
                                convert_options=pacsv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as err:
        raise csv_error(name, err, None, 0) from err
    rows = 0
    with reader:
        schema = reader.schema
        if not schema.names:
            raise DataError(f"{name}: the file has no columns")
        check_schema(name, schema)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as err:
                raise csv_error(name, err, schema, rows) from err
            rows += batch.num_rows
            yield batch
    if rows == 0:
        raise DataError(f"{name}: the file has a header but no rows", hint="check the export that produced it")


def check_schema(name: str, schema: pa.Schema) -> None:
    """The first block's schema: a column of bytes that are not UTF-8 is refused."""
    import pyarrow as pa

    binary = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    if binary:
        raise DataError(f"{name}: column {binary[0]!r} is not valid UTF-8 text", hint=_UTF8_HINT)


def csv_error(name: str, err: Exception, schema: pa.Schema | None, rows: int, offset: int = 0) -> Exception:
    """What a CSV error of Arrow's means (``offset``: data rows before the text Arrow parsed)."""
    text = str(err)
    first = text.splitlines()[0] if text else type(err).__name__
    if "Empty CSV file" in text:
        return DataError(f"{name}: the CSV file has no header row")
    col = None
    match = _CONVERSION.search(text) or _BAD_UTF8.search(text)
    if match and schema is not None and int(match.group("col")) < len(schema):
        col = schema.names[int(match.group("col"))]
    # Arrow numbers rows from 1 with the header as row 1: the data row is one less
    row = f"row {offset + int(match.group('row')) - 1:,}" if match and match.group("row") else f"after row {rows:,}"
    if match and match.re is _BAD_UTF8 or "UTF8" in text or "UTF-8" in text:
        where = f"column {col!r} at {row}" if col else "the file"
        return DataError(f"{name}: {where} is not valid UTF-8 text", hint=_UTF8_HINT)
    if match and col is not None:
        was = str(schema.field(col).type)
        value = match.group("value")
        return Retype(column=col, was=was, to=_widen(was, value), value=value, where=row)
    if "out of sync with chunker" in text:
        return DataError(f"{name}: a quoted value holds a line break (after row {rows:,}); mlops-ci reads one row "
                         "per line", hint="export the file without line breaks inside values, or as Parquet")
    # the data row in the file (Arrow counts from 1 with the header as row 1, within the text it parsed)
    first = _ROW_NUMBER.sub(lambda m: f"data row {offset + int(m.group(1)) - 1:,}", first)
    return DataError(f"{name}: cannot be read as csv: {first}",
                     hint="check the row shown; every row must have as many fields as the header")


RANGE_BYTES = 16 << 20  # at most; and at least 4 blocks
BLOCK_BYTES = 1 << 20  # at most: Arrow parses 1 MB blocks twice as fast as 16 MB ones (cache)
AHEAD = 2  # ranges parsed ahead of the one being yielded


def line_chunks(handle, size: int) -> Iterator[bytes]:
    """The rest of ``handle`` in pieces of about ``size`` bytes, each ending at a line end (but the last)."""
    tail = b""
    while True:
        data = handle.read(size)
        if not data:
            if tail:
                yield tail
            return
        data = tail + data
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        tail = data[cut:]


def parsed_ahead(pool, chunks: Iterator[bytes], parse: Callable[[bytes], T], depth: int = AHEAD) -> Iterator[Future[T]]:
    """``parse(chunk)`` of each of ``chunks`` on ``pool``, up to ``depth`` submitted ahead of the one
    taken: their futures, in order (those not taken are cancelled when the caller stops)."""
    ahead: deque[Future[T]] = deque()
    try:
        while True:
            while len(ahead) < depth and (chunk := next(chunks, None)) is not None:
                ahead.append(pool.submit(parse, chunk))
            if not ahead:
                return
            yield ahead.popleft()
    finally:
        for future in ahead:
            future.cancel()


def _parse(header: bytes, chunk: bytes, delimiter: str, types: dict, block: int) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(pa.BufferReader(header + chunk),
                          read_options=pacsv.ReadOptions(block_size=block, use_threads=False),
                          parse_options=pacsv.ParseOptions(delimiter=delimiter),
                          convert_options=pacsv.ConvertOptions(column_types=types))


def csv_range_batches(local: Path, name: str, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    """The file's record batches (see the module's docstring)."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    delimiter = "\t" if name.endswith(".tsv") else ","
    fixed = {col: arrow_type(t) for col, t in (options.column_types or {}).items()}
    with open(local, "rb") as handle:
        header = handle.readline()
        block = min(options.block_bytes, BLOCK_BYTES)
        chunks = line_chunks(handle, max(4 * block, min(RANGE_BYTES, 4 * options.block_bytes)))
        first = next(chunks, b"")
        try:  # types are inferred from its first block, as Arrow's streaming reader infers them
            table = _parse(header, first, delimiter, fixed, block)
        except pa.ArrowInvalid as err:
            raise csv_error(name, err, None, 0) from err
        schema = table.schema
        if not schema.names:
            raise DataError(f"{name}: the file has no columns")
        check_schema(name, schema)
        types = {**{f.name: f.type for f in schema}, **fixed}
        rows = 0
        with ThreadPoolExecutor(AHEAD, thread_name_prefix="mlops-ci-csv") as pool:
            later = parsed_ahead(pool, chunks, lambda chunk: _parse(header, chunk, delimiter, types, block))
            with contextlib.closing(later):
                pending = next(later, None)  # the next ranges parse while this one is yielded
                while table is not None:
                    # one batch per range, not per block: the profiler's cost is per batch as much as per row
                    yield from table.combine_chunks().to_batches(max_chunksize=options.batch_rows)
                    rows += table.num_rows
                    try:
                        table = pending.result() if pending is not None else None
                    except pa.ArrowInvalid as err:
                        raise csv_error(name, err, schema, rows, offset=rows) from err
                    pending = next(later, None)
    if rows == 0:
        raise DataError(f"{name}: the file has a header but no rows", hint="check the export that produced it")


__all__ = ["ReadOptions", "Retype", "csv_batches", "csv_error", "line_chunks", "parsed_ahead"]
