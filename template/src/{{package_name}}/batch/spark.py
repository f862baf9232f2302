"""The Spark engine: the same chunk function, run by Spark's Python workers, in parallel.

Two ways, by where the tables are:

* a Parquet input and an output on the local file system (a path or ``file:``) with a
  ``local[...]`` master: the driver reads the files' footers and packs their row groups
  into tasks (as Spark sizes file splits); each task, in a Python worker, reads its row
  groups, scores them and writes its own part with pyarrow, exactly as the local engine does
  (:func:`_score_files`).  The JVM only schedules (no SQL session is started), so a task is
  one busy process and ``local[N]`` keeps N cores busy; row ids come from the footers' row
  counts.
* anything else (CSV, which Spark splits; a cluster; ``hdfs://``, ``s3a://``... through
  Spark's own file systems and credentials): Spark reads partitions and hands them to the
  workers as Arrow batches with ``mapInArrow``, and writes the output
  (:func:`_score_frame`).  A first pass counts each partition's rows for the row ids.

Either way :meth:`.scorer.Scorer.score` scores the chunks.  The model is loaded once, in the
driver, and shipped to the workers: executors need the project's package, not the bundle or
the MLflow server.  Runs on ``local[*]`` by default; ``--master`` (or ``SPARK_MASTER``) takes
any ``spark.master``, and under ``spark-submit`` the master and configuration it was given
win.  The Spark UI is off unless configured on.

A local run's start is kept short, since it counts against every run (:func:`launch`): the
JVM and the context start first, the JVM mapping a class archive that the environment's
first run recorded; then the model loads while the Python workers start, forked from a
daemon that has imported the scoring code (:mod:`.daemon`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Imported light (pyspark and the scoring code only where used): the JVM starts first.
if TYPE_CHECKING:
    from .scorer import Scorer

DEFAULT_MASTER = "local[*]"
# The JVM of a local run whose Python workers read and write the tables only schedules: the
# quick JIT and the serial collector leave the cores to the workers (seconds of CPU saved).
# Given as spark.driver.defaultJavaOptions: a team's spark.driver.extraJavaOptions still apply.
LIGHT_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# Class data sharing (the JDK's CDS): before its first task a local run's JVM loads some ten
# thousand classes from Spark's jars, about a second of every start.  The first local run
# records them as its JVM exits (-XX:ArchiveClassesAtExit, under a temporary name, put in
# place once the JVM has exited: a half-written archive would crash the next JVM); later
# runs map the archive (-XX:SharedArchiveFile).  One archive per java, pyspark and class
# path, in this environment (:func:`class_archive`); the JVM checks it against the jars and
# runs without it when they differ.  Delete the file to record it anew.
QUIET_CDS = "-Xlog:cds=off -Xlog:cds+dynamic=off"
# Spark's launch scripts put these on the JVM's class path (an archive records its path)
CLASS_PATH_VARIABLES = (
    "SPARK_HOME",
    "SPARK_CONF_DIR",
    "SPARK_DIST_CLASSPATH",
    "HADOOP_CONF_DIR",
    "YARN_CONF_DIR",
)

_launch: dict[str, Any] = {}


def _local_master(master: str | None) -> bool:
    return (master or os.environ.get("MASTER") or DEFAULT_MASTER).startswith("local")


def launch(master: str | None, *, light: bool, batch_rows: int) -> None:
    """Start Spark in the background (it takes seconds; so does the model's load).

    The thread starts the JVM and the context (:func:`_new_context`); ``light``, a local run
    that scores files (:func:`reads_files`), then starts the Python workers (:func:`_warm_up`)
    and gets the :data:`LIGHT_JVM` options.  Under spark-submit this reaches the JVM that
    started this process.  A local run that starts its own JVM shares the classes of an
    archive (:data:`QUIET_CDS`).  :func:`context` waits for the thread.

    On a local master the JVM, the workers and the driver share this machine's cores, and
    the JVM's start (class loading, its compiler) is the longest step that nothing else can
    shorten: the driver loads the model once the context is up (:func:`wait_local_start`),
    while the workers start, rather than against the JVM.
    """
    import threading

    from pyspark import SparkConf, SparkContext

    # Local mode: the Python workers are this interpreter (the project's environment).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = SparkConf()
    if _local_master(master):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # one machine: loopback only
        if not {"PYSPARK_SUBMIT_ARGS", "PYSPARK_GATEWAY_PORT"} & set(os.environ):
            archive, recording = class_archive()
            if recording:
                _launch["archive"] = archive, recording
                sharing = f'-XX:ArchiveClassesAtExit="{recording}" {QUIET_CDS}'
            else:
                sharing = f'-XX:SharedArchiveFile="{archive}" {QUIET_CDS}' if archive else ""
            options = f"{LIGHT_JVM if light else ''} {sharing}".strip()
            if options:
                conf.set("spark.driver.defaultJavaOptions", options)

    started = threading.Event()

    def start() -> None:
        try:
            SparkContext._ensure_initialized(conf=conf)
            _launch["context"] = sc = _new_context(master, batch_rows)
        except BaseException as error:  # raised again by context(), in the main thread
            _launch["error"] = error
            return
        finally:
            started.set()
        if light and _local_master(sc.master):
            _warm_up(sc)

    if _local_master(master) and "PYSPARK_GATEWAY_PORT" not in os.environ:
        _launch["started"] = started
    _launch["thread"] = threading.Thread(target=start, name="spark-launch", daemon=True)
    _launch["thread"].start()


def wait_local_start() -> None:
    """On a local master that this process started, wait until the context is up (or failed)."""
    started = _launch.pop("started", None)
    if started is not None:
        started.wait()


def class_archive() -> tuple[Path | None, Path | None]:
    """Return ``(archive, temporary)``: this java's and pyspark's class archive (CDS).

    ``archive`` is ``<environment>/var/cache/<package>/spark-<key>.jsa``, the key made of the
    java, the pyspark version and :data:`CLASS_PATH_VARIABLES` (``None`` when there is no
    java on the path or the folder cannot be made); ``temporary``, the name this run
    records it under when it is not there yet and the folder is writable, else ``None``.
    Temporary files of runs that ended before putting theirs in place are removed.
    """
    import hashlib
    import shutil

    import pyspark

    home = os.environ.get("JAVA_HOME")
    java = str(Path(home, "bin", "java")) if home else shutil.which("java")
    folder = Path(sys.prefix, "var", "cache", __name__.split(".")[0])
    try:
        binary = Path(java or "").resolve(strict=True)
        # what makes the JVM's class path: another one needs an archive of its own
        places = [os.environ.get(name, "") for name in CLASS_PATH_VARIABLES]
        stamp = f"{binary}:{binary.stat().st_mtime_ns}:{pyspark.__version__}:{places}"
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # no java (Spark says so as it starts), or a read-only environment
        return None, None
    archive = folder / f"spark-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}.jsa"
    if archive.is_file() or not os.access(folder, os.W_OK) or re.search(r'[\s"]', str(folder)):
        return archive, None
    for stale in folder.glob(".spark-*.jsa.*"):
        pid = stale.name.rpartition(".")[2]
        if pid.isdigit() and not Path("/proc", pid).exists():
            stale.unlink(missing_ok=True)
    return archive, folder / f".{archive.name}.{os.getpid()}"


def _keep_archive(archive: Path, temporary: Path) -> None:
    """Let this run's JVM exit (writing the class archive as it does); put the archive in place."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    process = getattr(gateway, "proc", None)
    if process is None:
        return
    try:
        gateway.shutdown()
        process.stdin.close()  # the JVM exits when its input closes
        code = process.wait(timeout=120)
    except Exception:  # the archive only speeds starts up: it never fails a run
        code = None
    SparkContext._gateway = SparkContext._jvm = None  # a later context starts a new JVM
    if code == 0 and temporary.is_file() and temporary.stat().st_size:
        temporary.replace(archive)
    else:
        temporary.unlink(missing_ok=True)


def context(master: str | None, batch_rows: int) -> Any:
    """Return Spark's context (no SQL session: :func:`session` adds it), once it is up.

    Waits for :func:`launch`'s thread (started here when it was not), and raises its error.
    """
    if "thread" not in _launch:
        launch(master, light=False, batch_rows=batch_rows)
    _launch.pop("thread").join()
    if "error" in _launch:
        raise _launch.pop("error")
    return _launch.pop("context")


def _new_context(master: str | None, batch_rows: int) -> Any:
    """Create (or join, under spark-submit) the context, on the JVM that is up."""
    from pyspark import SparkConf, SparkContext

    # The JVM is up (spark-submit's, or this process's): the configuration spark-submit and
    # spark-defaults.conf gave is read from it, and wins over the defaults below.
    conf = SparkConf()
    if master or not conf.contains("spark.master"):
        conf.setMaster(master or DEFAULT_MASTER)
    defaults = {
        "spark.app.name": "batch-score",
        "spark.ui.enabled": "false",
        # a failed task logs its stack trace at ERROR: the command reports it on one line
        "spark.log.level": "FATAL",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(batch_rows),
        "spark.sql.session.timeZone": "UTC",
    }
    if _local_master(conf.get("spark.master")):
        defaults.update(
            {
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.driver.host": "127.0.0.1",
                # the workers fork from a daemon that has imported the scoring code
                "spark.python.daemon.module": f"{__name__.rpartition('.')[0]}.daemon",
            }
        )
    for key, value in defaults.items():
        if not conf.contains(key):
            conf.set(key, value)
    # progress bars would interleave with the command's own output (pyspark turns them on)
    conf.set("spark.ui.showConsoleProgress", "false")
    return SparkContext.getOrCreate(conf)


def _warm_up(sc: Any) -> None:
    """Start the Python workers, one per core, while the driver loads the model.

    The daemon they fork from imports the scoring code (:mod:`.daemon`: about a second) and
    Spark keeps them for the scoring job's tasks, so that second passes while the model loads
    instead of after.  A failure here is left for the scoring job to meet and report.
    """
    import contextlib

    cores = sc.defaultParallelism
    with contextlib.suppress(Exception):  # the scoring job meets it again and reports it
        sc.parallelize(range(cores), cores).mapPartitions(lambda _: iter(())).collect()


def session() -> Any:
    """Return the SQL session on the running context (its ``spark.sql.*`` settings apply)."""
    from pyspark.sql import SparkSession

    return SparkSession.builder.getOrCreate()


def read(spark: Any, scorer: Scorer, source: str) -> Any:
    """Return the input as a DataFrame of the scorer's columns (CSV typed like the local engine).

    A ``.csv`` (or ``.csv.gz``...) is CSV with a header, anything else Parquet (a file or a
    folder).  A missing contract column raises :class:`InputError`.
    """
    from pyspark.sql import types

    from .local import csv_types
    from .scorer import InputError

    if not _is_csv(source):
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

    def __init__(self, context: Any, location: str) -> None:
        self.jvm = context._jvm
        self.conf = context._jsc.hadoopConfiguration()
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


def _local_path(location: str) -> str | None:
    """Return the local path of ``location`` (a path or a ``file:`` URI), else ``None``."""
    if location.startswith("file:"):
        return re.sub(r"^file:(//)?", "", location) or None
    return None if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", location) else location


def _is_csv(source: str) -> bool:
    return ".csv" in source.lower().rsplit("/", 1)[-1]


def _file_paths(source: str, output: str) -> tuple[str, str] | None:
    """Return the local paths of a Parquet ``source`` and of ``output``, else ``None``."""
    paths = _local_path(source), _local_path(output)
    return None if _is_csv(source) or None in paths else paths  # type: ignore[return-value]


def reads_files(source: str, output: str) -> bool:
    """Whether the Python workers read and write the tables themselves (:func:`_score_files`).

    They do for a Parquet input and an output on the local file system (paths, ``file:``).
    """
    return _file_paths(source, output) is not None


# A task: (index, first row id, [(file, [row group, ...]), ...]).
Task = tuple[int, int, list[tuple[str, list[int]]]]


def pack_row_groups(files: list[str], parallelism: int, most: int, opening: int) -> list[Task]:
    """Pack the row groups of ``files``, in order, into tasks as Spark sizes file splits.

    A task holds about ``min(most, max(opening, total / parallelism))`` bytes (compressed,
    as in the files) of row groups: ``spark.sql.files.maxPartitionBytes``, split further so
    that every core gets work.  The last ``parallelism`` row groups are a task each, so that
    the cores finish together rather than one waiting for another's last large task.  The
    row ids are the input's row positions, counted from the files' footers: no pass over
    the rows.
    """
    import pyarrow.parquet as pq

    groups = []
    for path in files:
        meta = pq.ParquetFile(path).metadata
        for group in range(meta.num_row_groups):
            part = meta.row_group(group)
            nbytes = sum(part.column(i).total_compressed_size for i in range(part.num_columns))
            groups.append((path, group, part.num_rows, nbytes))
    size = min(most, max(opening, sum(g[3] for g in groups) // max(parallelism, 1)))
    tasks: list[Task] = []
    parts: list[tuple[str, list[int]]] = []
    first = rows = held = 0
    tail = len(groups) - max(parallelism, 1)
    for number, (path, group, count, nbytes) in enumerate(groups):
        if parts and (held + nbytes > size or number >= tail):
            tasks.append((len(tasks), first, parts))
            parts, first, held = [], rows, 0
        if not parts or parts[-1][0] != path:
            parts.append((path, []))
        parts[-1][1].append(group)
        rows += count
        held += nbytes
    if parts:
        tasks.append((len(tasks), first, parts))
    return tasks


def _score_files(context: Any, scorer: Scorer, source: str, folder: str, batch_rows: int) -> int:
    """Score a local Parquet file or folder: each task reads its row groups, writes its part.

    The Python workers read, score and write with pyarrow, as the local engine does, so the
    JVM only schedules: a task is one busy process, and the tasks run in parallel.  Tasks are
    sized as Spark sizes file splits (``spark.sql.files.maxPartitionBytes``, split further so
    that every core gets work); the scorer is broadcast, unpickled once per Python worker.
    """
    import pyarrow.dataset as ds

    from .local import keep_types, parquet_batches, write

    path = Path(source)
    # a folder: its parts in the order the local engine reads them
    files = [str(path)] if path.is_file() else list(ds.dataset(path, format="parquet").files)
    conf, units = context.getConf(), context._jvm.org.apache.spark.network.util.JavaUtils
    tasks = pack_row_groups(
        files,
        context.defaultParallelism,
        units.byteStringAsBytes(conf.get("spark.sql.files.maxPartitionBytes", "128m")),
        units.byteStringAsBytes(conf.get("spark.sql.files.openCostInBytes", "4m")),
    )
    schema = scorer.output_schema(keep_types(scorer, path))
    shared = context.broadcast(scorer)
    columns = scorer.columns

    def score_task(task: Task) -> int:
        index, first_row, parts = task
        frames = (
            frame
            for file, groups in parts
            for frame in parquet_batches(file, columns, batch_rows=batch_rows, row_groups=groups)
        )
        target = Path(folder) / f"part-{index:05d}.parquet"
        return write(shared.value, frames, target, schema, first_row=first_row)

    Path(folder).mkdir(parents=True)
    if not tasks:  # an empty table: one empty part, so that the output has the schema
        write(scorer, [], Path(folder) / "part-00000.parquet", schema)
        rows = 0
    else:
        rows = sum(context.parallelize(tasks, len(tasks)).map(score_task).collect())
    (Path(folder) / "_SUCCESS").touch()
    shared.destroy()
    return rows


def _score_frame(spark: Any, scorer: Scorer, source: str, folder: str) -> int:
    """Score any other input with Spark's own reader and writer (``mapInArrow``).

    For CSV (split by Spark) and the URIs of a cluster's file systems (``hdfs://``,
    ``s3a://``...).  Row ids: a first pass counts each partition's rows, and every partition
    numbers its rows from the sum of the ones before it.
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    frame = read(spark, scorer, source)
    output = scorer.output_schema(_keep_types(scorer, frame))
    offsets, total = _offsets(frame)

    def score_partition(batches: Iterator[Any]) -> Iterator[Any]:
        from pyspark import TaskContext

        task = TaskContext.get()
        assert task is not None, "runs in a Spark task"
        row = offsets[task.partitionId()]
        for batch in batches:
            if batch.num_rows:  # pandas frames, as the local engine reads them
                yield from scorer.score(batch.to_pandas(), row, output).to_batches()
                row += batch.num_rows

    scored = frame.mapInArrow(score_partition, from_arrow_schema(output))
    scored.write.mode("error").parquet(folder)
    return total


def run(scorer: Scorer, source: str, output: str, *, batch_rows: int, master: str | None) -> int:
    """Score ``source`` into the Parquet folder ``output`` on Spark; return the row count.

    The parts are written to a hidden folder beside ``output``, renamed to ``output`` when
    every one is written (``_SUCCESS`` in it); on failure it is deleted.  On a local master,
    a Parquet input on the local file system (a path or ``file:``) is read and written by the
    Python workers (:func:`_score_files`); any other by Spark (:func:`_score_frame`).
    """
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    from .scorer import InputError

    parent, _, name = output.rstrip("/").rpartition("/")
    temporary = f"{parent or '.'}/.{name}.tmp-{os.getpid()}"
    sc = context(master, batch_rows)
    files = _Files(sc, output)
    try:
        files.delete(temporary)
        # on a cluster, executors do not see this machine's files: Spark's file systems do
        paths = _file_paths(source, temporary) if _local_master(sc.master) else None
        if paths:
            total = _score_files(sc, scorer, *paths, batch_rows)
        else:
            total = _score_frame(session(), scorer, source, temporary)
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
        stop(sc)


def stop(sc: Any) -> None:
    """Stop Spark, without pyspark's wait of up to a second for its accumulator server.

    ``SparkContext.stop`` stops the JVM's context, then shuts the accumulator server down:
    that server's loop polls its connection once a second, so the wait is most of a second
    whenever it comes.  Here it shuts down in a daemon thread (done within the second while
    the process goes on; nothing is pending in it once the context has stopped).
    """
    import threading

    server, sc._accumulatorServer = getattr(sc, "_accumulatorServer", None), None
    sc.stop()
    if server is not None:
        threading.Thread(target=server.shutdown, name="spark-accumulators", daemon=True).start()
    if "archive" in _launch:
        _keep_archive(*_launch.pop("archive"))
