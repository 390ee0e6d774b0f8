"""JSON-lines files (one JSON object per line: ``.jsonl``, ``.ndjson``) read with Arrow's JSON reader.

Column types are inferred from the first block, as for CSV; unlike CSV, Arrow's JSON reader
cannot read a later number as text, so a column whose JSON type changes (``3`` then ``"3"``)
is refused with its name and where, rather than widened. Nested objects and arrays become struct
and list columns, which the profiler lists but does not profile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.data.csvread import ReadOptions
from mlops_ci.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

_CHANGED = re.compile(r"Column\((?P<col>[^)]*)\) changed from (?P<was>\w+) to (?P<to>\w+)")
_HINT = "write each column with one JSON type (e.g. numbers never quoted), and one object per line"


def json_error(name: str, err: Exception, rows: int) -> DataError:
    """What an error of Arrow's JSON reader means, ``rows`` rows into the file."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    where = f"after row {rows:,}" if rows else "in the first rows"
    changed = _CHANGED.search(text)
    if changed:
        column = changed.group("col").lstrip("/")
        return DataError(f"{name}: column {column!r} mixes types: {changed.group('was')} and then "
                         f"{changed.group('to')} ({where})", hint=_HINT)
    if "UTF8" in text or "UTF-8" in text or "utf8" in text:
        return DataError(f"{name}: the file is not valid UTF-8 text ({where})",
                         hint="re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
    return DataError(f"{name}: cannot be read as JSON lines ({where}): {text}", hint=_HINT)


def jsonl_batches(local: Path, name: str, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    """The file's record batches, one block after another (bounded by ``options.block_bytes``)."""
    import pyarrow as pa
    import pyarrow.json as pajson

    rows = 0
    try:
        reader = pajson.open_json(local, read_options=pajson.ReadOptions(block_size=options.block_bytes,
                                                                         use_threads=True))
        if not reader.schema.names:
            raise DataError(f"{name}: the file has no columns")
        for batch in reader:
            batch.validate(full=True)  # Arrow's JSON reader leaves text that is not UTF-8 unchecked
            rows += batch.num_rows
            yield from pa.Table.from_batches([batch]).to_batches(max_chunksize=options.batch_rows)
    except pa.ArrowInvalid as err:
        raise json_error(name, err, rows) from err
    except OSError as err:
        raise DataError(f"{name}: cannot be read as JSON lines: {err}") from err
    if rows == 0:
        raise DataError(f"{name}: the file has no rows", hint="check the export that produced it")


def read_jsonl(local: Path, name: str) -> pa.Table:
    """The whole file as one Arrow table."""
    import pyarrow as pa
    import pyarrow.json as pajson

    try:
        table = pajson.read_json(local)
        table.validate(full=True)
        return table
    except pa.ArrowInvalid as err:
        raise json_error(name, err, 0) from err


def jsonl_columns(local: Path, name: str) -> list[str]:
    """The columns of the first block."""
    import pyarrow as pa
    import pyarrow.json as pajson

    try:
        return list(pajson.open_json(local).schema.names)
    except pa.ArrowInvalid as err:
        raise json_error(name, err, 0) from err


__all__ = ["json_error", "jsonl_batches", "jsonl_columns", "read_jsonl"]
