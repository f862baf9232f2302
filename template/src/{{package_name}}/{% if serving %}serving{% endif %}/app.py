"""The FastAPI application over the serving bundle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .config import ServingConfig
from .middleware import MetricsMiddleware
from .routes import add_operational_routes, add_prediction_routes, install_openapi
from .state import Service


def create_app(config: ServingConfig | None = None) -> FastAPI:
    """Build the app for the bundle in ``config`` (default: environment + params.yaml)."""
    service = Service.from_bundle(config or ServingConfig.from_env())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start_loading()  # /health answers at once, /ready says 503 until loaded
        yield

    metadata = service.metadata
    app = FastAPI(
        title=f"{metadata.get('model_name', 'model')} API",
        version=str(metadata.get("run_id", "unknown")),
        description=(
            "Predictions from the serving bundle: request fields follow the data contract; "
            "/invocations speaks MLflow's scoring protocol. Prometheus metrics and live drift."
        ),
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = service.metrics
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)  # type: ignore[arg-type]
    add_operational_routes(app, service)
    install_openapi(app, add_prediction_routes(app, service))
    return app
