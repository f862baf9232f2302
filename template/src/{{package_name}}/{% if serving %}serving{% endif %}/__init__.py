"""Model API: FastAPI app serving the bundle, with Prometheus metrics and live drift.

Run it with ``make serve`` (uvicorn on 127.0.0.1:8000) or in the container image.  One
module per concern: ``inputs`` (schema.json and model input), ``requests`` (request and
response models), ``invocations`` (MLflow's scoring protocol), ``encoding``, ``trees`` and
``predictor`` (runtimes), ``state`` (bundle, model loading, scoring), ``routes``,
``middleware`` and ``metrics``.
"""

from .app import create_app

__all__ = ["create_app"]
