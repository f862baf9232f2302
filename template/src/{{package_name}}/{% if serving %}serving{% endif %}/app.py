"""The FastAPI application: request models generated from the bundle's schema."""

# No `from __future__ import annotations` here: FastAPI reads the request models from the
# annotations of the route functions, which refer to models built inside create_app.
import datetime as dt
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .. import bundle
from ..drift import DriftDetector, Thresholds
from .config import ServingConfig
from .metrics import Metrics
from .predictor import Runtime, choose_runtime, load_model, registry_version

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# OpenAPI descriptions of the error answers.
_NOT_READY = {"description": "model not loaded (yet)"}
_MALFORMED = {"description": "malformed input; the message names the field"}


def row_model(schema: dict[str, Any]) -> type[BaseModel]:
    """One request row: every feature a required, finite number; unknown fields refused."""
    fields: dict[str, Any] = {}
    for i, feature in enumerate(schema["features"]):
        # Python names are positional (f0, f1, ...) so any feature name works as an alias.
        fields[f"f{i}"] = (
            float,
            Field(
                alias=feature["name"],
                strict=True,
                allow_inf_nan=False,
                description=(
                    f"{feature['dtype']}; training range "
                    f"[{feature['min']:.6g}, {feature['max']:.6g}]"
                ),
                examples=[feature["min"]],
            ),
        )
    config = ConfigDict(extra="forbid", populate_by_name=False)
    return create_model("Row", __config__=config, **fields)


class Prediction(BaseModel):
    """One prediction; ``probabilities`` maps class to probability for classifiers."""

    prediction: float | int
    probabilities: dict[str, float] | None = None


class BatchPrediction(BaseModel):
    """Predictions in request order; one probability list per row for classifiers."""

    predictions: list[float | int]
    probabilities: list[list[float]] | None = None
    classes: list[int | float | str] | None = None


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


_NUMBER_TYPES = frozenset({float, int})


def fast_matrix(rows: Any, names: list[str]) -> np.ndarray | None:
    """Turn well-formed rows into a float matrix without building a model per row.

    Returns None when anything is off (not a list of objects with exactly the feature
    names and plain numbers, or a non-finite value); the caller then validates with
    pydantic, whose error names the field.
    """
    try:
        if not isinstance(rows, list) or not rows:
            return None
        n = len(names)
        if any(type(r) is not dict or len(r) != n for r in rows):
            return None
        flat = [r[name] for r in rows for name in names]
        if not set(map(type, flat)) <= _NUMBER_TYPES:  # bool, str, None... are refused
            return None
        x = np.array(flat, dtype=np.float64).reshape(len(rows), n)
    except (KeyError, OverflowError):
        return None
    return x if np.isfinite(x).all() else None


def _validation_error(error: ValidationError | RequestValidationError) -> JSONResponse:
    errors = [
        {"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
        for e in error.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return JSONResponse({"detail": errors, "message": summary}, status_code=422)


class _State:
    """What the loader thread hands to the request handlers."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.error: str | None = None
        self.version: str | None = None
        self.run_id: str | None = None


class _MetricsMiddleware:
    """Counts requests and times them by route template and status (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # Route templates only: arbitrary paths would explode the label cardinality.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(
                route, scope["method"], status, time.perf_counter() - start
            )


def create_app(config: ServingConfig | None = None) -> FastAPI:
    """Build the app for the bundle in ``config`` (default: environment + params.yaml)."""
    config = config or ServingConfig.from_env()
    bundle_dir = config.bundle_dir
    schema = bundle.read_json(bundle_dir / bundle.SCHEMA_FILE)
    metadata = bundle.read_json(bundle_dir / bundle.METADATA_FILE)
    names = [f["name"] for f in schema["features"]]
    classification = schema.get("task") == "classification"
    classes = schema.get("classes") if classification else None
    detector = DriftDetector.from_bundle(
        bundle_dir, Thresholds.from_params(config.drift.model_dump())
    )
    reference = bundle.read_json(bundle_dir / bundle.REFERENCE_FILE)
    if classes:
        buckets = [c + 0.5 for c in classes]
    else:
        buckets = reference["prediction"]["histogram"]["edges"]
    metrics = Metrics(
        classes=classes, prediction_buckets=buckets, detector=detector, params=config.drift
    )
    trained = metadata.get("trained_at")
    if trained:
        metrics.trained.set(dt.datetime.fromisoformat(trained).timestamp())
    check_rows = np.column_stack(
        [np.asarray(reference["features"][n]["sample"], dtype=np.float64) for n in names]
    )
    state = _State()

    def load() -> None:
        try:
            model = load_model(bundle_dir, config.model_uri, config.tracking_uri)
            runtime = choose_runtime(model, names, classification, check_rows)
            root = bundle_dir.resolve().parents[1]
            try:
                state.version, state.run_id = registry_version(
                    config.model_uri, config.tracking_uri, root, metadata.get("run_id")
                )
            except Exception:  # the registry is optional: serving goes on without it
                state.version, state.run_id = None, None
            metrics.model_info.info(
                {
                    "model_name": str(metadata.get("model_name", "")),
                    "version": state.version or "",
                    "run_id": str(state.run_id or ""),
                    "git_commit": str(metadata.get("git_commit", "")),
                    "data_hash": str(metadata.get("data_hash", "")),
                    "estimator": str(metadata.get("estimator", "")),
                    "runtime": runtime.name,
                }
            )
            state.runtime = runtime
            metrics.loaded.set(1)
        except Exception as error:  # reported by /ready; the process stays up for /health
            state.error = f"{type(error).__name__}: {error}"

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Load in the background: /health answers at once, /ready says 503 until loaded.
        threading.Thread(target=load, name="model-loader", daemon=True).start()
        yield

    app = FastAPI(
        title=f"{metadata.get('model_name', 'model')} API",
        version=str(metadata.get("run_id", "unknown")),
        description="Predictions from the serving bundle, with Prometheus metrics and drift.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.serving = state
    app.add_middleware(_MetricsMiddleware, metrics=metrics)  # type: ignore[arg-type]
    Row = row_model(schema)  # noqa: N806
    Batch = create_model(  # noqa: N806
        "Batch",
        __config__=ConfigDict(extra="forbid"),
        rows=(list[Row], Field(min_length=1, description="rows to score, in order")),  # type: ignore[valid-type]
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message, "message": message}, status_code=status)

    def score(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | JSONResponse:
        runtime = state.runtime
        if runtime is None:
            return error(503, state.error or "model is loading; retry when /ready says ready")
        try:
            with np.errstate(all="ignore"):
                labels, proba = runtime.predict(x)
        except (ValueError, FloatingPointError, OverflowError) as exc:
            return error(422, f"input rejected by the model: {exc}")
        numeric = labels.dtype.kind in "fc"
        if (numeric and not np.isfinite(labels).all()) or (
            proba is not None and not np.isfinite(proba).all()
        ):
            return error(422, "input values are outside the model's numeric range")
        metrics.observe_predictions(x, labels, classification)
        return labels, proba

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        summary="Readiness: 200 once the model is loaded, 503 before",
        responses={503: _NOT_READY},
    )
    async def ready() -> Response:
        if state.runtime is None:
            return error(503, state.error or "loading")
        return JSONResponse({"status": "ready", "runtime": state.runtime.name})

    @app.get("/version", summary="Model version, run id, git commit and data hash")
    async def version() -> dict[str, Any]:
        keys = ("model_name", "model_uri", "git_commit", "data_hash", "estimator")
        return {
            **{k: metadata.get(k) for k in keys},
            # the served model's run (a registry URI may name another run than the bundle's)
            "run_id": state.run_id or metadata.get("run_id"),
            "bundle_run_id": metadata.get("run_id"),
            "model_version": state.version,
            "trained_at": metadata.get("trained_at"),
            "served_from": config.model_uri or str(bundle_dir),
            "runtime": None if state.runtime is None else state.runtime.name,
        }

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def request_body(model: type[BaseModel]) -> dict[str, Any]:
        schema = {"$ref": f"#/components/schemas/{model.__name__}"}
        media = {"schema": schema}
        content = {"application/json": media}
        body = {"required": True, "content": content}
        return {"requestBody": body}

    async def parse(request: Request) -> Any:
        body = await request.body()
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        try:  # NaN and Infinity are not JSON, but name the field they are in
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            return error(422, f"body: invalid JSON ({exc})")

    # The request models document and validate the API; the hot path reads well-formed
    # rows straight into a matrix, and only a malformed body pays for pydantic's report.
    @app.post(
        "/predict",
        summary="Predict one row",
        response_model=Prediction,
        responses={422: _MALFORMED, 503: _NOT_READY},
        openapi_extra=request_body(Row),
    )
    async def predict(request: Request) -> Response:
        data = await parse(request)
        if isinstance(data, Response):
            return data
        x = fast_matrix([data], names)
        if x is None:
            try:
                row = Row.model_validate(data)
            except ValidationError as exc:
                return _validation_error(exc)
            x = np.array([list(vars(row).values())], dtype=np.float64)
        scored = score(x)
        if isinstance(scored, Response):
            return scored
        labels, proba = scored
        payload: dict[str, Any] = {"prediction": labels.tolist()[0]}
        if proba is not None and classes:
            payload["probabilities"] = {
                str(c): p for c, p in zip(classes, proba[0].tolist(), strict=False)
            }
        return Response(orjson.dumps(payload), media_type="application/json")

    @app.post(
        "/predict/batch",
        summary=f"Predict a batch of rows (at most {config.max_batch_size})",
        response_model=BatchPrediction,
        responses={
            413: {"description": f"more than {config.max_batch_size} rows"},
            422: _MALFORMED,
            503: _NOT_READY,
        },
        openapi_extra=request_body(Batch),
    )
    async def predict_batch(request: Request) -> Response:
        data = await parse(request)
        if isinstance(data, Response):
            return data
        rows = data.get("rows") if type(data) is dict and len(data) == 1 else None
        if isinstance(rows, list) and len(rows) > config.max_batch_size:
            return error(
                413, f"rows: {len(rows)} rows exceed the maximum batch size {config.max_batch_size}"
            )
        x = fast_matrix(rows, names)
        if x is None:
            try:
                batch = Batch.model_validate(data)
            except ValidationError as exc:
                return _validation_error(exc)
            rows = batch.rows  # type: ignore[attr-defined]
            x = np.array([list(vars(r).values()) for r in rows], dtype=np.float64)
        scored = score(x)
        if isinstance(scored, Response):
            return scored
        labels, proba = scored
        payload: dict[str, Any] = {"predictions": labels.tolist()}
        if proba is not None and classes:
            payload["probabilities"] = proba.tolist()
            payload["classes"] = classes
        return Response(orjson.dumps(payload), media_type="application/json")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (Row, Batch):
                spec = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(spec.pop("$defs", {}))
                components[model.__name__] = spec
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
