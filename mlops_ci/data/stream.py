"""Stream a CSV, JSON-lines or Parquet file as Arrow record batches, so memory stays bounded by the batch.

CSV files are read by :mod:`mlops_ci.data.csvread` (ranges parsed ahead on two threads; column
types inferred from the first range; a later value that does not fit raises :class:`Retype`, and
the caller restarts the scan with that column's type fixed, see
:func:`mlops_ci.checks.scan.profile_file`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.data.csvread import ReadOptions, Retype, csv_batches
from mlops_ci.data.jsonlines import jsonl_batches
from mlops_ci.data.tables import detect_format, require_file
from mlops_ci.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

def iter_batches(local: Path, *, name: str, fmt: str = "auto",
                 options: ReadOptions = ReadOptions()) -> Iterator[pa.RecordBatch]:
    """Yield the file's record batches; bad input raises :class:`DataError`, a type clash :class:`Retype`."""
    fmt = detect_format(name, fmt)
    require_file(local, name)
    if fmt == "parquet":
        yield from _parquet_batches(local, name, options)
    elif fmt == "jsonl":
        yield from jsonl_batches(local, name, options)
    else:
        yield from csv_batches(local, name, options)


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


__all__ = ["ReadOptions", "Retype", "iter_batches"]
