"""The Spark engine: the same chunk function, applied per partition with ``mapInPandas``.

Spark reads the input in partitions (one file split each) and hands every Python worker
Arrow batches of its partition as pandas frames; :meth:`.scorer.Scorer.score` scores them,
exactly as the local engine does.  The model is loaded once, in the driver, and shipped to
the workers with the function: executors need the project's package, not the bundle or the
MLflow server.  Row ids are the input's row positions: a first pass counts each partition's
rows, and every partition numbers its rows from the sum of the ones before it.

Runs on ``local[*]`` by default; ``--master`` (or ``SPARK_MASTER``) takes any
``spark.master``, and under ``spark-submit`` the master and configuration it was given win.
The Spark UI is off unless configured on.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from typing import Any

from .local import csv_types
from .scorer import InputError, Scorer

DEFAULT_MASTER = "local[*]"


def session(master: str | None, batch_rows: int) -> Any:
    """Start (or join, under spark-submit) the Spark session."""
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    # Local mode: the Python workers are this interpreter (the project's environment).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if (master or os.environ.get("MASTER") or DEFAULT_MASTER).startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # one machine: loopback only
    # Start (or, under spark-submit, reach) the JVM first: the configuration spark-submit
    # and spark-defaults.conf gave is read from it.
    SparkContext._ensure_initialized()
    conf = SparkConf()
    builder = SparkSession.builder.appName("batch-score")
    if master or not conf.contains("spark.master"):
        builder = builder.master(master or DEFAULT_MASTER)
    defaults = {
        "spark.ui.enabled": "false",
        # a failed task logs its stack trace at ERROR: the command reports it on one line
        "spark.log.level": "FATAL",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(batch_rows),
        "spark.sql.session.timeZone": "UTC",
    }
    if (master or conf.get("spark.master", DEFAULT_MASTER)).startswith("local"):
        defaults.update({"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"})
    for key, value in defaults.items():
        if not conf.contains(key):
            builder = builder.config(key, value)
    # progress bars would interleave with the command's own output (pyspark turns them on)
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    return builder.getOrCreate()


def read(spark: Any, scorer: Scorer, source: str) -> Any:
    """Return the input as a DataFrame of the scorer's columns (CSV typed like the local engine).

    A ``.csv`` (or ``.csv.gz``...) is CSV with a header, anything else Parquet (a file or a
    folder).  A missing contract column raises :class:`InputError`.
    """
    from pyspark.sql import types

    if ".csv" not in source.lower().rsplit("/", 1)[-1]:
        frame = spark.read.parquet(source)
    else:
        numbers, _ = csv_types(scorer)
        names = spark.read.csv(source, header=True).columns  # the header line only
        schema = types.StructType(
            [
                types.StructField(
                    name, types.DoubleType() if name in numbers else types.StringType()
                )
                for name in names
            ]
        )
        frame = spark.read.csv(
            source, header=True, schema=schema, mode="FAILFAST", escape='"', enforceSchema=False
        )
    missing = [name for name in scorer.columns if name not in frame.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)} of the data contract")
    return frame.select(*scorer.columns)


def _keep_types(scorer: Scorer, frame: Any) -> dict[str, Any]:
    """Return the pyarrow types of the carried columns, as Spark read them."""
    from pyspark.sql.pandas.types import to_arrow_type

    return {name: to_arrow_type(frame.schema[name].dataType) for name in scorer.keep}


class _Files:
    """The output's file system (Hadoop's: local, HDFS, S3...), for the rename at the end."""

    def __init__(self, spark: Any, location: str) -> None:
        self.jvm = spark.sparkContext._jvm
        self.conf = spark.sparkContext._jsc.hadoopConfiguration()
        self.fs = self.path(location).getFileSystem(self.conf)

    def path(self, location: str) -> Any:
        return self.jvm.org.apache.hadoop.fs.Path(location)

    def exists(self, location: str) -> bool:
        return bool(self.fs.exists(self.path(location)))

    def delete(self, location: str) -> None:
        if self.exists(location):
            self.fs.delete(self.path(location), True)

    def rename(self, source: str, target: str) -> None:
        self.fs.mkdirs(self.path(target).getParent())
        if not self.fs.rename(self.path(source), self.path(target)):
            raise OSError(f"cannot rename {source} to {target}")


class SparkError(RuntimeError):
    """Spark failed for a reason other than the input (the message is Spark's first line)."""


def _offsets(frame: Any) -> tuple[dict[int, int], int]:
    """Return the first row id of every partition (the rows before it), and the total."""
    from pyspark.sql import functions

    counts = dict(frame.groupBy(functions.spark_partition_id().alias("p")).count().collect())
    offsets, total = {}, 0
    for partition in range(frame.rdd.getNumPartitions()):
        offsets[partition] = total
        total += int(counts.get(partition, 0))
    return offsets, total


def _reason(error: Exception) -> tuple[bool, str]:
    """Return ``(bad input?, one line)`` of a Spark error: a worker's, or Spark's first line."""
    text = str(error)
    ours = re.search(r"(?:InputError|DataSourceError): (.+)", text)
    if ours:
        return True, ours.group(1).strip()
    if "PATH_NOT_FOUND" in text:
        return True, "not found"
    if "MALFORMED_RECORD" in text or "Malformed records" in text:
        value = re.search(r'For input string: ("[^"]*")', text)
        return True, "a CSV value does not parse as its column's type (numeric features: " + (
            f"numbers; found {value.group(1)})" if value else "numbers)"
        )
    first = next((line.strip() for line in text.splitlines() if line.strip()), repr(error))
    return False, first[:500]


def run(scorer: Scorer, source: str, output: str, *, batch_rows: int, master: str | None) -> int:
    """Score ``source`` into the Parquet folder ``output`` on Spark; return the row count.

    Spark writes a hidden folder beside ``output`` and it is renamed to ``output`` when every
    partition is written (``_SUCCESS`` in it); on failure it is deleted.
    """
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException
    from pyspark.sql.pandas.types import from_arrow_schema

    parent, _, name = output.rstrip("/").rpartition("/")
    temporary = f"{parent or '.'}/.{name}.tmp-{os.getpid()}"
    spark = session(master, batch_rows)
    files = _Files(spark, output)
    try:
        frame = read(spark, scorer, source)
        schema = from_arrow_schema(scorer.output_schema(_keep_types(scorer, frame)))
        offsets, total = _offsets(frame)

        def score_partition(frames: Iterator[Any]) -> Iterator[Any]:
            from pyspark import TaskContext

            task = TaskContext.get()
            assert task is not None, "runs in a Spark task"
            row = offsets[task.partitionId()]
            for chunk in frames:
                yield scorer.score(chunk, row)
                row += len(chunk)

        files.delete(temporary)
        frame.mapInPandas(score_partition, schema).write.mode("error").parquet(temporary)
        files.delete(output)
        files.rename(temporary, output)
        return total
    except (PySparkException, Py4JError) as error:
        files.delete(temporary)
        bad_input, reason = _reason(error)
        if bad_input:
            raise InputError(f"{source}: {reason}") from None
        raise SparkError(f"spark: {reason}") from None
    except BaseException:
        files.delete(temporary)
        raise
    finally:
        spark.stop()
