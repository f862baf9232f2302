"""Stage ``evaluate``: test metrics, plots (data + PNG) and the quality gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from .. import bundle
from ..contract import split_target
from ..data import SPLIT_FILES
from ..gate import GateFailedError, evaluate_gate
from ..settings import Settings


def read_prepared(settings: Settings, part: str) -> pd.DataFrame:
    """Read one part (``train`` or ``test``) of the prepared split: a stage reads only its own."""
    path = settings.prepared_dir / SPLIT_FILES[("train", "test").index(part)]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run `make pipeline`")
    return pd.read_parquet(path)


def label_codes(model: Any, *labels: Any) -> list[np.ndarray] | None:
    """Each label array as positions in ``model.classes_``; ``None`` if a label is not a class.

    scikit-learn's metrics sort and compare the labels again in every call, which on text
    labels costs seconds per million rows; on these integer codes, in the same order as the
    classes, every metric comes out the same and takes milliseconds.
    """
    classes = getattr(model, "classes_", None)
    if classes is None:
        return None
    index = pd.Index(np.asarray(classes))
    if not index.is_unique:
        return None
    codes = [index.get_indexer(pd.Index(np.asarray(values))) for values in labels]
    return None if any((c < 0).any() for c in codes) else codes


def positive_scores(model: Any, proba: np.ndarray, target: pd.Series) -> tuple[np.ndarray, Any]:
    """Binary case: ``(target == positive class, its probability)``; labels may be text."""
    positive = model.classes_[1]
    return (np.asarray(target) == positive).astype(int), proba[:, 1]


def score(task: str, model: Any, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """Predict once: ``(labels, class probabilities)``.

    A classifier's labels are the classes of highest probability, which saves a second pass
    over a big table.
    """
    if task != "classification":
        return np.asarray(model.predict(features)), None
    proba = np.asarray(model.predict_proba(features))
    return np.asarray(model.classes_)[np.argmax(proba, axis=1)], proba


def compute_metrics(
    task: str,
    model: Any,
    features: pd.DataFrame,
    target: pd.Series,
    scored: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> dict[str, float]:
    """Return the task's standard metrics for ``model`` on ``features`` (``scored``: reuse)."""
    predicted, proba = scored or score(task, model, features)
    if task == "classification":
        codes = label_codes(model, target, predicted)
        if codes is not None:  # the same metrics, on integer codes
            target, predicted = pd.Series(codes[0]), codes[1]
            model = _Coded(len(model.classes_))
        result = {
            "accuracy": skm.accuracy_score(target, predicted),
            "f1": skm.f1_score(target, predicted, average="macro"),
            "precision": skm.precision_score(target, predicted, average="macro", zero_division=0),
            "recall": skm.recall_score(target, predicted, average="macro", zero_division=0),
        }
        assert proba is not None
        if proba.shape[1] == 2:
            result["roc_auc"] = skm.roc_auc_score(*positive_scores(model, proba, target))
        elif len(np.unique(np.asarray(target))) == proba.shape[1]:
            result["roc_auc"] = skm.roc_auc_score(
                target, proba, multi_class="ovr", labels=list(model.classes_)
            )
    else:
        result = {
            "r2": skm.r2_score(target, predicted),
            "rmse": float(np.sqrt(skm.mean_squared_error(target, predicted))),
            "mae": skm.mean_absolute_error(target, predicted),
        }
    return {k: round(float(v), 6) for k, v in result.items()}


class _Coded:
    """Stands for a classifier in the metrics once its labels are codes ``0..k-1``."""

    def __init__(self, k: int) -> None:
        self.classes_ = np.arange(k)


def _plot_classification(
    model: Any,
    scored: tuple[np.ndarray, np.ndarray | None],
    target: pd.Series,
    plots: Path,
    figures: Path,
) -> None:
    import matplotlib.pyplot as plt

    predicted, proba = scored
    assert proba is not None
    pd.DataFrame({"actual": target.to_numpy(), "predicted": predicted}).to_csv(
        plots / "confusion.csv", index=False
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    classes = list(model.classes_)
    codes = label_codes(model, target, predicted)
    if codes is not None:  # the same matrix, counted on integer codes (see label_codes)
        skm.ConfusionMatrixDisplay.from_predictions(
            codes[0],
            codes[1],
            ax=axes[0],
            colorbar=False,
            labels=list(range(len(classes))),
            display_labels=classes,
        )
    else:
        skm.ConfusionMatrixDisplay.from_predictions(
            target, predicted, ax=axes[0], colorbar=False, labels=classes
        )
    axes[0].tick_params(axis="x", labelrotation=30)
    axes[0].set_title("Confusion matrix (test set)")
    if proba.shape[1] == 2:
        fpr, tpr, thresholds = skm.roc_curve(*positive_scores(model, proba, target))
        title = "ROC curve (test set)"
    else:  # several classes: the micro-average of the one-vs-rest curves
        onehot = (
            label_binarize(np.asarray(target), classes=classes)
            if codes is None
            else label_binarize(codes[0], classes=list(range(len(classes))))
        )
        fpr, tpr, thresholds = skm.roc_curve(onehot.ravel(), proba.ravel())
        title = "ROC curve, micro-average over classes (test set)"
    pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(thresholds, 1.0)}).round(
        6
    ).to_csv(plots / "roc.csv", index=False)
    auc = skm.auc(fpr, tpr)
    axes[1].plot(fpr, tpr, label=f"ROC AUC = {auc:.3f}")
    axes[1].plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes[1].set_xlabel("False positive rate")
    axes[1].set_ylabel("True positive rate")
    axes[1].set_title(title)
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(figures / "evaluation.png", dpi=110)
    plt.close(fig)


def _plot_regression(
    scored: tuple[np.ndarray, np.ndarray | None], target: pd.Series, plots: Path, figures: Path
) -> None:
    import matplotlib.pyplot as plt

    predicted = np.asarray(scored[0], dtype=float)
    actual = target.to_numpy(dtype=float)
    pd.DataFrame({"actual": actual, "predicted": predicted}).round(6).to_csv(
        plots / "predictions.csv", index=False
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    lo, hi = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes[0].scatter(actual, predicted, s=12, alpha=0.7)
    axes[0].plot([lo, hi], [lo, hi], linestyle="--", color="grey", label="ideal")
    axes[0].set_xlabel("Actual")
    axes[0].set_ylabel("Predicted")
    axes[0].set_title("Predicted vs actual (test set)")
    axes[0].legend(loc="upper left")
    axes[1].hist(actual - predicted, bins=20)
    axes[1].set_xlabel("Residual (actual - predicted)")
    axes[1].set_ylabel("Count")
    axes[1].set_title("Residuals (test set)")
    fig.tight_layout()
    fig.savefig(figures / "evaluation.png", dpi=110)
    plt.close(fig)


def run(settings: Settings) -> dict[str, Any]:
    """Write ``reports/metrics.json``, plots and ``reports/gate.json``; fail on a missed gate."""
    import matplotlib

    matplotlib.use("Agg")
    test = read_prepared(settings, "test")
    model = bundle.load_model(settings.bundle_dir)
    features, target = split_target(test, settings.contract())
    scored = score(settings.task, model, features)
    test_metrics = compute_metrics(settings.task, model, features, target, scored)

    reports = settings.reports_dir
    plots, figures = reports / "plots", reports / "figures"
    plots.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    bundle.write_json(settings.metrics_path, test_metrics)
    if settings.task == "classification":
        _plot_classification(model, scored, target, plots, figures)
    else:
        _plot_regression(scored, target, plots, figures)

    result = evaluate_gate(test_metrics, settings.params.gate)
    bundle.write_json(settings.gate_path, result.to_dict())
    print(f"evaluate: test metrics {test_metrics}")
    if not result.passed:
        raise GateFailedError(result, "evaluate")
    print("evaluate: quality gate passed")
    return test_metrics
