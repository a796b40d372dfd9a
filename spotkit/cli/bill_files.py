"""The bill from disk: a FocusCost export as CSV, gzip CSV or Parquet, or a pay-as-you-go subscription's
usage-details CSV (`policies.usage_details`), each read as a stream of rows.

Cost Management writes FocusCost exports as CSV (optionally gzip) or Parquet (optionally Snappy); an
EA/MCA month can be millions of rows, so neither is read whole: CSV row by row, Parquet a record batch
at a time. Parquet values arrive typed (timestamps, decimals, maps); they are given to
`policies.focus.read_bill` as the text a CSV export would hold, so the reconciliation has one reader.
Parquet needs pyarrow (``pip install 'spotkit[parquet]'``; in the dev install), which a node never does.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from policies.focus import REQUIRED as FOCUS_SHAPED
from policies.focus import Bill, FocusError, read_bill
from policies.usage_details import VERSION as USAGE_DETAILS_VERSION
from policies.usage_details import focus_rows, is_usage_details
from runtime.errors import SpotkitError

PARQUET_MAGIC = b"PAR1"


def read_bill_file(path: Path, resource_group: str, slots: set[str], start: float, end: float) -> Bill:
    """A FocusCost export from disk; one clear line for anything that is not one."""
    try:
        with path.open("rb") as handle:
            parquet = handle.read(4) == PARQUET_MAGIC
    except OSError as err:
        raise SpotkitError(f"--bill {path}: cannot read it ({err.strerror or err})") from None
    try:
        if parquet:
            columns, rows = _parquet(path)
            return read_bill(rows, columns, resource_group, slots, start, end)
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as text:
            reader = csv.DictReader(text)
            columns = list(reader.fieldnames or [])
            if is_usage_details(columns):  # a pay-as-you-go subscription's export (no FocusCost there)
                bill = read_bill(focus_rows(reader, columns), FOCUS_SHAPED, resource_group, slots, start, end)
                bill.version = USAGE_DETAILS_VERSION
                return bill
            return read_bill(reader, columns, resource_group, slots, start, end)
    except FocusError as err:
        raise SpotkitError(f"--bill {path}: {err}") from None
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as err:
        raise SpotkitError(f"--bill {path}: cannot read it as a CSV export ({err})") from None


def _parquet(path: Path) -> tuple[list[str], Iterator[Mapping[str, str]]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise SpotkitError(f"--bill {path} is Parquet, which needs pyarrow: pip install 'spotkit[parquet]' "
                           "(or export the FocusCost dataset as CSV)") from None
    try:
        source = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises its own ArrowInvalid / OSError kinds for a damaged file
        raise SpotkitError(f"--bill {path}: not a readable Parquet file ({err})") from None
    columns = list(source.schema_arrow.names)

    def rows() -> Iterator[Mapping[str, str]]:
        for batch in source.iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                yield {name: _text(value) for name, value in row.items()}

    return columns, rows()


def _text(value: Any) -> str:
    """A typed Parquet value as a CSV export would write it (times in UTC, ISO 8601)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list | dict):  # Tags: a map (list of key/value pairs) or a struct
        pairs = dict(value) if isinstance(value, list) else value
        return json.dumps(pairs, sort_keys=True, default=str)
    return str(value)
