"""Governance: write ``docs/model_card.md`` for the registered model version.

Called at the end of the ``register`` stage.  The card joins the hand-written parts
(``docs/model_card.yml``: intended use, limitations) with what the run recorded: the data
(source, DVC hash of the raw data, rows, every column's kind and missing rate from the
bundle's ``reference.json``, excluded columns, target classes), metrics, the quality gate,
parameters and lineage (git commit, DVC data hash, MLflow run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .. import bundle
from ..settings import Settings

CARD = Path("docs") / "model_card.md"
CONTEXT = Path("docs") / "model_card.yml"
# Categories listed per column; the contract holds them all.
MAX_LISTED = 12


def _bullets(items: Any) -> list[str]:
    if not items:
        return ["- (not stated: fill in docs/model_card.yml)"]
    if isinstance(items, str):
        return [f"- {items}"]
    return [f"- {item}" for item in items]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _cell(value: Any) -> str:
    """Make ``value`` safe inside a Markdown table cell (data values can hold ``|``)."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _share(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    if 0 < value < 0.001:
        return "< 0.1 %"
    return f"{100 * value:.1f} %"


def _values(col: dict[str, Any]) -> str:
    """Return the allowed range or categories of a schema feature, for a table cell."""
    if col.get("kind") == "numeric" or "min" in col:
        low, high = col.get("min"), col.get("max")
        if low is None and high is None:
            return "-"
        return f"{_number(low)} to {_number(high)}"
    if col.get("kind") == "boolean":
        return "false, true"
    categories = [str(c) for c in col.get("categories") or []]
    shown = ", ".join(categories[:MAX_LISTED])
    if len(categories) > MAX_LISTED:
        shown += f", ... ({len(categories) - MAX_LISTED} more: data/contract.yaml)"
    return shown or "-"


def _yes_no(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _number(value: Any) -> str:
    if not isinstance(value, int | float):
        return "?"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _source(data: dict[str, Any]) -> list[str]:
    """Describe where the training data came from (never a database URL: only its variable)."""
    source = data.get("source", "demo")
    if source == "demo":
        return [
            f"- Source: the `{data.get('dataset', 'unknown')}` demo dataset that ships with "
            "scikit-learn"
        ]
    if source == "file":
        return [f"- Source: the file `{data.get('path', 'unknown')}` (tracked by DVC)"]
    variable = data.get("url_env") or "the variable in params.yaml data.sql.url_env"
    return [
        f"- Source: a SQL query on the database whose URL is in the environment variable "
        f"`{variable}` (the URL is never recorded), snapshotted to "
        "`data/raw/snapshot.parquet` (tracked by DVC):",
        "",
        "  ```sql",
        *[f"  {line}" for line in str(data.get("query", "")).strip().splitlines()],
        "  ```",
        "",
    ]


def _chosen(train: dict[str, Any]) -> dict[str, Any]:
    """Return the ``train`` parameters of the chosen estimator (only they trained this model)."""
    estimator = train.get("estimator")
    keep = {"estimator", "random_state", estimator}
    return {k: v for k, v in train.items() if k in keep}


def _data_section(
    metadata: dict[str, Any],
    schema: dict[str, Any],
    reference: dict[str, Any],
    params: dict[str, Any],
) -> list[str]:
    """Return the Data section: source, hashes, rows, columns, exclusions, target."""
    configured = params.get("data", {})
    data: dict[str, Any] = {**configured, **(configured.get("sql") or {})}
    data.update(metadata.get("data") or {})
    stats = reference.get("features", {})
    features = schema.get("features", [])
    excluded = schema.get("excluded") or data.get("excluded") or {}
    classes = schema.get("classes", data.get("classes"))
    hash_label = "version" if data.get("source", "demo") == "demo" else "DVC hash"
    rows = data.get("rows", reference.get("rows", "unknown"))
    target = schema.get("target", data.get("target", "unknown"))
    lines = [
        *_source(data),
        f"- Raw data {hash_label}: `{data.get('raw_hash', 'unknown')}`",
        f"- Training rows: {rows} (the test split is held out: "
        + (", ".join(f"{k} = {v}" for k, v in params.get("prepare", {}).items()) or "unknown")
        + ")",
        f"- Training data (DVC hash of `data/prepared`): `{metadata.get('data_hash')}`",
        f"- Target: `{target}`"
        + (
            f", classes: {', '.join(f'`{c}`' for c in classes)}"
            if classes
            else (f" ({metadata['task']})" if metadata.get("task") else "")
        ),
        f"- Model input: {len(features)} column{'' if len(features) == 1 else 's'}, as "
        "`data/contract.yaml` declares them" + (f"; {len(excluded)} excluded" if excluded else ""),
        "",
        "| column | kind | missing (training) | nullable | range or categories |",
        "|---|---|---|---|---|",
        *[
            f"| {_cell(f['name'])} | {f.get('kind', f.get('dtype', ''))} "
            f"| {_share(stats.get(f['name'], {}).get('missing'))} "
            f"| {_yes_no(f.get('nullable'))} | {_cell(_values(f))} |"
            for f in features
        ],
        "",
    ]
    if excluded:
        lines += [
            "Excluded from the model (reported by `make schema`, not model input):",
            "",
            "| column | reason |",
            "|---|---|",
            *[f"| {_cell(name)} | {_cell(reason)} |" for name, reason in excluded.items()],
            "",
        ]
    return lines


def render(
    context: dict[str, Any],
    metadata: dict[str, Any],
    registration: dict[str, Any],
    test_metrics: dict[str, Any],
    gate: dict[str, Any],
    schema: dict[str, Any],
    params: dict[str, Any],
    reference: dict[str, Any] | None = None,
) -> str:
    """Return the model card as Markdown (pure: every input is passed in)."""
    name, version = registration["name"], registration["version"]
    train_metrics = metadata.get("train_metrics", {})
    raw_hash = (metadata.get("data") or {}).get("raw_hash", "unknown")
    lines = [
        f"# Model card: {name} version {version}",
        "",
        "Written by the pipeline (`register` stage); do not edit it: edit",
        "`docs/model_card.yml` and `params.yaml`, then run `make pipeline`.",
        "",
        "## Model",
        "",
        "| field | value |",
        "|---|---|",
        f"| registry name | `{name}` |",
        f"| version | {version} |",
        f"| task | {metadata.get('task', 'unknown')} |",
        f"| estimator | {metadata.get('estimator', 'unknown')} |",
        f"| trained at | {metadata.get('trained_at', 'unknown')} |",
        f"| registered at | {registration.get('registered_at', 'unknown')} |",
        "",
        "## Intended use",
        "",
        str(context.get("intended_use") or "(not stated: fill in docs/model_card.yml)"),
        "",
        "Users:",
        "",
        *_bullets(context.get("users")),
        "",
        "Out of scope:",
        "",
        *_bullets(context.get("out_of_scope")),
        "",
        "## Data",
        "",
        *_data_section(metadata, schema, reference or {}, params),
        "## Metrics",
        "",
        "| metric | train | test |",
        "|---|---|---|",
        *[
            f"| {key} | {_fmt(train_metrics.get(key, '-'))} | {_fmt(test_metrics.get(key, '-'))} |"
            for key in sorted(set(train_metrics) | set(test_metrics))
        ],
        "",
        f"Quality gate: **{'passed' if gate.get('passed') else 'failed'}**",
        "",
        "| metric | rule | value | passed |",
        "|---|---|---|---|",
        *[
            f"| {c['metric']} | {c['op']} {c['threshold']} | {_fmt(c['value'])} | {c['passed']} |"
            for c in gate.get("checks", [])
        ],
        "",
        "## Parameters",
        "",
        "```yaml",
        yaml.safe_dump({"train": _chosen(params.get("train", {}))}, sort_keys=False).rstrip(),
        "```",
        "",
        "## Limitations",
        "",
        *_bullets(context.get("limitations")),
        "",
        "## Ethical considerations",
        "",
        *_bullets(context.get("ethical_considerations")),
        "",
        "## Lineage",
        "",
        "| what | value |",
        "|---|---|",
        f"| git commit | `{metadata.get('git_commit')}` |",
        f"| DVC data hash | `{metadata.get('data_hash')}` |",
        f"| raw data hash | `{raw_hash}` |",
        f"| MLflow run id | `{metadata.get('run_id')}` |",
        f"| MLflow model URI | `{metadata.get('model_uri')}` |",
        "",
        "Promotions (who moved the `champion` alias, when, from which version, with which",
        "gate result) are appended to `reports/promotions.jsonl` by `make promote`.",
        "",
    ]
    return "\n".join(lines)


def _optional_json(path: Path) -> dict[str, Any]:
    # A bundle from before the data contract has no missing rates: the card says "-".
    return bundle.read_json(path) if path.is_file() else {}


def write(settings: Settings, registration: dict[str, Any]) -> Path:
    """Write ``docs/model_card.md`` for ``registration``; return its path."""
    root = settings.root
    context_file = root / CONTEXT
    context: dict[str, Any] = {}
    if context_file.is_file():
        context = yaml.safe_load(context_file.read_text(encoding="utf-8")) or {}
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
    text = render(
        context,
        bundle.read_json(settings.bundle_dir / bundle.METADATA_FILE),
        registration,
        bundle.read_json(settings.metrics_path),
        bundle.read_json(settings.gate_path),
        bundle.read_json(settings.bundle_dir / bundle.SCHEMA_FILE),
        params,
        _optional_json(settings.bundle_dir / bundle.REFERENCE_FILE),
    )
    path = root / CARD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"register: model card -> {CARD}")
    return path
