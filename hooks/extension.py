"""Render-time helpers for the andamio template.

Copier loads this module through ``copier-template-extensions`` (see
``_jinja_extensions`` in ``copier.yml``).  It is deliberately self-contained:
the loader imports it by file path, so it cannot import sibling modules.

Public surface
--------------
* filters ``slugify``, ``to_package_name``, ``default_dataset``
* validator filters ``check_*``: each returns an error message, or ``""`` when
  the answer is valid -- the shape copier's ``validator:`` expects.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

__all__ = [
    "DATASETS",
    "AndamioExtension",
    "check_email",
    "check_model_name",
    "check_package_name",
    "check_project_name",
    "check_remote_url",
    "check_tracking_uri",
    "default_dataset",
    "dvc_config_url",
    "slugify",
    "to_package_name",
]

#: Dataset bundled with scikit-learn for each ``ml_task`` (no download at run time).
DATASETS: dict[str, str] = {
    "classification": "breast_cancer",
    "regression": "diabetes",
}

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_HTTP_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d+)?(/.*)?$")
_URI_SCHEMES = ("sqlite:///", "http://", "https://", "file:", "postgresql://", "mysql://", "databricks")
_REMOTE_SCHEMES = ("s3://", "gs://", "azure://", "ssh://", "hdfs://", "http://", "https://", "webdav://")


def slugify(value: str) -> str:
    """Turn a free-text name into a lower-case, dash-separated slug."""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return text


def to_package_name(value: str) -> str:
    """Derive a Python package name (``snake_case``) from a project name."""
    name = slugify(value).replace("-", "_")
    if name and name[0].isdigit():
        name = f"ml_{name}"
    return name


def default_dataset(ml_task: str) -> str:
    """Return the scikit-learn bundled dataset used for ``ml_task``."""
    try:
        return DATASETS[ml_task]
    except KeyError:
        raise ValueError(f"unknown ml_task {ml_task!r}; expected one of {sorted(DATASETS)}") from None


def dvc_config_url(url: str) -> str:
    """Express a DVC remote URL as DVC stores it in ``.dvc/config``.

    DVC resolves a relative folder remote from the ``.dvc/`` directory, while
    the answer is given relative to the project root, so one ``../`` is added.
    """
    text = str(url).strip()
    if "://" in text or text.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", text):
        return text
    return f"../{text}"


def check_project_name(value: str) -> str:
    """Validate a human-readable project name."""
    if not str(value).strip():
        return "project_name must not be empty"
    if not slugify(value):
        return "project_name needs at least one ASCII letter or digit"
    if len(str(value)) > 80:
        return "project_name must be at most 80 characters"
    return ""


def check_package_name(value: str) -> str:
    """Validate an importable, non-keyword, lower-case Python package name."""
    name = str(value)
    if not name.isidentifier():
        return f"package_name {name!r} is not a valid Python identifier (use letters, digits, _)"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"package_name {name!r} is a Python keyword"
    if name != name.lower():
        return f"package_name {name!r} must be lower case (PEP 8)"
    if name.startswith("_"):
        return f"package_name {name!r} must not start with an underscore"
    return ""


def check_email(value: str) -> str:
    """Validate an e-mail address (shape only, no DNS)."""
    if not _EMAIL.match(str(value)):
        return f"author_email {value!r} is not an e-mail address like name@example.org"
    return ""


def check_model_name(value: str) -> str:
    """Validate a registered-model name (MLflow registry, container and k8s friendly)."""
    if not _MODEL_NAME.match(str(value)):
        return (
            f"model_name {value!r} must start with a letter or digit and use only "
            "letters, digits, '.', '_' or '-' (at most 63 characters)"
        )
    return ""


def check_tracking_uri(value: str) -> str:
    """Validate an MLflow tracking URI."""
    uri = str(value)
    if not uri.startswith(_URI_SCHEMES):
        return (
            f"tracking_uri {uri!r} is not an MLflow tracking URI; use sqlite:///mlflow.db "
            "(local default) or a server URL such as http://mlflow.internal:5000"
        )
    if uri.startswith(("http://", "https://")) and not _HTTP_URL.match(uri):
        return f"tracking_uri {uri!r} has no valid host name"
    return ""


def check_remote_url(value: str) -> str:
    """Validate a DVC remote: a folder path or a supported remote URL."""
    url = str(value).strip()
    if not url:
        return "dvc_remote_url must not be empty"
    if "://" in url and not url.startswith(_REMOTE_SCHEMES):
        schemes = ", ".join(_REMOTE_SCHEMES)
        return f"dvc_remote_url {url!r} uses an unsupported scheme; use a folder path or one of {schemes}"
    if any(c in url for c in "\n\r\"'"):
        return "dvc_remote_url must not contain quotes or line breaks"
    return ""


class AndamioExtension(Extension):
    """Register andamio's filters in copier's Jinja environment."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        filters: dict[str, Any] = {
            "slugify": slugify,
            "to_package_name": to_package_name,
            "default_dataset": default_dataset,
            "dvc_config_url": dvc_config_url,
            "check_project_name": check_project_name,
            "check_package_name": check_package_name,
            "check_email": check_email,
            "check_model_name": check_model_name,
            "check_tracking_uri": check_tracking_uri,
            "check_remote_url": check_remote_url,
        }
        environment.filters.update(filters)
