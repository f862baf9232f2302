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
    "check_ci_library",
    "check_column_name",
    "check_data_path",
    "check_email",
    "check_env_name",
    "check_git_url",
    "check_image_repository",
    "check_mirror_url",
    "check_model_name",
    "check_package_name",
    "check_project_name",
    "check_registry_prefix",
    "check_remote_url",
    "check_sql_query",
    "check_template_source",
    "check_tracking_uri",
    "default_dataset",
    "dvc_config_url",
    "estimator_name",
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
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_DATA_SUFFIXES = (".csv", ".parquet", ".pq")
#: Estimator name in params.yaml for each model family (``linear`` depends on the task).
FAMILIES = ("linear", "random_forest", "hist_gradient_boosting", "lightgbm", "xgboost")
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


def estimator_name(model_family: str, ml_task: str) -> str:
    """Return the ``train.estimator`` name of ``model_family`` for ``ml_task``."""
    if model_family not in FAMILIES:
        raise ValueError(f"unknown model_family {model_family!r}; expected one of {list(FAMILIES)}")
    if model_family == "linear":
        return "logistic_regression" if ml_task == "classification" else "ridge"
    return model_family


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


def check_data_path(value: str) -> str:
    """Validate the path of the team's data file: a CSV or Parquet file under ``data/raw/``."""
    path = str(value).strip()
    if not path.startswith("data/raw/") or path == "data/raw/" or ".." in path.split("/"):
        return f"data_path {path!r} must be a file under data/raw/, such as data/raw/customers.csv"
    if not path.lower().endswith(_DATA_SUFFIXES):
        return f"data_path {path!r} must end in .csv, .parquet or .pq"
    if any(c in path for c in "\n\r\"'\\ "):
        return f"data_path {path!r} must not contain spaces, quotes or backslashes"
    return ""


def check_column_name(value: str) -> str:
    """Validate the target column name (any text a table header can hold, on one line)."""
    name = str(value)
    if not name.strip():
        return "target must name the label column"
    if any(c in name for c in '\n\r"') or name != name.strip():
        return f"target {name!r} must be on one line, without quotes or surrounding spaces"
    return ""


def check_env_name(value: str) -> str:
    """Validate an environment variable name (upper case, digits, underscores)."""
    if not _ENV_NAME.match(str(value)):
        return f"sql_url_env {value!r} must be an environment variable name such as DATABASE_URL"
    return ""


def check_sql_query(value: str) -> str:
    """Validate the training query: one non-empty statement that reads rows."""
    query = str(value).strip()
    if not query:
        return "sql_query must not be empty"
    if not re.match(r"^(select|with)\b", query, re.IGNORECASE):
        return f"sql_query must be a SELECT (or WITH ... SELECT) query, got {query[:40]!r}"
    if ";" in query.rstrip(";"):
        return "sql_query must be a single statement"
    return ""


def check_ci_library(value: str) -> str:
    """Validate where the git host serves the ci-templates library: ``group/project``."""
    path = str(value)
    if path.count("/") < 1 or " " in path or path.startswith("/") or path.endswith("/"):
        return f"ci_library {path!r} must be group/project (a path on your git host, no spaces)"
    return ""


def check_image_repository(value: str) -> str:
    """Validate a container image repository: lower case, no scheme, no tag, no spaces."""
    name = str(value)
    if not name or " " in name or "://" in name or name != name.lower():
        return (
            f"image_repository {name!r} must be a lower-case image name such as "
            "registry.corp.example/team/model (no scheme, no tag)"
        )
    if ":" in name.rsplit("/", 1)[-1] or "@" in name:
        return f"image_repository {name!r} must not carry a tag or digest: CI tags each image"
    return ""


def check_git_url(value: str) -> str:
    """Validate a git URL that a server (Argo CD) pulls from: https://, http://, ssh:// or git@."""
    url = str(value)
    if not url.startswith(("https://", "http://", "ssh://", "git@")) or " " in url:
        return f"gitops_repo_url {url!r} must be an https://, ssh:// or git@ URL"
    return ""


def check_mirror_url(value: str) -> str:
    """Validate a package mirror URL (asked in air-gapped mode): http(s), no spaces."""
    url = str(value)
    if not _HTTP_URL.match(url) or " " in url:
        return f"required in air-gapped mode: an http(s) URL of the mirror, got {url!r}"
    return ""


def check_registry_prefix(value: str) -> str:
    """Validate a registry prefix that mirrors public images: ``host/path``, no scheme."""
    prefix = str(value)
    if not prefix or " " in prefix or "://" in prefix:
        return f"required in air-gapped mode: a registry host and path, no scheme, got {prefix!r}"
    return ""


def check_template_source(value: str) -> str:
    """Validate the internal source of the template: a git URL or an absolute path."""
    src = str(value)
    if not src or " " in src:
        return f"required in air-gapped mode: a git URL or an absolute path, got {src!r}"
    absolute = src.startswith(("git@", "gh:", "gl:", "/", "~")) or re.match(r"^[A-Za-z]:[\\/]", src)
    if "://" not in src and not absolute:
        return (
            f"template_source {src!r} must be a git URL or an absolute path "
            "(copier would resolve a relative one from the current directory)"
        )
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
            "check_data_path": check_data_path,
            "check_column_name": check_column_name,
            "check_env_name": check_env_name,
            "check_sql_query": check_sql_query,
            "check_ci_library": check_ci_library,
            "check_image_repository": check_image_repository,
            "check_git_url": check_git_url,
            "check_mirror_url": check_mirror_url,
            "check_registry_prefix": check_registry_prefix,
            "check_template_source": check_template_source,
            "estimator_name": estimator_name,
        }
        environment.filters.update(filters)
