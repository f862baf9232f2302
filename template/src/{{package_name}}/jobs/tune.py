"""Tuning (``make tune``): an Optuna study over the chosen estimator's search space.

Not a pipeline stage: a study explores and a person decides.  It cross-validates on the
prepared *train* split only (the test split stays held out for ``evaluate``), logs one MLflow
parent run ``tune-<estimator>`` with a nested run per trial, writes ``reports/tuning.json``
and prints the ``params.yaml`` lines that adopt the best trial.

The study lives in ``tune.storage``, any SQLAlchemy URL (default: a SQLite file under
``reports/``).  Point several machines at one shared database and each ``make tune`` adds
its trials to the same study.  A URL with a password belongs in the ``OPTUNA_STORAGE``
environment variable, which wins over ``params.yaml``: the password is never written to a
file or a log (``tuning.json`` and MLflow get the URL with the password masked).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .. import bundle, contract
from ..data import read_split
from ..features import build_model
from ..services import lineage, tracking
from ..settings import TUNING_FILE, Env, Settings
from .evaluate import compute_metrics

STORAGE_ENV = Env.OPTUNA_STORAGE
REPORT = TUNING_FILE
# Metrics where lower is better; every other metric of evaluate.compute_metrics is maximised.
_MINIMISED = frozenset({"rmse", "mae", "mse", "log_loss"})
_RANGE_KEYS = frozenset({"low", "high", "log", "step", "type"})


@dataclass(frozen=True)
class Dimension:
    """One hyper-parameter of the search space: a numeric range or a list of choices."""

    name: str
    kind: str  # "int" | "float" | "categorical"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Draw this dimension's value for ``trial``."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            step = 1 if self.step is None else int(self.step)
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=step, log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


def dimension(where: str, name: str, spec: Any) -> Dimension:
    """Parse ``tune.space.<estimator>.<name>``; raise ``ValueError`` naming it when invalid."""
    path = f"params.yaml: {where}.{name}"
    if not isinstance(spec, dict):
        raise ValueError(
            f"{path} must be a mapping of low, high (and log, step, type) or of choices"
        )
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
            raise ValueError(f"{path}: 'choices' must be a non-empty list and stand alone")
        return Dimension(name, "categorical", choices=tuple(choices))
    unknown = sorted(set(spec) - _RANGE_KEYS)
    if unknown or not {"low", "high"} <= set(spec):
        raise ValueError(
            f"{path}: expected low and high (and optionally log, step, type: int|float); "
            f"got {sorted(spec)}"
        )
    low, high = spec["low"], spec["high"]
    if isinstance(low, bool) or isinstance(high, bool):
        raise ValueError(f"{path}: low and high must be numbers")
    if not isinstance(low, int | float) or not isinstance(high, int | float) or low > high:
        raise ValueError(f"{path}: low and high must be numbers with low <= high")
    # Without a `type`, whole-number bounds (15, 127) make an integer range.
    kind = spec.get("type") or (
        "int" if isinstance(low, int) and isinstance(high, int) else "float"
    )
    if kind not in {"int", "float"}:
        raise ValueError(f"{path}: type must be int or float, not {kind!r}")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ValueError(f"{path}: a log range needs low > 0")
    step = spec.get("step")
    if step is not None and log:
        raise ValueError(f"{path}: step and log cannot be combined")
    return Dimension(
        name, kind, float(low), float(high), log, None if step is None else float(step)
    )


# The search space of each estimator when params.yaml has no `tune.space` at all (the
# template writes the same ones into a new project's params.yaml, for the team to edit).
DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "logistic_regression": dict(C=dict(low=0.001, high=100.0, log=True)),
    "ridge": dict(alpha=dict(low=0.001, high=100.0, log=True)),
    "random_forest": dict(
        n_estimators=dict(low=50, high=400, type="int"),
        max_depth=dict(low=3, high=16, type="int"),
    ),
    "hist_gradient_boosting": dict(
        learning_rate=dict(low=0.01, high=0.3, log=True),
        max_leaf_nodes=dict(low=15, high=127, type="int"),
        l2_regularization=dict(low=0.000001, high=10.0, log=True),
    ),
    "lightgbm": dict(
        learning_rate=dict(low=0.01, high=0.3, log=True),
        num_leaves=dict(low=15, high=127, type="int"),
    ),
    "xgboost": dict(
        learning_rate=dict(low=0.01, high=0.3, log=True),
        max_depth=dict(low=3, high=10, type="int"),
    ),
}


def search_space(settings: Settings) -> list[Dimension]:
    """Return the search space of ``train.estimator`` from ``tune.space``."""
    estimator = settings.params.train.estimator
    space = settings.params.tune.space or {}
    entries = space.get(estimator)
    if not entries and not space and estimator in DEFAULT_SPACES:
        # a params.yaml from before `make tune` (the team's file: updates never touch it)
        print(
            f"tune: params.yaml has no tune.space: using the default space of {estimator} "
            f"(add tune.space.{estimator} to change it)"
        )
        entries = DEFAULT_SPACES[estimator]
    if not entries:
        known = ", ".join(sorted(space)) or "none"
        raise ValueError(
            f"params.yaml: tune.space has no search space for train.estimator {estimator!r} "
            f"(spaces defined for: {known}); add 'tune.space.{estimator}'"
        )
    if not isinstance(entries, dict):
        raise ValueError(f"params.yaml: tune.space.{estimator} must be a mapping")
    return [dimension(f"tune.space.{estimator}", str(k), v) for k, v in entries.items()]


def metric_name(settings: Settings) -> str:
    """Return ``tune.metric``, or the task's headline metric (roc_auc, r2) when unset."""
    return settings.params.tune.metric or ("roc_auc" if settings.task == "classification" else "r2")


def direction(metric: str) -> str:
    """Return Optuna's direction for ``metric``: minimise errors, maximise scores."""
    return "minimize" if metric in _MINIMISED else "maximize"


def mask(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (safe for files and logs)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparsable storage URL>"


def storage_url(settings: Settings) -> tuple[str, str]:
    """Return ``(url, configured)``: the URL to open and the one to report (not yet masked).

    ``OPTUNA_STORAGE`` wins over ``tune.storage``.  A relative SQLite path is taken from the
    project root (not the working directory) and its folder is created.
    """
    configured = os.environ.get(STORAGE_ENV) or settings.params.tune.storage
    prefix = "sqlite:///"
    if configured.startswith(prefix) and not configured.startswith(prefix + "/"):
        relative = configured[len(prefix) :]
        if relative and relative != ":memory:":
            path = settings.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            return f"{prefix}{path}", configured
    if configured.startswith(prefix + "/"):
        Path(configured[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
    return configured, configured


def study_name(settings: Settings) -> str:
    """Return ``tune.study``, or ``<project>-<estimator>`` when it is not set."""
    name = settings.params.tune.study
    return str(name) if name else f"{settings.experiment_name}-{settings.params.train.estimator}"


def _folds(task: str, n_splits: int, seed: int, features: pd.DataFrame, target: pd.Series) -> Any:
    from sklearn.model_selection import KFold, StratifiedKFold

    if n_splits < 2:
        raise ValueError("params.yaml: tune.cv must be at least 2 folds")
    if task == "classification":
        smallest = int(target.value_counts().min())
        if smallest < n_splits:
            raise ValueError(
                f"params.yaml: tune.cv is {n_splits} but the rarest class has {smallest} "
                "training rows; lower tune.cv"
            )
        splitter: Any = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(features, target))


def cross_validate(
    settings: Settings,
    hyperparameters: dict[str, Any],
    features: pd.DataFrame,
    target: pd.Series,
    folds: list[tuple[np.ndarray, np.ndarray]],
    schema: contract.Contract,
) -> tuple[float, float]:
    """Return the mean and standard deviation of ``tune.metric`` over ``folds``."""
    metric = metric_name(settings)
    train = settings.params.train
    values = []
    for fit_rows, score_rows in folds:
        model = build_model(
            settings.task, train.estimator, hyperparameters, train.random_state, schema
        )
        model.fit(features.iloc[fit_rows], target.iloc[fit_rows])
        scores = compute_metrics(
            settings.task, model, features.iloc[score_rows], target.iloc[score_rows]
        )
        if metric not in scores:
            raise ValueError(
                f"params.yaml: tune.metric {metric!r} is not among the {settings.task} "
                f"metrics measured on a fold: {sorted(scores)}"
            )
        values.append(float(scores[metric]))
    return float(np.mean(values)), float(np.std(values))


def _yaml_value(value: Any) -> Any:
    # numpy scalars would dump as Python objects; floats keep full precision (reproducible).
    return value.item() if isinstance(value, np.generic) else value


def adoption(estimator: str, base: dict[str, Any], best: dict[str, Any]) -> str:
    """Return the ``params.yaml`` block that adopts ``best`` over the current ``base``."""
    tuned = {k: _yaml_value(v) for k, v in best.items()}
    section = {estimator: base | tuned}
    return yaml.safe_dump({"train": section}, sort_keys=False).rstrip()


def _open_study(settings: Settings, url: str, reported: str, name: str, goal: str) -> Any:
    import optuna

    try:
        storage = optuna.storages.RDBStorage(url)
        existing = optuna.study.get_all_study_names(storage)
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        password = _password(url)
        if password:
            message = message.replace(password, "***")
        raise ValueError(
            f"tune: cannot open the study storage {mask(reported)}: {message}"
        ) from None
    # A study keeps its first run's estimator and metric: trials of another setting would
    # make its "best trial" meaningless.
    seed: int | None = settings.params.train.random_state
    if name in existing:
        found = optuna.load_study(study_name=name, storage=storage)
        wanted = {
            "estimator": settings.params.train.estimator,
            "metric": metric_name(settings),
            "direction": goal,
        }
        made = {**found.user_attrs, "direction": found.direction.name.lower()}
        clash = [f"{k} {made[k]!r} (now {v!r})" for k, v in wanted.items() if made.get(k, v) != v]
        if clash:
            raise ValueError(
                f"tune: study {name!r} in {mask(reported)} was made for {', '.join(clash)}; "
                "set tune.study to a new name"
            )
        # The seed moves on with the trials already in the study: re-running draws new
        # candidates instead of repeating the first ones.  While another machine is running
        # trials, this one draws from fresh entropy (the same seed would repeat its draws).
        trials = found.get_trials(deepcopy=False)
        running = any(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        seed = None if running else (seed or 0) + len(trials)
        if running:
            print("tune: another machine is running trials of this study: unseeded sampler")
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(
        storage=storage, study_name=name, direction=goal, sampler=sampler, load_if_exists=True
    )
    study.set_user_attr("estimator", settings.params.train.estimator)
    study.set_user_attr("metric", metric_name(settings))
    return study


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None


def run(settings: Settings) -> dict[str, Any]:
    """Run the study; log it to MLflow; write ``reports/tuning.json``; return its content."""
    import mlflow
    import optuna

    tune, train_params = settings.params.tune, settings.params.train
    estimator, metric = train_params.estimator, metric_name(settings)
    goal = direction(metric)
    space = search_space(settings)
    base = train_params.hyperparameters()

    train, _ = read_split(settings.prepared_dir)
    schema = settings.contract()
    features, target = contract.split_target(train, schema)
    folds = _folds(settings.task, tune.cv, train_params.random_state, features, target)

    url, configured = storage_url(settings)
    reported = mask(configured)
    name = study_name(settings)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(settings, url, configured, name, goal)
    before = len(study.trials)
    ran: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        ran.append(trial.number)
        params = {d.name: d.suggest(trial) for d in space}
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True) as child:
            mlflow.log_params(params)
            mean, std = cross_validate(
                settings, {**base, **params}, features, target, folds, schema
            )
            mlflow.log_metrics({metric: mean, f"{metric}_std": std})
            mlflow.set_tags({"stage": "tune", "optuna_trial": str(trial.number)})
        trial.set_user_attr("mlflow_run_id", child.info.run_id)
        trial.set_user_attr(f"{metric}_std", std)
        return mean

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        if trial.value is None:
            print(f"tune: trial {trial.number}: {trial.state.name.lower()} ({shown})")
        else:
            print(
                f"tune: trial {trial.number}: {metric} {trial.value:.4f} ({shown}); "
                f"best {study.best_value:.4f} (trial {study.best_trial.number})"
            )

    limit = f", timeout {tune.timeout:g} s" if tune.timeout else ""
    print(
        f"tune: study {name!r} in {reported}: up to {tune.trials} trials of {estimator}"
        f"{limit}, {tune.cv}-fold {metric} ({goal}) on {len(features)} training rows"
        + (f"; {before} trials already in the study" if before else "")
    )
    with tracking.run(settings, run_name=f"tune-{estimator}") as parent:
        mlflow.set_tags(
            {
                "stage": "tune",
                "git_commit": lineage.git_commit(settings.root),
                "data_hash": lineage.dvc_output_hash(settings.root, "prepare", "data/prepared"),
                "optuna_study": name,
            }
        )
        mlflow.log_params(
            {
                "estimator": estimator,
                "metric": metric,
                "direction": goal,
                "cv": tune.cv,
                "trials": tune.trials,
                "timeout": tune.timeout,
                "study": name,
                "storage": reported,
            }
        )
        study.optimize(objective, n_trials=tune.trials, timeout=tune.timeout, callbacks=[report])
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            raise ValueError(f"tune: no trial of study {name!r} completed")
        best = study.best_trial
        best_value = float(best.value if best.value is not None else math.nan)
        record: dict[str, Any] = {
            "study": name,
            "storage": reported,
            "estimator": estimator,
            "metric": metric,
            "direction": goal,
            "cv": tune.cv,
            "best_value": best_value,
            "best_std": best.user_attrs.get(f"{metric}_std"),
            "best_params": {k: _yaml_value(v) for k, v in best.params.items()},
            "best_trial": best.number,
            "best_mlflow_run_id": best.user_attrs.get("mlflow_run_id"),
            "trials_run": len(ran),
            "trials_complete": len(complete),
            "trials_in_study": len(study.trials),
            "mlflow_run_id": parent.info.run_id,
            "adopt": adoption(estimator, base, best.params),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        mlflow.log_metric(f"best_{metric}", best_value)
        mlflow.log_params({f"best.{k}": v for k, v in best.params.items()})
        path = settings.root / REPORT
        path.parent.mkdir(parents=True, exist_ok=True)
        bundle.write_json(path, record)
        mlflow.log_artifact(str(path))

    _print_adoption(record)
    return record


def _short(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def _print_adoption(record: dict[str, Any]) -> None:
    sets = " ".join(
        f"train.{record['estimator']}.{k}={v if isinstance(v, str) else json.dumps(v)}"
        for k, v in record["best_params"].items()
    )
    print(
        f"tune: best {record['metric']} {record['best_value']:.4f} (trial {record['best_trial']}"
        f", {record['trials_complete']} complete trials in the study) -> {REPORT}\n"
        "tune: to adopt it, replace this section of params.yaml and run `make pipeline`:\n\n"
        f"{record['adopt']}\n\n"
        f"tune: or try it as a DVC experiment first: make exp SET='{sets}'"
    )
