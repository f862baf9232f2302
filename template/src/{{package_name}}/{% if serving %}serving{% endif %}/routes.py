"""The API's routes: operations (health, readiness, version, metrics) and predictions.

The request models (:mod:`.requests`) document the prediction routes and explain a refused
body; the hot path reads a well-formed body straight into model input and only a
malformed one pays for pydantic's report.
"""

# No `from __future__ import annotations` here: FastAPI reads the route functions' annotations.
import json
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from . import invocations
from .inputs import InputError, ModelInput, from_rows
from .requests import (
    BatchPrediction,
    Invocations,
    Prediction,
    batch_model,
    invocation_models,
    row_model,
    rows_from_models,
    validation_error,
)
from .state import ScoringError, Service

# OpenAPI descriptions of the error answers.
_NOT_READY = {"description": "model not loaded (yet)"}
_MALFORMED = {"description": "malformed input; the message names the field"}
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message, "message": message}, status_code=status)


def _json(payload: dict[str, Any]) -> Response:
    return Response(orjson.dumps(payload, option=_JSON_OPTIONS), media_type="application/json")


def _decode(body: bytes) -> Any:
    """Decode ``body``; raise ValueError (NaN and Infinity are read, to be named)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"invalid JSON ({exc})") from None


def add_operational_routes(app: FastAPI, service: Service) -> None:
    """/health, /ready, /version and /metrics."""
    metadata = service.metadata

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        summary="Readiness: 200 once the model is loaded, 503 before",
        responses={503: _NOT_READY},
    )
    async def ready() -> Response:
        loaded = service.loaded
        if loaded.runtime is None:
            return _error(503, loaded.error or "loading")
        return JSONResponse({"status": "ready", "runtime": loaded.runtime.name})

    @app.get("/version", summary="Model version, run id, git commit and data hash")
    async def version() -> dict[str, Any]:
        loaded = service.loaded
        keys = ("model_name", "model_uri", "git_commit", "data_hash", "estimator")
        return {
            **{k: metadata.get(k) for k in keys},
            # the served model's run (a registry URI may name another run than the bundle's)
            "run_id": loaded.run_id or metadata.get("run_id"),
            "bundle_run_id": metadata.get("run_id"),
            "model_version": loaded.version,
            "trained_at": metadata.get("trained_at"),
            "served_from": service.config.model_uri or str(service.config.bundle_dir),
            "runtime": None if loaded.runtime is None else loaded.runtime.name,
        }

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    media = {"schema": _ref(model)}
    return _body({"application/json": media})


def _body(content: dict[str, Any]) -> dict[str, Any]:
    body = {"required": True, "content": content}
    return {"requestBody": body}


def _invocation_body(models: list[type[BaseModel]]) -> dict[str, Any]:
    json_schema = {"oneOf": [_ref(m) for m in models]}
    csv_schema = {"type": "string", "description": "a header row, then rows"}
    json_media = {"schema": json_schema}
    csv_media = {"schema": csv_schema}
    return _body({"application/json": json_media, "text/csv": csv_media})


def add_prediction_routes(app: FastAPI, service: Service) -> list[type[BaseModel]]:
    """/predict, /predict/batch and /invocations; returns the request models to document."""
    schema, max_rows = service.schema, service.config.max_batch_size
    Row = row_model(schema)  # noqa: N806
    Batch = batch_model(Row)  # noqa: N806
    Invocation = invocation_models(schema)  # noqa: N806

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc)

    def class_labels() -> list[Any] | None:
        runtime = service.loaded.runtime
        return None if runtime is None or runtime.classes is None else runtime.classes.tolist()

    @app.post(
        "/predict",
        summary="Predict one row",
        response_model=Prediction,
        responses={422: _MALFORMED, 503: _NOT_READY},
        openapi_extra=_request_body(Row),
    )
    async def predict(request: Request) -> Response:
        try:
            data = _decode(await request.body())
        except ValueError as exc:
            return _error(422, f"body: {exc}")
        batch = from_rows(schema, [data])
        if batch is None:
            try:
                batch = rows_from_models(schema, [Row.model_validate(data)])
            except ValidationError as exc:
                return validation_error(exc)
            if batch is None:
                return _error(422, "body: a value is out of range")
        try:
            labels, proba = service.score(batch)
        except ScoringError as exc:
            return _error(exc.status, exc.message)
        payload: dict[str, Any] = {"prediction": labels.tolist()[0]}
        classes = class_labels()
        if proba is not None and classes:
            payload["probabilities"] = dict(zip(map(str, classes), proba[0].tolist(), strict=True))
        return _json(payload)

    @app.post(
        "/predict/batch",
        summary=f"Predict a batch of rows (at most {max_rows})",
        response_model=BatchPrediction,
        responses={
            413: {"description": f"more than {max_rows} rows"},
            422: _MALFORMED,
            503: _NOT_READY,
        },
        openapi_extra=_request_body(Batch),
    )
    async def predict_batch(request: Request) -> Response:
        try:
            data = _decode(await request.body())
        except ValueError as exc:
            return _error(422, f"body: {exc}")
        rows = data.get("rows") if type(data) is dict and len(data) == 1 else None
        if isinstance(rows, list) and len(rows) > max_rows:
            return _error(413, f"rows: {len(rows)} rows exceed the maximum batch size {max_rows}")
        batch = from_rows(schema, rows)
        if batch is None:
            try:
                valid = Batch.model_validate(data)
            except ValidationError as exc:
                return validation_error(exc)
            batch = rows_from_models(schema, valid.rows)  # type: ignore[attr-defined]
            if batch is None:
                return _error(422, "rows: a value is out of range")
        try:
            labels, proba = service.score(batch)
        except ScoringError as exc:
            return _error(exc.status, exc.message)
        payload: dict[str, Any] = {"predictions": labels.tolist()}
        classes = class_labels()
        if proba is not None and classes:
            payload["probabilities"] = np.ascontiguousarray(proba)
            payload["classes"] = classes
        return _json(payload)

    def mlflow_error(status: int, message: str) -> JSONResponse:
        # MLflow's scoring server answers errors in this shape
        code = {
            400: "BAD_REQUEST",
            413: "BAD_REQUEST",
            415: "BAD_REQUEST",
            503: "TEMPORARILY_UNAVAILABLE",
        }
        return JSONResponse(
            {"error_code": code.get(status, "INTERNAL_ERROR"), "message": message},
            status_code=status,
        )

    def invocation_input(content_type: str | None, body: bytes) -> ModelInput:
        kind = invocations.media_type(content_type)
        if kind == invocations.CSV:
            return invocations.parse_csv(schema, body)
        try:
            data = _decode(body)
        except ValueError as exc:
            raise InputError("body", str(exc)) from None
        return invocations.parse_json(schema, data)

    @app.post(
        "/invocations",
        summary="Predict in MLflow's scoring protocol (as `mlflow models serve`)",
        description=(invocations.__doc__ or "").split("\n\n", 1)[1],
        response_model=Invocations,
        responses={
            400: {"description": "malformed input; the message names the column"},
            413: {"description": f"more than {max_rows} rows"},
            415: {"description": "a content type other than application/json or text/csv"},
            503: _NOT_READY,
        },
        openapi_extra=_invocation_body(Invocation),
    )
    async def invoke(request: Request) -> Response:
        try:
            batch = invocation_input(request.headers.get("content-type"), await request.body())
        except invocations.UnsupportedMediaTypeError as exc:
            return mlflow_error(415, str(exc))
        except InputError as exc:
            return mlflow_error(400, str(exc))
        if batch.rows > max_rows:
            return mlflow_error(413, f"{batch.rows} rows exceed the maximum batch size {max_rows}")
        try:
            labels, _ = service.score(batch)
        except ScoringError as exc:
            return mlflow_error(400 if exc.status == 422 else exc.status, exc.message)
        return _json({"predictions": labels.tolist()})

    return [Row, Batch, *Invocation]


def install_openapi(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Serve the request models (read by hand, not by FastAPI) in the OpenAPI schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[model.__name__] = body
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
