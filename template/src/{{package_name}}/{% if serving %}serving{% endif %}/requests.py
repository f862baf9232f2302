"""Request and response models generated from the bundle's schema.json.

They document the API (OpenAPI) and explain a refused request: the routes read
well-formed bodies straight into model input (:mod:`.inputs`) and validate with these
models only when that fails, so that a 422 names the field.

One field per feature, required, named as the feature: numeric -> a finite number,
categorical -> a string (the known values are listed in the description; any other
string is accepted as an unseen category), boolean -> true/false; ``null`` only where the
contract says the feature is nullable.  Unknown fields are refused.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .inputs import BOOLEAN, CATEGORICAL, NUMERIC, Feature, InputSchema, ModelInput

Label = str | int | float


class Prediction(BaseModel):
    """One prediction; ``probabilities`` maps each class label to its probability."""

    prediction: Label
    probabilities: dict[str, float] | None = None


class BatchPrediction(BaseModel):
    """Predictions in request order; one probability list per row, in ``classes`` order."""

    predictions: list[Label]
    probabilities: list[list[float]] | None = None
    classes: list[Label] | None = None


class Invocations(BaseModel):
    """MLflow's scoring-server answer: the predictions in request order."""

    predictions: list[Label]


def _annotation(feature: Feature) -> Any:
    kind: Any = str if feature.kind == CATEGORICAL else bool if feature.kind == BOOLEAN else float
    return kind | None if feature.nullable else kind


def _field(feature: Feature, alias: str | None) -> Any:
    options: dict[str, Any] = {
        "alias": alias,
        "strict": True,
        "description": feature.describe(),
        "examples": [feature.example()],
    }
    if feature.kind == NUMERIC:  # (a string field would be checked for NaN too)
        options["allow_inf_nan"] = False
    return Field(**options)


def row_model(schema: InputSchema, *, name: str = "Row", extra: str = "forbid") -> type[BaseModel]:
    """One request row: a field per feature (see the module docstring)."""
    fields: dict[str, Any] = {}
    for i, feature in enumerate(schema.features):
        # Python names are positional (f0, f1, ...) so any feature name works as an alias.
        fields[f"f{i}"] = (_annotation(feature), _field(feature, feature.name))
    config = ConfigDict(extra=extra, populate_by_name=False)  # type: ignore[typeddict-item]
    return create_model(name, __config__=config, **fields)


def batch_model(row: type[BaseModel]) -> type[BaseModel]:
    """``{"rows": [Row, ...]}``."""
    rows = list[row]  # type: ignore[valid-type]
    return create_model(
        "Batch",
        __config__=ConfigDict(extra="forbid"),
        rows=(rows, Field(min_length=1, description="rows to score, in order")),
    )


def rows_from_models(schema: InputSchema, rows: list[BaseModel]) -> ModelInput | None:
    """Model input from validated rows (the slow path after a fast-path miss)."""
    from .inputs import from_rows

    plain = [{f.name: getattr(r, f"f{i}") for i, f in enumerate(schema.features)} for r in rows]
    return from_rows(schema, plain)


def field_path(loc: tuple[Any, ...]) -> str:
    """``rows[1].age`` from pydantic's ``("body", "rows", 1, "age")``."""
    text = ""
    for part in (p for p in loc if p != "body"):
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def validation_error(error: ValidationError | RequestValidationError) -> JSONResponse:
    """422 with every error (field and message) and a one-line summary."""
    errors = [
        {"field": field_path(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
        for e in error.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return JSONResponse({"detail": errors, "message": summary}, status_code=422)


def invocation_models(schema: InputSchema) -> list[type[BaseModel]]:
    """Build the four JSON bodies of MLflow's scoring protocol (OpenAPI documentation only).

    A record may hold columns the model does not read: they are ignored, as MLflow does.
    """
    record: Any = row_model(schema, name="Record", extra="allow")
    value: Any = str | float | bool | None
    column_lists: dict[str, Any] = {
        f"f{i}": (list[_annotation(f)], Field(alias=f.name, min_length=1))  # type: ignore[misc]
        for i, f in enumerate(schema.features)
    }
    columns: Any = create_model("Columns", **column_lists)
    split = create_model(
        "DataframeSplit",
        __config__=ConfigDict(extra="forbid"),
        columns=(list[str], Field(description="column names, in the order of each data row")),
        data=(list[list[value]], Field(min_length=1, description="rows of values")),
        index=(list[int | str] | None, None),
    )
    params: Any = (dict[str, Any] | None, Field(None, description="accepted and ignored"))
    records: Any = list[record]
    return [
        create_model("SplitRequest", dataframe_split=(split, ...), params=params),
        create_model(
            "RecordsRequest", dataframe_records=(records, Field(min_length=1)), params=params
        ),
        create_model(
            "InstancesRequest",
            instances=(records | columns, Field(description="records, or columns of values")),
            params=params,
        ),
        create_model(
            "InputsRequest",
            inputs=(
                records | columns | record,
                Field(description="records, columns or one record"),
            ),
            params=params,
        ),
    ]
