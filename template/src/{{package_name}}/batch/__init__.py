"""Batch scoring: a CSV or Parquet table of any size through the model, into Parquet.

Two engines run the same per-chunk function (:meth:`.scorer.Scorer.score`), so their
predictions are identical:

* ``local`` (:mod:`.local`): streams the input in chunks on one machine, in bounded memory,
  and writes the output Parquet file as it goes;
* ``spark`` (:mod:`.spark`): Apache Spark (the ``spark`` extra) reads the input in
  partitions and scores each with ``mapInArrow``; ``local[*]`` by default, any
  ``spark.master`` or ``spark-submit`` for a cluster.

``make batch-score INPUT=... OUTPUT=...`` runs it (:mod:`.cli`).
"""
