"""The drift detector: reference profiles of every feature (and the prediction), and the check.

A feature drifts when an *effect size* crosses its threshold (``drift:`` in params.yaml) and
the difference is also significant (p-value below ``p_value``).  Effect sizes alone flag noise
on small batches; p-values alone flag noise on large ones (at a million rows every tiny
difference is "significant").

- numeric: PSI > ``psi`` or KS > ``ks`` over the non-missing values, KS p-value;
- categorical and boolean: PSI > ``psi`` over the category shares (plus an "unseen" bucket
  for values the reference never held), chi-square p-value;
- every feature: the share of missing values moved by more than ``missing_share``
  (absolute), two-proportion z-test p-value;
- the prediction: PSI > ``prediction_psi`` (classes, or a regression's histogram bins).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import bundle
from ..settings import DriftParams
from . import statistics as st
from .profiles import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    categorical_profile,
    numeric_profile,
    profile_from_reference,
)

# Below this many values a check runs on one thread (pool start-up would dominate).
_PARALLEL_VALUES = 2_000_000
UNSEEN = "(unseen)"


@dataclass(frozen=True)
class ColumnDrift:
    """Drift statistics of one column; ``reasons`` says which tests flagged it."""

    name: str
    kind: str
    rows: int
    psi: float
    ks: float | None
    ks_p_value: float | None
    chi2_p_value: float | None
    missing_reference: float
    missing_current: float
    missing_p_value: float
    unseen: float | None
    reasons: tuple[str, ...]
    labels: tuple[str, ...] = ()
    reference_fractions: tuple[float, ...] = ()
    current_fractions: tuple[float, ...] = ()

    @property
    def drifted(self) -> bool:
        """Whether any test flagged the column."""
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready statistics (the chart buckets stay out)."""
        return {
            "kind": self.kind,
            "rows": self.rows,
            "psi": round(self.psi, 6),
            "ks": None if self.ks is None else round(self.ks, 6),
            "ks_p_value": self.ks_p_value,
            "chi2_p_value": self.chi2_p_value,
            "missing": {
                "reference": round(self.missing_reference, 6),
                "current": round(self.missing_current, 6),
                "p_value": self.missing_p_value,
            },
            "unseen": None if self.unseen is None else round(self.unseen, 6),
            "drifted": self.drifted,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class DriftReport:
    """Result of a drift check: per-feature drift, prediction drift and the verdict."""

    features: list[ColumnDrift]
    prediction: ColumnDrift | None
    params: DriftParams
    rows: int

    @property
    def drifted_features(self) -> list[str]:
        """Names of the features past a threshold."""
        return [c.name for c in self.features if c.drifted]

    @property
    def drifted_share(self) -> float:
        """Share of features that drifted."""
        return len(self.drifted_features) / max(len(self.features), 1)

    @property
    def failed(self) -> bool:
        """Whether the batch drifted enough to fail the check (and call for retraining)."""
        prediction = self.prediction is not None and self.prediction.drifted
        return self.drifted_share > self.params.max_drifted_share or prediction

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``reports/drift/drift.json``)."""
        return {
            "rows": self.rows,
            "failed": self.failed,
            "drifted_features": self.drifted_features,
            "drifted_share": round(self.drifted_share, 6),
            "thresholds": self.params.model_dump(),
            "features": {c.name: c.to_dict() for c in self.features},
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
        }


def _missing_test(
    profile: Profile, rows: int, n_missing: int, params: DriftParams
) -> tuple[float, float, bool]:
    current = n_missing / rows if rows else 0.0
    p_value = st.proportion_pvalue(profile.missing, profile.rows, current, rows)
    jump = abs(current - profile.missing) > params.missing_share and p_value < params.p_value
    return current, p_value, jump


def _numeric_drift(
    name: str,
    profile: NumericProfile,
    values: np.ndarray,
    params: DriftParams,
    *,
    psi_max: float,
    ks_max: float | None,
    missing: bool,
) -> ColumnDrift:
    values = np.asarray(values, dtype=np.float64)
    rows = int(values.size)
    if profile.empty:
        n, psi, ks, ks_p = rows - st.missing_count(values), 0.0, None, None
        cur_bins, ref_bins, labels = np.ones(1), profile.psi_ref, ["all"]
    else:
        cur_lt, n = st.fractions_below(profile.edges, values)
        ks = float(np.max(np.abs(cur_lt - profile.ref_lt))) if n else 0.0
        cur_bins = st.bin_fractions(cur_lt, profile.psi_idx) if n else profile.psi_ref
        psi = st.psi(cur_bins, profile.psi_ref) if n else 0.0
        ks_p = st.ks_pvalue(ks, n, profile.n_ref)
        ref_bins, labels = profile.psi_ref, profile.bin_labels
    reasons = []
    if ks_p is not None and ks_p < params.p_value:
        if psi > psi_max:
            reasons.append("psi")
        if ks_max is not None and ks is not None and ks > ks_max:
            reasons.append("ks")
    current, missing_p, jump = _missing_test(profile, rows, rows - n, params)
    if missing and jump:
        reasons.append("missing")
    return ColumnDrift(
        name=name,
        kind=profile.kind,
        rows=rows,
        psi=psi,
        ks=ks,
        ks_p_value=ks_p,
        chi2_p_value=None,
        missing_reference=profile.missing,
        missing_current=current,
        missing_p_value=missing_p,
        unseen=None,
        reasons=tuple(reasons),
        labels=tuple(labels),
        reference_fractions=tuple(ref_bins.tolist()),
        current_fractions=tuple(cur_bins.tolist()),
    )


def _categorical_drift(
    name: str,
    profile: CategoricalProfile,
    values: np.ndarray,
    params: DriftParams,
    *,
    psi_max: float,
    missing: bool,
) -> ColumnDrift:
    values = np.asarray(values)
    rows = int(values.size)
    counts, n_missing = st.category_counts(profile.index, values)
    present = rows - n_missing
    ref = np.append(profile.ref_fractions, 0.0)
    cur = counts / present if present else ref
    psi = st.psi(cur, ref) if present else 0.0
    chi2_p = st.chi2_pvalue(ref * profile.n_ref, counts)
    reasons = ["psi"] if psi > psi_max and chi2_p < params.p_value else []
    current, missing_p, jump = _missing_test(profile, rows, n_missing, params)
    if missing and jump:
        reasons.append("missing")
    # a boolean has no unseen value: the contract's conversion makes anything else missing
    unseen = (float(cur[-1]) if present else 0.0) if profile.kind != "boolean" else None
    return ColumnDrift(
        name=name,
        kind=profile.kind,
        rows=rows,
        psi=psi,
        ks=None,
        ks_p_value=None,
        chi2_p_value=chi2_p,
        missing_reference=profile.missing,
        missing_current=current,
        missing_p_value=missing_p,
        unseen=unseen,
        reasons=tuple(reasons),
        labels=(*profile.labels, UNSEEN),
        reference_fractions=tuple(ref.tolist()),
        current_fractions=tuple(cur.tolist()),
    )


def _labels(values: np.ndarray) -> np.ndarray:
    """Predicted classes as ``str`` (reference.json names the classes as strings)."""
    values = np.asarray(values)
    if values.dtype.kind == "O" and (values.size == 0 or isinstance(values[0], str)):
        return values
    return values.astype(str).astype(object)


class DriftDetector:
    """Reference profiles of every feature (and the prediction), ready to compare batches."""

    def __init__(
        self, profiles: Mapping[str, Profile], prediction: Profile | None, params: DriftParams
    ) -> None:
        """Hold profiles keyed by feature name, in model input order."""
        self.profiles = dict(profiles)
        self.prediction_profile = prediction
        self.params = params

    @property
    def feature_names(self) -> list[str]:
        """Feature names in model input order."""
        return list(self.profiles)

    @classmethod
    def from_reference(
        cls, schema: Mapping[str, Any], reference: Mapping[str, Any], params: DriftParams
    ) -> DriftDetector:
        """Build the profiles from the bundle's ``schema.json`` and ``reference.json`` (dicts)."""
        rows = int(reference["rows"])
        features = reference["features"]
        names = [f["name"] for f in schema["features"]]
        lacking = [n for n in names if n not in features]
        if lacking:
            raise ValueError(
                f"reference.json has no statistics of {', '.join(lacking)}: the bundle is "
                "older than its schema; rebuild it with `make pipeline`"
            )
        profiles = {n: profile_from_reference(features[n], rows) for n in names}
        pred = reference.get("prediction")
        prediction = None if pred is None else profile_from_reference(pred, rows)
        return cls(profiles, prediction, params)

    @classmethod
    def from_bundle(cls, bundle_dir: Path, params: DriftParams) -> DriftDetector:
        """Build the profiles from the serving bundle's ``reference.json`` and ``schema.json``."""
        schema = bundle.read_json(bundle_dir / bundle.SCHEMA_FILE)
        reference = bundle.read_json(bundle_dir / bundle.REFERENCE_FILE)
        return cls.from_reference(schema, reference, params)

    @classmethod
    def from_frame(
        cls,
        reference: pd.DataFrame,
        params: DriftParams,
        *,
        schema: Mapping[str, Any] | None = None,
        predictions: np.ndarray | None = None,
        grid: int = 1000,
        bins: int = 10,
    ) -> DriftDetector:
        """Profile a full reference frame in model-input form, and its predictions.

        ``schema`` (``schema.json``) gives each feature's kind and categories and the task;
        without it every numeric column is numeric and any other one categorical.
        """
        kinds, categories = {}, {}
        for f in (schema or {}).get("features", []):
            kinds[f["name"]], categories[f["name"]] = f.get("kind", "numeric"), f.get("categories")
        names = [f["name"] for f in schema["features"]] if schema else list(reference.columns)

        def profile(name: str) -> Profile:
            values = reference[name].to_numpy()
            kind = kinds.get(name) or (
                "numeric" if pd.api.types.is_numeric_dtype(reference[name]) else "categorical"
            )
            if kind == "numeric":
                return numeric_profile(values, grid=grid, bins=bins)
            return categorical_profile(values, kind=kind, categories=categories.get(name))

        with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:
            profiles = dict(zip(names, pool.map(profile, names), strict=True))
        prediction: Profile | None = None
        if predictions is not None:
            if schema:
                classification = schema.get("task") == "classification"
            else:
                classification = np.asarray(predictions).dtype.kind not in "fiu"
            if classification:
                classes = [str(c) for c in (schema or {}).get("classes", [])]
                prediction = categorical_profile(_labels(predictions), categories=classes)
            else:
                prediction = numeric_profile(predictions, grid=grid, bins=bins)
        return cls(profiles, prediction, params)

    def column_drift(self, name: str, values: np.ndarray) -> ColumnDrift:
        """Compare one feature's current values with its profile."""
        profile, p = self.profiles[name], self.params
        if isinstance(profile, CategoricalProfile):
            return _categorical_drift(name, profile, values, p, psi_max=p.psi, missing=True)
        return _numeric_drift(name, profile, values, p, psi_max=p.psi, ks_max=p.ks, missing=True)

    def check_columns(self, columns: Mapping[str, np.ndarray]) -> list[ColumnDrift]:
        """Drift of each profiled feature given its current values (columns in parallel)."""
        rows = max((len(columns[n]) for n in self.profiles), default=0)
        if rows * len(self.profiles) < _PARALLEL_VALUES:
            return [self.column_drift(name, columns[name]) for name in self.profiles]
        # numpy sorts without the GIL: threads use every core
        with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:
            return list(pool.map(lambda n: self.column_drift(n, columns[n]), self.profiles))

    def check(self, current: pd.DataFrame, predictions: np.ndarray | None = None) -> DriftReport:
        """Compare ``current`` (model-input form) and its predictions with the reference."""
        missing = [n for n in self.profiles if n not in current.columns]
        if missing:
            raise ValueError(f"current data lacks feature column(s): {', '.join(missing)}")
        features = self.check_columns({n: current[n].to_numpy() for n in self.profiles})
        return DriftReport(features, self.check_prediction(predictions), self.params, len(current))

    def check_prediction(self, predictions: np.ndarray | None) -> ColumnDrift | None:
        """Drift of the predictions, when both sides are known."""
        profile, p = self.prediction_profile, self.params
        if predictions is None or profile is None or len(predictions) == 0:
            return None
        if isinstance(profile, CategoricalProfile):
            values = _labels(predictions)
            return _categorical_drift(
                "prediction", profile, values, p, psi_max=p.prediction_psi, missing=False
            )
        return _numeric_drift(
            "prediction",
            profile,
            predictions,
            p,
            psi_max=p.prediction_psi,
            ks_max=None,
            missing=False,
        )
