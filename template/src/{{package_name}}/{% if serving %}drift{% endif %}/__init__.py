"""Drift check: compare a batch of model inputs (and predictions) with the training reference.

By concern: :mod:`.statistics` (PSI, binned KS, chi-square, missing-share test),
:mod:`.profiles` (the reference side of each column, per feature kind), :mod:`.detector`
(:class:`DriftDetector`: profiles and the check), :mod:`.report` (JSON and self-contained
HTML) and :mod:`.cli` (``python -m <package> drift``).  The serving app's live drift metrics
use the same detector over a window of recent requests.
"""

from .detector import ColumnDrift, DriftDetector, DriftReport
from .report import render_html, write_reports

__all__ = ["ColumnDrift", "DriftDetector", "DriftReport", "render_html", "write_reports"]
