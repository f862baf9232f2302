"""Governance: write ``docs/model_card.md`` for the registered model version.

Called at the end of the ``register`` stage.  The card joins the hand-written parts
(``docs/model_card.yml``: intended use, limitations) with what the run recorded: data,
metrics, the quality gate, parameters and lineage (git commit, DVC data hash, MLflow run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .. import bundle
from ..settings import Settings

CARD = Path("docs") / "model_card.md"
CONTEXT = Path("docs") / "model_card.yml"


def _bullets(items: Any) -> list[str]:
    if not items:
        return ["- (not stated: fill in docs/model_card.yml)"]
    if isinstance(items, str):
        return [f"- {items}"]
    return [f"- {item}" for item in items]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def render(
    context: dict[str, Any],
    metadata: dict[str, Any],
    registration: dict[str, Any],
    test_metrics: dict[str, Any],
    gate: dict[str, Any],
    schema: dict[str, Any],
    params: dict[str, Any],
) -> str:
    """Return the model card as Markdown (pure: every input is passed in)."""
    name, version = registration["name"], registration["version"]
    train_metrics = metadata.get("train_metrics", {})
    features = schema.get("features", [])
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
        f"- Dataset: `{params.get('data', {}).get('dataset', 'unknown')}`",
        "- Split: "
        + (", ".join(f"{k} = {v}" for k, v in params.get("prepare", {}).items()) or "unknown"),
        f"- Training data (DVC hash of `data/prepared`): `{metadata.get('data_hash')}`",
        f"- Target: `{schema.get('target', 'unknown')}`; {len(features)} input features",
        "",
        "| feature | type | min | max |",
        "|---|---|---|---|",
        *[
            f"| {f['name']} | {f.get('dtype', '')} | {_fmt(f.get('min'))} | {_fmt(f.get('max'))} |"
            for f in features
        ],
        "",
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
        yaml.safe_dump({"train": params.get("train", {})}, sort_keys=True).rstrip(),
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
        f"| MLflow run id | `{metadata.get('run_id')}` |",
        f"| MLflow model URI | `{metadata.get('model_uri')}` |",
        "",
        "Promotions (who moved the `champion` alias, when, from which version, with which",
        "gate result) are appended to `reports/promotions.jsonl` by `make promote`.",
        "",
    ]
    return "\n".join(lines)


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
        bundle.read_json(settings.reports_dir / "metrics.json"),
        bundle.read_json(settings.reports_dir / "gate.json"),
        bundle.read_json(settings.bundle_dir / bundle.SCHEMA_FILE),
        params,
    )
    path = root / CARD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"register: model card -> {CARD}")
    return path
