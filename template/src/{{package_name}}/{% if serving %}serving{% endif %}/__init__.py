"""Model API: FastAPI app serving the bundle, with Prometheus metrics and live drift.

Run it with ``make serve`` (uvicorn on 127.0.0.1:8000) or in the container image.
"""

from .app import create_app

__all__ = ["create_app"]
