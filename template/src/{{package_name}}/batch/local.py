"""The embedded engine: stream the input in chunks, score each, append it to the output file.

Memory is bounded by one chunk (a Parquet input: one row group), whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..data import DataSourceError, iter_table, table_format
from .scorer import InputError, Scorer


def csv_types(scorer: Scorer) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return ``(numbers, texts)``: how to read a CSV's columns (the same in both engines).

    Numeric features as float64; categorical and boolean features and the carried columns as
    text (the contract converts them, as it converts training data).
    """
    numbers = tuple(n for n in scorer.contract.numeric if n not in scorer.keep)
    texts = tuple(n for n in scorer.columns if n not in numbers)
    return numbers, texts


def keep_types(scorer: Scorer, path: Path) -> dict[str, Any]:
    """Return the pyarrow types of the carried columns in the output (CSV: text)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not scorer.keep:
        return {}
    if table_format(path) == "csv":
        return dict.fromkeys(scorer.keep, pa.string())
    schema = ds.dataset(path, format="parquet").schema
    return {name: schema.field(name).type for name in scorer.keep}


def parquet_batches(
    path: str, columns: list[str], *, batch_rows: int, row_groups: list[int]
) -> Iterator[pd.DataFrame]:
    """Stream ``columns`` of some row groups of one Parquet file, as :func:`..data.iter_table`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path, pre_buffer=False)
        for batch in parquet.iter_batches(
            batch_size=batch_rows, row_groups=row_groups, columns=columns
        ):
            if batch.num_rows:
                yield batch.to_pandas()
    except (OSError, pa.ArrowException) as error:
        raise DataSourceError(f"{path}: cannot be read as parquet ({error})") from None


def write(
    scorer: Scorer,
    frames: Iterable[pd.DataFrame],
    target: Path,
    schema: Any,
    *,
    first_row: int = 0,
    source: object = None,
) -> int:
    """Score ``frames`` (row ``first_row`` onwards) into the Parquet file ``target``; count rows.

    A chunk that breaks the contract raises :class:`InputError` (prefixed by ``source``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = first_row
    # Dictionary pages only for text: trying them on every float column doubles the write time.
    text = [f.name for f in schema if pa.types.is_string(f.type)]
    with pq.ParquetWriter(target, schema, use_dictionary=text) as writer:
        for frame in frames:
            try:
                scored = scorer.score(frame, rows, schema)
            except InputError as error:
                if source is None:
                    raise
                raise InputError(f"{source}: {error}") from None
            writer.write_table(scored)
            rows += len(frame)
    return rows - first_row


def run(scorer: Scorer, source: Path, target: Path, *, batch_rows: int) -> int:
    """Score ``source`` into the Parquet file ``target``; return the number of rows."""
    numbers, texts = csv_types(scorer)
    frames = iter_table(source, scorer.columns, batch_rows=batch_rows, numbers=numbers, texts=texts)
    return write(
        scorer, frames, target, scorer.output_schema(keep_types(scorer, source)), source=source
    )
