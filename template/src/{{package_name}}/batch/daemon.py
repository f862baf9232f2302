"""Spark's Python daemon for local batch scoring (``spark.python.daemon.module``).

Spark's own daemon (``pyspark.daemon``) forks one Python worker per task slot, and each
worker then imports the scoring code as it unpickles its first task: pandas, pyarrow and
scikit-learn, about a second of CPU per worker, on the cores the other workers, the JVM and
the driver's model load need too.  This daemon imports them once, before it forks: every
worker starts with them loaded.  :mod:`.spark` sets it for a local master.

It also imports pyspark and py4j as installed in this environment (:func:`installed_first`).
"""

import re
import sys
from importlib import metadata
from importlib.machinery import PathFinder
from pathlib import Path


def installed_first() -> None:
    """Take the zips of the installed pyspark off the path: import it as installed.

    Spark puts ``$SPARK_HOME/python/lib/pyspark.zip`` and py4j's zip first on its Python
    workers' path.  Python keeps no compiled bytecode of modules imported from a zip, so
    every process compiled pyspark anew (about 0.4 s of CPU, before any task).  When those
    zips ship inside the pyspark package installed here (pip's ``SPARK_HOME`` is that
    package) and py4j's is the installed py4j's version, the same modules are installed,
    and compiled once: the zips are dropped.  A Spark of its own (another ``SPARK_HOME``)
    keeps its zips: its Python half must match its JVM.
    """
    zips = [entry for entry in sys.path if re.search(r"/python/lib/[^/]+\.zip$", entry)]
    spec = PathFinder.find_spec("pyspark", [p for p in sys.path if p not in zips])
    if spec is None or spec.origin is None:
        return
    lib = Path(spec.origin).resolve().parent / "python" / "lib"  # pip's SPARK_HOME/python/lib
    try:
        names = {"pyspark.zip", f"py4j-{metadata.version('py4j')}-src.zip"}
    except metadata.PackageNotFoundError:
        names = {"pyspark.zip"}
    drop = {e for e in zips if Path(e).resolve().parent == lib and Path(e).name in names}
    sys.path[:] = [entry for entry in sys.path if entry not in drop]


installed_first()

from pyspark.daemon import manager  # noqa: E402 - the path is set first

from . import local, scorer  # noqa: E402, F401 - imported for the workers forked below

if __name__ == "__main__":
    manager()
