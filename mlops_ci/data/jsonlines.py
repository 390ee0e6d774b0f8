"""JSON-lines files (one JSON object per line: ``.jsonl``, ``.ndjson``) read with Arrow's JSON reader.

The file is cut into ranges at line ends (as :mod:`.csvread` cuts CSV). A file of one range is
parsed once. A longer one is parsed twice, both times on a pool of two threads: first for its
schema, the union of every range's (a column that appears late, or is null until late, takes the
type it has where it has values; integers met by decimals become decimals; timestamps met by
other text become text), then for its rows with that schema, so a file's types never depend on
what its first block holds. A column whose JSON type really changes (``3`` in one row, ``"3"``
in another) is refused with its name and the range where it changed. Nested objects and arrays
become struct and list columns, which the profiler counts but does not profile. A BOM is skipped;
one JSON array (not lines) is refused with what to do instead.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.data.csvread import RANGE_BYTES, ReadOptions, line_chunks, parsed_ahead
from mlops_ci.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

_CHANGED = re.compile(r"Column\((?P<col>[^)]*)\) changed from (?P<was>\w+) to (?P<to>\w+)")
_ROW = re.compile(r" in row (?P<row>\d+)$")
_HINT = "write each column with one JSON type (e.g. numbers never quoted), and one object per line"
_ARRAY_HINT = 'write one object per line (pandas: to_json(orient="records", lines=True))'
AHEAD = 2


def json_error(name: str, err: Exception, rows: int) -> DataError:
    """What an error of Arrow's JSON reader means; ``rows``: the data rows before the text it parsed."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    row = _ROW.search(text)
    where = f"at row {rows + int(row.group('row')) + 1:,}" if row else f"after row {rows:,}" if rows else "near the top"
    text = _ROW.sub("", text)
    changed = _CHANGED.search(text)
    if changed:
        column = changed.group("col").lstrip("/")
        if not column:
            return DataError(f"{name}: the file is one JSON document, not one JSON object per line", hint=_ARRAY_HINT)
        return DataError(f"{name}: column {column!r} mixes types: {changed.group('was')} and then "
                         f"{changed.group('to')} ({where})", hint=_HINT)
    if "UTF8" in text or "UTF-8" in text or "utf8" in text:
        return DataError(f"{name}: the file is not valid UTF-8 text ({where})",
                         hint="re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
    return DataError(f"{name}: cannot be read as JSON lines ({where}): {text}", hint=_HINT)


def _parse(chunk: bytes, schema: pa.Schema | None) -> pa.Table:
    import pyarrow as pa
    import pyarrow.json as pajson

    parse = (pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore") if schema is not None
             else pajson.ParseOptions())
    table = pajson.read_json(pa.BufferReader(chunk), read_options=pajson.ReadOptions(block_size=len(chunk) + 1,
                                                                                    use_threads=False),
                             parse_options=parse)
    table.validate(full=True)  # Arrow's JSON reader leaves text that is not UTF-8 unchecked
    return table


def _json_kind(dtype: pa.DataType) -> str:
    import pyarrow.types as t

    if t.is_integer(dtype) or t.is_floating(dtype):
        return "number"
    if t.is_boolean(dtype):
        return "boolean"
    if t.is_struct(dtype):
        return "object"
    if t.is_list(dtype) or t.is_large_list(dtype):
        return "array"
    return "string"


def _merged(name: str, column: str, have: pa.DataType, got: pa.DataType, rows: int) -> pa.DataType:
    import pyarrow as pa
    import pyarrow.types as t

    if have == got or t.is_null(got):
        return have
    if t.is_null(have):
        return got
    if (t.is_temporal(have) and t.is_string(got)) or (t.is_string(have) and t.is_temporal(got)):
        return pa.string()
    try:
        return pa.unify_schemas([pa.schema([("c", have)]), pa.schema([("c", got)])],
                                promote_options="permissive").field("c").type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        raise DataError(f"{name}: column {column!r} mixes types: {_json_kind(have)} and then {_json_kind(got)} "
                        f"(after row {rows:,})", hint=_HINT) from None


def _schema(name: str, tables: Iterator[tuple[int, pa.Table]]) -> pa.Schema:
    """The union of the ranges' schemas (see the module's docstring)."""
    import pyarrow as pa

    fields: dict[str, pa.DataType] = {}
    for rows, table in tables:
        for f in table.schema:
            fields[f.name] = f.type if f.name not in fields else _merged(name, f.name, fields[f.name], f.type, rows)
    return pa.schema(list(fields.items()))


def _ranges(pool, local: Path, name: str, schema: pa.Schema | None, size: int) -> Iterator[tuple[int, pa.Table]]:
    """(data rows before it, table) per range, in order, parsed up to AHEAD ranges ahead on ``pool``."""
    import pyarrow as pa

    with open(local, "rb") as handle, contextlib.closing(
            parsed_ahead(pool, line_chunks(handle, size), lambda chunk: _parse(chunk, schema), AHEAD)) as tables:
        rows = 0
        for future in tables:
            try:
                table = future.result()
            except pa.ArrowInvalid as err:
                raise json_error(name, err, rows) from err
            yield rows, table
            rows += table.num_rows


def _first_byte(local: Path) -> bytes:
    with open(local, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1]


def jsonl_batches(local: Path, name: str, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    """The file's record batches, with one schema for the whole file (see the module's docstring)."""
    from concurrent.futures import ThreadPoolExecutor

    if _first_byte(local) == b"[":
        raise DataError(f"{name}: the file is one JSON array, not one JSON object per line", hint=_ARRAY_HINT)
    size = max(4 * options.block_bytes, min(RANGE_BYTES, 16 * options.block_bytes))
    total = 0
    with ThreadPoolExecutor(AHEAD, thread_name_prefix="mlops-ci-jsonl") as pool:
        schema = None
        if local.stat().st_size > size:  # more than one range: their schemas first
            schema = _schema(name, _ranges(pool, local, name, None, size))
        for _, table in _ranges(pool, local, name, schema, size):
            if not table.num_columns:
                raise DataError(f"{name}: the file has no columns")
            total += table.num_rows
            yield from table.combine_chunks().to_batches(max_chunksize=options.batch_rows)
    if total == 0:
        raise DataError(f"{name}: the file has no rows", hint="check the export that produced it")


def read_jsonl(local: Path, name: str) -> pa.Table:
    """The whole file as one Arrow table."""
    import pyarrow as pa

    return pa.Table.from_batches(list(jsonl_batches(local, name, ReadOptions())))


def jsonl_columns(local: Path, name: str) -> list[str]:
    """The file's columns (of every range: a column that appears late is listed too)."""
    return [f.name for f in next(iter(jsonl_batches(local, name, ReadOptions()))).schema]


__all__ = ["json_error", "jsonl_batches", "jsonl_columns", "read_jsonl"]
