"""Invalid answers are refused *at the prompt*, with the reason, and a fixed answer is accepted.

Drives plain ``copier copy`` (no andamio) through a pseudo-terminal, like a user would.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect
import pytest
import yaml

pytestmark = pytest.mark.render

CLEAR_LINE = "\x15"  # Ctrl-U: drop the proposed default before typing
# (prompt help text, invalid answer, expected message, valid answer) in prompt order
TEXT_ANSWERS = [
    ("Human-readable project name", "   ", "must not be empty", "Churn Radar"),
    ("Python package name", "class", "is a Python keyword", "churn"),
    ("One-line description", None, None, "Predict churn"),
    ("Author or owning team", None, None, "Growth ML"),
    ("Contact e-mail", "growth-at-corp", "not an e-mail address", "growth@corp.example"),
]
DOWN = "\x1b[B"  # arrow down in a select
PROMPT_OPENS = "\x1b[?2004h"  # prompt_toolkit turns bracketed paste on: a prompt waits for input
# (prompt help text, keys) of the selects between them: the team's own file as data source
SELECTS = [
    ("Python version", ""),
    ("Where the training data comes from", DOWN),
    ("Kind of model", ""),
]
DATA_ANSWERS = [
    ("Your CSV or Parquet file", "customers.csv", "must be a file under data/raw/", "data/raw/customers.csv"),
    ("Column that holds the label", "  ", "must name the label column", "churned"),
]
TAIL_ANSWERS = [
    (
        "Name of the model in the MLflow model registry",
        "churn radar",
        "must start with a letter",
        "churn-radar",
    ),
    ("MLflow tracking URI", "mlflow:5000", "not an MLflow tracking URI", "sqlite:///mlflow.db"),
    ("DVC remote", "ftp://files/dvc", "unsupported scheme", "../churn-remote"),
]


def _on_screen(text: str) -> str:
    """A pattern of ``text`` as prompt_toolkit draws it: a character already on screen at its
    place may be skipped with a cursor-forward (ESC [ n C) instead of being written again."""
    return "".join(f"(?:{re.escape(ch)}|\x1b\\[\\d*C)" for ch in text)


def _answer(child: pexpect.spawn, prompt: str, bad: str | None, message: str | None, good: str) -> None:
    child.expect(prompt)
    if bad is not None:
        child.send(CLEAR_LINE)
        child.sendline(bad)
        child.expect(_on_screen(message), timeout=10)
    child.send(CLEAR_LINE)
    child.sendline(good)


def test_copier_prompt_refuses_invalid_answers_and_explains_why(template_src: Path, tmp_path: Path):
    dest = tmp_path / "prompted"
    copier = str(Path(sys.executable).parent / "copier")
    # PROMPT_TOOLKIT_NO_CPR: a pseudo-terminal never answers prompt_toolkit's cursor-position
    # request, which it would wait about a second for at every prompt.
    env = {"TERM": "xterm", "PATH": os.environ["PATH"], "HOME": str(tmp_path), "PROMPT_TOOLKIT_NO_CPR": "1"}
    child = pexpect.spawn(
        copier,
        ["copy", "--trust", str(template_src), str(dest)],
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 220),
        env=env,
    )
    try:
        for prompt, bad, message, good in TEXT_ANSWERS:
            _answer(child, prompt, bad, message, good)
        for prompt, keys in SELECTS:
            child.expect(prompt)
            child.send(keys)
            child.sendline("")
        for prompt, bad, message, good in DATA_ANSWERS:
            _answer(child, prompt, bad, message, good)
        child.expect("Model family")
        child.sendline("")  # keep the default for a team's own data
        for prompt, bad, message, good in TAIL_ANSWERS:
            _answer(child, prompt, bad, message, good)
        # Later questions (CI providers, switches): accept each default as its prompt opens,
        # until copier ends (no fixed wait: a prompt turns bracketed paste on when it starts).
        for _ in range(40):
            if child.expect_exact([pexpect.EOF, PROMPT_OPENS]) == 0:
                break
            child.sendline("")
        else:
            raise AssertionError(f"copier did not finish; last output: {child.before[-500:]!r}")
    finally:
        child.close(force=True)
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert answers["package_name"] == "churn"
    assert answers["author_email"] == "growth@corp.example"
    assert answers["model_name"] == "churn-radar"
    assert answers["dvc_remote_url"] == "../churn-remote"
    assert answers["data_source"] == "file" and answers["data_path"] == "data/raw/customers.csv"
    assert answers["target"] == "churned" and answers["model_family"] == "hist_gradient_boosting"
    assert (dest / "src" / "churn" / "cli.py").is_file()
