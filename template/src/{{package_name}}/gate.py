"""The quality gate: thresholds from ``params.yaml`` against test metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .settings import GateParams


@dataclass(frozen=True)
class Check:
    """One threshold check."""

    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool


@dataclass(frozen=True)
class GateResult:
    """All checks; the gate passes only when every check passes."""

    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    def failures(self) -> list[str]:
        """Human-readable descriptions of the failed checks."""
        out = []
        for c in self.checks:
            if c.passed:
                continue
            if c.value is None:
                out.append(f"{c.metric}: metric missing (threshold {c.op} {c.threshold})")
            else:
                out.append(f"{c.metric} = {c.value:.4f}, required {c.op} {c.threshold}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """Serialise for ``reports/gate.json`` and MLflow tags."""
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def evaluate_gate(metrics: dict[str, float], gate: GateParams) -> GateResult:
    """Compare ``metrics`` with the gate's ``min`` and ``max`` thresholds."""
    checks: list[Check] = []
    for metric, threshold in sorted(gate.min.items()):
        value = metrics.get(metric)
        checks.append(
            Check(metric, ">=", threshold, value, value is not None and value >= threshold)
        )
    for metric, threshold in sorted(gate.max.items()):
        value = metrics.get(metric)
        checks.append(
            Check(metric, "<=", threshold, value, value is not None and value <= threshold)
        )
    return GateResult(tuple(checks))


class GateFailedError(RuntimeError):
    """Raised when the quality gate does not pass."""

    def __init__(self, result: GateResult, where: str) -> None:
        lines = "\n  - ".join(result.failures())
        super().__init__(
            f"quality gate FAILED ({where}):\n  - {lines}\n"
            "Improve the model or, deliberately, change the thresholds under `gate:` "
            "in params.yaml."
        )
        self.result = result
