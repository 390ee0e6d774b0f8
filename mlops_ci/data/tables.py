"""Read CSV, JSON lines or Parquet into an Arrow table, with one clear message per kind of bad input."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa


def detect_format(path: str, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise DataError(f"{path}: cannot tell the file format from its name",
                    hint="name it .csv, .jsonl or .parquet, or set data.format in .mlops-ci.yaml")


def require_file(local: Path, name: str) -> None:
    """Refuse a missing or empty file with the message every reader gives."""
    if not local.is_file():
        raise DataError(f"{name}: data file not found",
                        hint="check data.train / data.eval in .mlops-ci.yaml, or run `dvc pull`")
    if local.stat().st_size == 0:
        raise DataError(f"{name}: the file is empty (0 bytes)", hint="regenerate or re-export it")


def label_missing(name: str, label: str, columns) -> DataError:
    shown = ", ".join(map(str, list(columns)[:20])) + (" ..." if len(columns) > 20 else "")
    return DataError(f"{name}: label column {label!r} not found (columns: {shown})",
                     hint="fix data.label in .mlops-ci.yaml or the data export")


def read_table(local: Path, *, name: str, fmt: str = "auto") -> pa.Table:
    """Read ``local`` (shown to users as ``name``) as an Arrow table."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    fmt = detect_format(name, fmt)
    require_file(local, name)
    if fmt == "jsonl":
        from mlops_ci.data.jsonlines import read_jsonl

        table = read_jsonl(local, name)
        if table.num_columns == 0:
            raise DataError(f"{name}: the file has no columns")
        return table
    try:
        if fmt == "parquet":
            table = pq.read_table(local)
        else:
            table = pacsv.read_csv(
                local,
                parse_options=pacsv.ParseOptions(delimiter="\t" if name.endswith(".tsv") else ","),
            )
    except pa.ArrowInvalid as err:
        text = str(err)
        if "UTF8" in text or "utf8" in text or "UTF-8" in text:
            raise DataError(f"{name}: the file is not valid UTF-8 text ({text.splitlines()[0]})",
                            hint="re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from err
        if "Empty CSV file" in text:
            raise DataError(f"{name}: the CSV file has no header row") from err
        raise DataError(f"{name}: cannot be read as {fmt}: {text.splitlines()[0]}") from err
    except OSError as err:
        raise DataError(f"{name}: cannot be read as {fmt}: {err}") from err
    if table.num_columns == 0:
        raise DataError(f"{name}: the file has no columns")
    if fmt == "csv":
        # pyarrow reads text that is not UTF-8 as binary instead of failing
        binary = [f.name for f in table.schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
        if binary:
            raise DataError(f"{name}: column {binary[0]!r} is not valid UTF-8 text",
                            hint="re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
    if table.num_rows == 0:
        raise DataError(f"{name}: the file has a header but no rows",
                        hint="check the export that produced it")
    return table


def read_columns(local: Path, *, name: str, fmt: str = "auto") -> list[str]:
    """Column names without reading the whole file (first CSV block, or the Parquet footer)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    fmt = detect_format(name, fmt)
    require_file(local, name)
    if fmt == "jsonl":
        from mlops_ci.data.jsonlines import jsonl_columns

        return jsonl_columns(local, name)
    try:
        if fmt == "parquet":
            return list(pq.read_schema(local).names)
        with pacsv.open_csv(local) as reader:
            return list(reader.schema.names)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"{name}: cannot be read as {fmt}: {str(err).splitlines()[0]}") from err


def require_label(local: Path, *, name: str, label: str, fmt: str = "auto") -> None:
    columns = read_columns(local, name=name, fmt=fmt)
    if label not in columns:
        raise label_missing(name, label, columns)


def read_frame(local: Path, *, name: str, fmt: str = "auto"):
    """A pandas DataFrame as users' own code reads the file (``pd.read_csv`` / ``pd.read_parquet`` /
    ``pd.read_json(lines=True, dtype=False)``, its JSON types kept: no dates parsed, no floats made integers;
    a BOM skipped, as the profile skips it).

    Models are fed this form, so that dates stay strings as in a serving request and integer
    columns stay integers, matching the signature the training script inferred.
    """
    import pandas as pd

    fmt = detect_format(name, fmt)
    require_file(local, name)
    try:
        if fmt == "jsonl":
            frame = pd.read_json(local, lines=True, dtype=False, encoding="utf-8-sig")  # dtype=False: no dates either
        else:
            frame = pd.read_parquet(local) if fmt == "parquet" else pd.read_csv(local, low_memory=False)
    except UnicodeDecodeError as err:
        raise DataError(f"{name}: the file is not valid UTF-8 text (byte {err.start})",
                        hint="re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from err
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{name}: the CSV file has no header row") from err
    except (pd.errors.ParserError, ValueError, OSError) as err:
        raise DataError(f"{name}: cannot be read as {fmt}: {str(err).splitlines()[0]}") from err
    if len(frame) == 0:
        raise DataError(f"{name}: the file has a header but no rows", hint="check the export that produced it")
    return frame
