"""Command line: one sub-command per pipeline stage (called by dvc.yaml and the Makefile)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .gate import GateFailedError
from .settings import load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=__package__, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="Write the train/test split to data/prepared")
    sub.add_parser("train", help="Fit the model, log it to MLflow, write models/bundle")
    sub.add_parser(
        "evaluate", help="Write test metrics and plots; fail when the quality gate fails"
    )
    sub.add_parser("register", help="Register the trained model version in the MLflow registry")
    promote = sub.add_parser(
        "promote", help="Move the 'champion' alias to a version that passes the gate"
    )
    promote.add_argument(
        "--version", help="Model version to promote (default: the last registered one)"
    )
    sub.add_parser("tracking-uri", help="Print the MLflow tracking URI in use")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; return the process exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "tracking-uri":
            print(settings.tracking_uri)
            return 0
        if args.command == "prepare":
            from .jobs import prepare as job
        elif args.command == "train":
            from .jobs import train as job  # type: ignore[no-redef]
        elif args.command == "evaluate":
            from .jobs import evaluate as job  # type: ignore[no-redef]
        elif args.command == "register":
            from .jobs import register as job  # type: ignore[no-redef]
        else:
            from .jobs import promote

            promote.run(settings, version=args.version)
            return 0
        job.run(settings)
    except (GateFailedError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
