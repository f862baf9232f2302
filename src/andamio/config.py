"""Read a template's ``copier.yml`` as copier does: documents, and the ``!include`` tag.

andamio's own ``copier.yml`` keeps its settings and includes one file per topic from
``questions/`` (copier's ``!include``: a glob relative to the template root, each file one
or more YAML documents).  The toolkit reads the questions (``andamio new --data`` checks
names against them, ``adopt`` maps answers onto them), so it resolves includes the same way.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from andamio.errors import AndamioError

#: What makes up the template, relative to its root: the wheel, the test copies and the
#: template-history builders all ship exactly these.
TEMPLATE_PATHS = ("copier.yml", "questions", "template", "hooks")


def load(root: Path) -> dict[str, Any]:
    """Return the merged ``copier.yml`` of the template at ``root`` (settings and questions)."""

    class Loader(yaml.SafeLoader):
        """A loader of its own, so the tag is not registered on PyYAML's shared SafeLoader."""

    def include(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
        pattern = str(loader.construct_scalar(node))  # type: ignore[arg-type]
        if PurePosixPath(pattern).is_absolute():
            raise AndamioError(f"{root / 'copier.yml'}: !include {pattern} must be a relative path")
        documents: list[Any] = []
        for path in sorted(root.glob(pattern)):
            documents.extend(doc for doc in yaml.load_all(path.read_bytes(), Loader=Loader) if doc)
        return documents

    Loader.add_constructor("!include", include)
    path = root / "copier.yml"
    try:
        documents = list(yaml.load_all(path.read_bytes(), Loader=Loader))
    except (OSError, yaml.YAMLError) as error:
        raise AndamioError(f"cannot read {path}: {error}") from None
    merged: dict[str, Any] = {}
    for document in _flatten(documents):
        if isinstance(document, dict):
            merged.update(document)
    return merged


def questions(root: Path) -> dict[str, dict[str, Any]]:
    """Return the questions of the template at ``root`` in prompt order (settings excluded)."""
    return {k: v for k, v in load(root).items() if not k.startswith("_") and isinstance(v, dict)}


def _flatten(items: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in items:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat
