"""``python -m <package> batch-score``: score a CSV/Parquet table of any size into Parquet.

    python -m <package> batch-score --input table.parquet --output scored.parquet
        [--engine local|spark] [--master local[4]] [--model-uri models:/<name>@champion]

Writes to a hidden temporary name beside ``--output`` and renames it when every row is
scored: an ``--output`` that exists is complete.  Exits 2 on bad input (a missing file, a
table that breaks the data contract) with a one-line reason, leaving no output behind.
``make batch-score INPUT=... OUTPUT=...`` runs it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..settings import Env, load_settings

if TYPE_CHECKING:
    from .scorer import Scorer

HELP = "Score a CSV/Parquet table of any size into Parquet"
ENGINES = ("local", "spark")
BATCH_ROWS = 65_536


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of the ``batch-score`` sub-command on ``parser``."""
    parser.add_argument(
        "--input",
        required=True,
        help="CSV or Parquet table to score (spark: also a folder or a URI, hdfs://, s3a://...)",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="Parquet output: a file (local engine) or a folder of parts (spark; also a URI)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=os.environ.get(Env.SCORE_ENGINE) or "local",
        help="local: stream in chunks on this machine; spark: Apache Spark "
        "(default: $SCORE_ENGINE, else local)",
    )
    parser.add_argument(
        "--master",
        default=os.environ.get(Env.SPARK_MASTER) or None,
        help="spark.master for --engine spark, e.g. local[2], yarn, k8s://https://host:443 "
        "(default: $SPARK_MASTER, else spark-submit's, else local[*])",
    )
    parser.add_argument(
        "--model-uri",
        default=os.environ.get(Env.MODEL_URI) or None,
        help="MLflow model to score with, e.g. models:/<name>@champion (default: $MODEL_URI; "
        "unset: the bundle models/bundle when present, else models:/<name>@champion)",
    )
    parser.add_argument(
        "--bundle", type=Path, help="serving bundle folder (default: models/bundle)"
    )
    parser.add_argument(
        "--keep",
        default="",
        help="comma-separated input columns to carry into the output (e.g. an id)",
    )
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=BATCH_ROWS,
        help=f"rows per scored chunk (default: {BATCH_ROWS})",
    )


def main(argv: Sequence[str]) -> int:
    """Parse ``batch-score``'s arguments and run it (the package's CLI hands them over)."""
    parser = argparse.ArgumentParser(
        prog=f"{__package__.rpartition('.')[0]} batch-score", description=HELP
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def _discard(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _check_columns(scorer: Scorer, source: Path) -> None:
    """Fail before any row is read when a needed column is absent (from the header/footer)."""
    from ..data import table_columns
    from .scorer import InputError

    present = set(table_columns(source))
    missing = [name for name in scorer.columns if name not in present]
    if missing:
        raise InputError(
            f"{source}: missing column(s) {', '.join(missing)} of the data contract"
            if set(missing) - set(scorer.keep)
            else f"{source}: no column(s) {', '.join(missing)} to keep"
        )


def run(args: argparse.Namespace) -> int:
    """Score the table; 0 done, 2 bad input (nothing is left at ``--output``)."""
    started = time.perf_counter()
    spark = args.engine == "spark"
    uris = [spark_uri(text) for text in (args.input, args.output)]
    output = Path(args.output)
    temporary = output.parent / f".{output.name}.tmp-{os.getpid()}"
    source, target = (
        text if uri else str(Path(text).resolve())
        for text, uri in zip((args.input, args.output), uris, strict=True)
    )
    if spark:  # Spark starts first, in the background: it takes longer than the model
        from . import spark as engine

        engine.launch(
            args.master, light=engine.reads_files(source, target), batch_rows=args.batch_rows
        )
        engine.wait_local_start()  # on one machine the JVM starts fastest alone
    # after Spark's start: these load pandas and scikit-learn
    from ..contract import ContractError
    from ..data import DataSourceError, table_columns
    from .scorer import InputError, Scorer

    try:
        if args.batch_rows < 1:
            raise InputError("--batch-rows must be at least 1")
        if any(uris) and not spark:
            raise InputError("a URI input or output needs --engine spark")
        settings = load_settings()
        bundle_dir = args.bundle or settings.bundle_dir
        keep = tuple(name.strip() for name in args.keep.split(",") if name.strip())
        if not uris[0]:  # a missing or unreadable input fails before the model loads
            table_columns(Path(args.input))
        scorer = Scorer.load(settings, model_uri=args.model_uri, bundle_dir=bundle_dir, keep=keep)
        if not uris[0]:
            _check_columns(scorer, Path(args.input))
        if spark:
            rows = engine.run(
                scorer, source, target, batch_rows=args.batch_rows, master=args.master
            )
        else:
            from . import local

            output.parent.mkdir(parents=True, exist_ok=True)
            _discard(temporary)
            rows = local.run(scorer, Path(args.input), temporary, batch_rows=args.batch_rows)
            if output.exists() or output.is_symlink():
                _discard(output)
            temporary.rename(output)
    except (InputError, DataSourceError, ContractError, FileNotFoundError) as error:
        _discard(temporary)
        print(f"batch-score: error: {error}", file=sys.stderr)
        return 2
    except BaseException as error:
        _discard(temporary)
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        print(f"batch-score: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    print(
        f"batch-score: {rows} rows -> {args.output} (engine {args.engine}, model {scorer.source}, "
        f"version {scorer.model_version or '-'}, run {scorer.run_id or '-'}) in {seconds:.1f} s, "
        f"{rows / max(seconds, 1e-9):,.0f} rows/s"
    )
    return 0


def spark_uri(location: str) -> bool:
    """Whether ``location`` is a URI (``hdfs://``, ``s3a://``, ``file:``) rather than a path."""
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", location)) and not Path(location).exists()
