"""Spark's Python daemon for local batch scoring (``spark.python.daemon.module``).

Spark's own daemon (``pyspark.daemon``) forks one Python worker per task slot, and each
worker then imports the scoring code as it unpickles its first task: pandas, pyarrow and
scikit-learn, about a second of CPU per worker, on the cores the other workers, the JVM and
the driver's model load need too.  This daemon imports them once, before it forks: every
worker starts with them loaded.  :mod:`.spark` sets it for a local master.
"""

from pyspark.daemon import manager

from . import local, scorer  # noqa: F401 - imported for the workers forked below

if __name__ == "__main__":
    manager()
