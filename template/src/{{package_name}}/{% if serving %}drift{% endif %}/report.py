"""Drift reports: ``drift.json`` and a self-contained ``drift.html`` (charts embedded as PNG).

The HTML page needs no network: one table of every feature's statistics, then one bar chart
per feature of the reference and current shares (PSI bins of a numeric feature, categories of
a categorical one, with the unseen bucket), drifted features first.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from .. import bundle
from .detector import ColumnDrift, DriftReport

# A categorical chart shows this many categories (the largest shares); the rest are grouped.
MAX_BARS = 12
_REFERENCE_COLOUR, _CURRENT_COLOUR, _DRIFT_COLOUR = "#8da0cb", "#fc8d62", "#b2182b"


def _bars(col: ColumnDrift, *, unseen: bool) -> tuple[list[str], list[float], list[float]]:
    """Chart buckets: every PSI bin, or the largest categories + the rest (+ unseen)."""
    labels, ref, cur = list(col.labels), list(col.reference_fractions), list(col.current_fractions)
    if col.kind == "numeric":
        return labels, ref, cur
    last = (labels.pop(), ref.pop(), cur.pop())  # the unseen bucket
    if len(labels) > MAX_BARS + 1:
        order = sorted(range(len(labels)), key=lambda i: -max(ref[i], cur[i]))
        keep, rest = order[:MAX_BARS], order[MAX_BARS:]
        labels = [labels[i] for i in keep] + [f"({len(rest)} others)"]
        ref = [ref[i] for i in keep] + [sum(ref[i] for i in rest)]
        cur = [cur[i] for i in keep] + [sum(cur[i] for i in rest)]
    if unseen:
        labels, ref, cur = [*labels, last[0]], [*ref, last[1]], [*cur, last[2]]
    return labels, ref, cur


def _short(label: str, width: int = 14) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def chart_pngs(columns: list[ColumnDrift], prediction: ColumnDrift | None = None) -> list[str]:
    """Draw one base64 PNG bar chart per column: reference vs current shares, bars labelled.

    A boolean feature (the contract's conversion makes any other value missing) and the
    ``prediction`` (the model's classes) hold no unseen value: their charts leave that bucket
    out, and the prediction's title its missing share (always 0).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig = plt.figure(figsize=(4.6, 3.0))
    images = []
    try:
        for col in columns:
            fig.clf()
            ax = fig.add_subplot()
            predicted = col is prediction
            labels, ref, cur = _bars(col, unseen=col.kind == "categorical" and not predicted)
            x = np.arange(len(labels))
            ax.bar(x - 0.2, ref, width=0.4, label="reference", color=_REFERENCE_COLOUR)
            ax.bar(x + 0.2, cur, width=0.4, label="current", color=_CURRENT_COLOUR)
            names = labels if col.kind == "numeric" else [_short(label) for label in labels]
            ax.set_xticks(x, names, rotation=40, ha="right", rotation_mode="anchor")
            ax.tick_params(axis="x", labelsize=7)
            ax.tick_params(axis="y", labelsize=7)
            ax.set_ylabel("share of non-missing values", fontsize=7)
            ax.set_ylim(0, 1.3 * max([*ref, *cur, 0.01]))
            verdict = f"drifted: {', '.join(col.reasons)}" if col.drifted else "stable"
            missing = f"{_percent(col.missing_reference)} -> {_percent(col.missing_current)}"
            ax.set_title(
                f"{col.name} ({col.kind}): PSI {col.psi:.3f}, {verdict}\n"
                + ("" if predicted else f"missing {missing}"),
                fontsize=8,
                color=_DRIFT_COLOUR if col.drifted else "#333333",
            )
            ax.legend(fontsize=7, frameon=False, ncols=2, loc="upper right")
            fig.tight_layout()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=90)
            images.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    finally:
        plt.close(fig)
    return images


_CSS = """
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
td:first-child, td:nth-child(2), td:last-child { text-align: left; }
tr.drift { background: #fde0dd; }
.charts { display: flex; flex-wrap: wrap; gap: 0.5em; }
figure { margin: 0; }
"""


def _number(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _row(col: ColumnDrift) -> str:
    cells = [
        html.escape(col.name),
        col.kind,
        str(col.rows),
        f"{col.psi:.4f}",
        _number(col.ks, ".4f"),
        _number(col.ks_p_value, ".3g"),
        _number(col.chi2_p_value, ".3g"),
        f"{_percent(col.missing_reference)} &rarr; {_percent(col.missing_current)}",
        "" if col.unseen is None else _percent(col.unseen),
        f"yes ({', '.join(col.reasons)})" if col.drifted else "no",
    ]
    style = ' class="drift"' if col.drifted else ""
    return f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def render_html(report: DriftReport, title: str = "Drift report") -> str:
    """Render a self-contained HTML page: verdict, table, embedded charts (no external asset)."""
    columns = [*report.features, *([report.prediction] if report.prediction else [])]
    ordered = sorted(columns, key=lambda c: not c.drifted)  # drifted first, stable order
    figures = "".join(
        f'<figure><img alt="{html.escape(col.name)}: reference vs current shares" '
        f'src="data:image/png;base64,{png}"></figure>'
        for col, png in zip(ordered, chart_pngs(ordered, report.prediction), strict=True)
    )
    verdict = "DRIFT: retraining advised" if report.failed else "no drift past the thresholds"
    pred_text = ""
    if report.prediction is not None:
        pred_text = f"; the predictions {'drifted' if report.prediction.drifted else 'are stable'}"
    thresholds = html.escape(json.dumps(report.params.model_dump()))
    header = (
        "<th>column</th><th>kind</th><th>rows</th><th>PSI</th><th>KS</th><th>KS p-value</th>"
        "<th>chi&sup2; p-value</th><th>missing ref &rarr; current</th><th>unseen</th>"
        "<th>drifted (tests)</th>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p><strong>{verdict}</strong>: {len(report.drifted_features)} of {len(report.features)}
features drifted{pred_text}; {report.rows} rows; generated
{dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}.</p>
<p>Thresholds (params.yaml <code>drift:</code>): <code>{thresholds}</code>. A column drifts
when an effect size passes its threshold and its test is significant: PSI or KS (numeric,
KS p-value), PSI over the category shares with an unseen bucket (categorical and boolean,
chi&sup2; p-value), or the missing share moving by more than <code>missing_share</code>
(two-proportion test).</p>
<table><thead><tr>{header}</tr></thead><tbody>
{"".join(_row(c) for c in columns)}
</tbody></table>
<h2>Reference vs current</h2>
<div class="charts">{figures}</div>
</body></html>
"""


def write_reports(report: DriftReport, out_dir: Path) -> dict[str, Path]:
    """Write ``drift.json`` and ``drift.html`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "drift.json", "html": out_dir / "drift.html"}
    bundle.write_json(paths["json"], report.to_dict())
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths


def evidently_report(reference: pd.DataFrame, current: pd.DataFrame, path: Path) -> bool:
    """Also save an Evidently DataDriftPreset report when Evidently is installed."""
    try:
        from evidently import Report  # type: ignore[import-not-found,unused-ignore]
        from evidently.presets import DataDriftPreset  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return False
    snapshot: Any = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    snapshot.save_html(str(path))
    return True
