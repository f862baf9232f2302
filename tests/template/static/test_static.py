"""Tier 1 (static, seconds): copier.yml shape, templates parse, portable names, no secrets."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
import yaml
from support import ROOT
from support.matrix import questions

from andamio import config

TEMPLATE = ROOT / "template"
ALL_FILES = sorted(p for p in TEMPLATE.rglob("*") if p.is_file())
JINJA_FILES = [p for p in ALL_FILES if p.suffix == ".jinja"]
# Free-text questions whose answers end up in code, paths or URLs must be validated.
VALIDATED = {"project_name", "package_name", "author_email", "model_name", "tracking_uri", "dvc_remote_url"}


def test_copier_yml_has_configuration_and_prompt_banners():
    text = (ROOT / "copier.yml").read_text()
    assert text.index("# CONFIGURATION") < text.index("# PROMPT"), "banners missing or out of order"


def test_questions_are_split_by_topic_and_all_included():
    # copier.yml holds the settings and includes every questions/ file, each once, in order
    text = (ROOT / "copier.yml").read_text()
    included = re.findall(r"^!include (\S+)$", text, re.MULTILINE)
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "questions").glob("*.yml"))
    assert sorted(included) == files and len(set(included)) == len(included), (included, files)
    bare = type("Bare", (yaml.SafeLoader,), {})
    bare.add_constructor("!include", lambda loader, node: None)
    own = [key for doc in yaml.load_all(text, Loader=bare) if doc for key in doc]
    assert own and all(key.startswith("_") for key in own), f"questions left in copier.yml: {own}"
    # and copier itself reads the same questions, in the same order
    from copier._template import load_template_config

    theirs = {k: v for k, v in load_template_config(ROOT / "copier.yml").items() if not k.startswith("_")}
    assert list(theirs) == list(config.questions(ROOT)) and theirs == config.questions(ROOT)


@pytest.mark.parametrize("name", sorted(questions()))
def test_every_question_has_type_help_and_default(name):
    spec = questions()[name]
    missing = [key for key in ("type", "help", "default") if key not in spec]
    assert not missing, f"question {name!r} lacks {missing}"


@pytest.mark.parametrize("name", sorted(n for n, q in questions().items() if "choices" in q))
def test_choices_are_label_value_maps(name):
    choices = questions()[name]["choices"]
    assert isinstance(choices, dict), f"{name}: choices must be a 'Label: value' map"
    default = questions()[name]["default"]
    values = list(choices.values())
    defaults = default if isinstance(default, list) else [default]
    if isinstance(default, str) and "{{" in default:
        # a derived default: every value it can yield is a quoted literal in the expression
        defaults = re.findall(r"'([^']+)'", default.split("if", 1)[0] + default.split("else", 1)[-1])
        assert defaults, f"{name}: derived default {default!r} names no literal value"
    assert set(defaults) <= set(values), f"{name}: default {default!r} is not one of {values}"


@pytest.mark.parametrize("name", sorted(VALIDATED))
def test_free_text_answers_are_validated(name):
    assert "validator" in questions()[name], f"{name} reaches code or paths but has no validator"


def test_settings_declare_updates_support():
    settings = config.load(ROOT)
    assert settings["_subdirectory"] == "template"
    assert "params.yaml" in settings["_skip_if_exists"]
    assert settings["_min_copier_version"]
    assert (TEMPLATE / "{{_copier_conf.answers_file}}.jinja").is_file()


def test_every_file_the_readme_calls_the_teams_own_is_skipped_on_update():
    # A row of the generated README's file table that says "(yours" names a file updates
    # must never overwrite: it is in _skip_if_exists, and nothing else is
    readme = (TEMPLATE / "README.md.jinja").read_text()
    own = set(re.findall(r"^\| `([^`]+)` \|[^\n]*\(yours", readme, re.MULTILINE))
    assert own >= {"params.yaml", "data/contract.yaml"}, own
    assert set(config.load(ROOT)["_skip_if_exists"]) == own


@pytest.mark.parametrize("path", JINJA_FILES, ids=lambda p: str(p.relative_to(TEMPLATE)))
def test_every_jinja_file_parses(path: Path):
    jinja2.Environment().parse(path.read_text(encoding="utf-8"))


def test_every_templated_path_parses():
    env = jinja2.Environment()
    for path in ALL_FILES:
        for part in path.relative_to(TEMPLATE).parts:
            if "{" in part:
                env.parse(part)


def test_files_without_answers_are_not_jinja():
    """`.jinja` only on files that use answers; everything else is copied verbatim."""
    needless = [
        str(p.relative_to(TEMPLATE))
        for p in JINJA_FILES
        if not re.search(r"{{|{%", p.read_text(encoding="utf-8"))
    ]
    assert not needless, f"these .jinja files use no answer: {needless}"


def test_verbatim_files_hold_no_jinja():
    leaked = [
        str(p.relative_to(TEMPLATE))
        for p in ALL_FILES
        if p.suffix != ".jinja"
        and (
            re.search(r"{%-? *(if|for|raw)\b", text := p.read_text(encoding="utf-8"))
            # {{ name }} of a copier question; other names are another tool's (Ansible's) Jinja
            or any(name in questions() for name in re.findall(r"{{ *([a-z_]+) *}}", text))
        )
    ]
    assert not leaked, f"Jinja syntax in files that are copied verbatim: {leaked}"


def test_file_names_are_portable():
    bad_chars = re.compile(r'[<>:"\\|?*\x00-\x1f]')
    seen: dict[str, Path] = {}
    for path in ALL_FILES:
        rel = path.relative_to(TEMPLATE)
        plain = re.sub(r"{{.*?}}|{%.*?%}", "x", str(rel))
        assert not bad_chars.search(plain), f"{rel}: character not portable to Windows/macOS"
        assert all(not part.endswith((" ", ".")) for part in rel.parts), f"{rel}: trailing space or dot"
        key = plain.lower()
        assert key not in seen, f"{rel} and {seen[key]} collide on case-insensitive file systems"
        seen[key] = rel


SECRET_PATTERNS = {
    "AWS key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "password assignment": re.compile(r"(?i)(password|passwd|secret|token)\s*[:=]\s*['\"][^'\"{}$]{4,}['\"]"),
    # (a version after a comparison, like py4j>=0.10.9.7, is no address)
    "IPv4 address other than loopback": re.compile(
        r"(?<![\w.=<>~!])(?!127\.0\.0\.1\b)(?:\d{1,3}\.){3}\d{1,3}\b"
    ),
}


@pytest.mark.parametrize("kind", sorted(SECRET_PATTERNS))
def test_no_hard_coded_secrets_or_hosts(kind):
    pattern = SECRET_PATTERNS[kind]
    hits = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in [*ALL_FILES, ROOT / "copier.yml", *(ROOT / "questions").glob("*.yml")]
        for m in pattern.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not hits, f"{kind} found: {hits}"


def test_declared_pyspark_metadata_follows_the_spark_pin():
    # `uv lock` takes pyspark's requirements from [[tool.uv.dependency-metadata]] instead of
    # downloading its 450 MB sdist: that entry must name the version the `spark` extra pins
    # (the execute tier compares its requirements with the installed pyspark's own).
    text = (TEMPLATE / "pyproject.toml.jinja").read_text()
    pin = re.search(r'^spark = \["pyspark==([^"]+)"\]$', text, re.MULTILINE)
    entry = r'\[\[tool\.uv\.dependency-metadata\]\]\nname = "pyspark"\nversion = "([^"]+)"'
    declared = re.search(entry, text)
    assert pin and declared, "the spark extra or its dependency-metadata entry is missing"
    assert declared.group(1) == pin.group(1), (declared.group(1), pin.group(1))
