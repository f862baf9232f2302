"""The model, the contract and the one function that scores a chunk (both engines call it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import bundle
from ..contract import Contract, coerce, input_failures
from ..jobs.evaluate import score as predict_once
from ..services.registry import load_model, registry_version
from ..settings import Settings

ROW_ID = "row_id"
PREDICTION = "prediction"
PROBABILITY = "proba_"
MODEL_VERSION = "model_version"
RUN_ID = "run_id"
RESERVED = (ROW_ID, PREDICTION, MODEL_VERSION, RUN_ID)


class InputError(ValueError):
    """The table to score breaks the data contract (a column is missing or of another kind)."""


def resolve_model(settings: Settings, model_uri: str | None, bundle_dir: Path) -> str | None:
    """Return the MLflow URI to load, or ``None`` for the bundle.

    An explicit URI wins; else the bundle when it is there; else the registry's champion.
    """
    if model_uri:
        return model_uri
    if (bundle_dir / bundle.MODEL_DIR).is_dir():
        return None
    return f"models:/{settings.model_name}@champion"


@dataclass
class Scorer:
    """What scoring a chunk needs; pickled as is to Spark's Python workers."""

    contract: Contract
    model: Any
    classification: bool
    model_version: str | None
    run_id: str | None
    source: str
    keep: tuple[str, ...] = ()

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        model_uri: str | None,
        bundle_dir: Path,
        keep: tuple[str, ...] = (),
    ) -> Scorer:
        """Load the model (bundle or MLflow URI), its registry version and the contract."""
        contract = settings.contract()
        clash = sorted(set(RESERVED) & set(contract.feature_names))
        clash += [k for k in keep if k in RESERVED or k.startswith(PROBABILITY)]
        if clash:
            raise InputError(f"column name(s) {', '.join(clash)} are reserved for the output")
        uri = resolve_model(settings, model_uri, bundle_dir)
        if uri is None and not (bundle_dir / bundle.METADATA_FILE).is_file():
            raise FileNotFoundError(f"{bundle_dir}: no bundle; run `make pipeline` first")
        run_id = None
        if uri is None:
            run_id = bundle.read_json(bundle_dir / bundle.METADATA_FILE).get("run_id")
        model = load_model(bundle_dir, uri, settings.tracking_uri)
        version, run_id = registry_version(
            uri, settings.tracking_uri, settings.registration_path, run_id
        )
        return cls(
            contract=contract,
            model=model,
            classification=settings.task == "classification",
            model_version=version,
            run_id=run_id,
            source=uri or str(bundle_dir),
            keep=keep,
        )

    @property
    def classes(self) -> list[Any] | None:
        """Return the class labels of the probability columns (``None``: no probabilities)."""
        if not self.classification or not hasattr(self.model, "predict_proba"):
            return None
        return list(np.asarray(self.model.classes_).tolist())

    @property
    def columns(self) -> list[str]:
        """Return the input columns to read: the carried ones, then the contract's features."""
        return [*self.keep, *(n for n in self.contract.feature_names if n not in self.keep)]

    def output_schema(self, keep_types: dict[str, Any]) -> Any:
        """Return the output's pyarrow schema (``keep_types``: the carried columns' input types)."""
        import pyarrow as pa

        fields = [pa.field(ROW_ID, pa.int64(), nullable=False)]
        fields += [pa.field(name, keep_types[name]) for name in self.keep]
        for col in self.contract.columns:
            if col.name not in self.keep:
                kind = pa.string() if col.kind == "categorical" else pa.float64()
                fields.append(pa.field(col.name, kind))
        fields.append(pa.field(PREDICTION, self._label_type()))
        fields += [pa.field(f"{PROBABILITY}{c}", pa.float64()) for c in self.classes or ()]
        fields += [pa.field(MODEL_VERSION, pa.string()), pa.field(RUN_ID, pa.string())]
        return pa.schema(fields)

    def _label_kind(self) -> str:
        """Return ``float`` (regression), ``int`` (integer classes) or ``str`` (text classes)."""
        if not self.classification:
            return "float"
        labels = self.classes or list(self.contract.target.classes or ())
        if labels and all(isinstance(c, int) and not isinstance(c, bool) for c in labels):
            return "int"
        return "str"

    def _label_type(self) -> Any:
        import pyarrow as pa

        return {"float": pa.float64(), "int": pa.int64(), "str": pa.string()}[self._label_kind()]

    def score(self, frame: pd.DataFrame, first_row: int, schema: Any) -> Any:
        """Score one chunk whose first row is row ``first_row`` of the input.

        The chunk is checked against the contract (:class:`InputError` names the column and
        the first failing rows), converted to model input, predicted once.  Returns a pyarrow
        table of ``schema`` (:meth:`output_schema`): the row id, the carried columns, the
        model input, the prediction, one probability column per class, and the model version
        and run id.  Built column by column as Arrow, the writers' format: no pandas frame
        of the output is assembled and converted again.
        """
        import pyarrow as pa

        n = len(frame)
        frame = frame.set_axis(pd.RangeIndex(first_row, first_row + n))
        failures = input_failures(frame, self.contract)
        if failures:
            raise InputError("; ".join(f.describe() for f in failures))
        features = coerce(frame, self.contract)
        classes = self.classes
        with np.errstate(all="ignore"):
            if classes is not None:
                labels, proba = predict_once("classification", self.model, features)
            else:
                labels, proba = np.asarray(self.model.predict(features)), None
        kind = self._label_kind()
        if kind == "int":
            labels = np.asarray(labels).astype(np.int64)
        elif kind == "str":
            labels = np.asarray([str(v) for v in np.asarray(labels).tolist()], dtype=object)
        else:
            labels = np.asarray(labels, dtype=np.float64).ravel()
        out: dict[str, Any] = {ROW_ID: np.arange(first_row, first_row + n, dtype=np.int64)}
        out.update({name: frame[name] for name in self.keep})
        out.update({name: features[name] for name in features.columns if name not in self.keep})
        out[PREDICTION] = labels
        for i, label in enumerate(classes or ()):
            assert proba is not None
            out[f"{PROBABILITY}{label}"] = np.ascontiguousarray(proba[:, i])
        for name, value in ((MODEL_VERSION, self.model_version), (RUN_ID, self.run_id)):
            text = pa.scalar(value, pa.string())
            out[name] = pa.repeat(text, n) if value is not None else pa.nulls(n, pa.string())
        arrays = [
            out[f.name]
            if isinstance(out[f.name], pa.Array)
            else pa.array(out[f.name], type=f.type, from_pandas=True)
            for f in schema
        ]
        return pa.Table.from_arrays(arrays, schema=schema)
