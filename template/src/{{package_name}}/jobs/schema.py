"""``make schema``: infer the data contract from the raw data, once, for the team to review."""

from __future__ import annotations

from typing import Any

from .. import contract
from ..data import load_raw
from ..settings import Settings


def run(settings: Settings, *, force: bool = False) -> dict[str, Any]:
    """Write ``data/contract.yaml`` from the raw data; never overwrite it unless ``force``."""
    path = settings.contract_path
    if path.exists() and not force:
        raise FileExistsError(
            f"{path.relative_to(settings.root)} exists and is yours: edit it, or run "
            "`make schema FORCE=1` to infer it again from the data (your edits are lost)"
        )
    frame = load_raw(settings)
    inferred = contract.infer(frame, settings.params.data.target, settings.task)
    contract.write(path, inferred)
    kinds = {k: len(inferred.names_of(k)) for k in contract.KINDS}
    print(
        f"schema: {len(frame)} rows; {len(inferred.columns)} feature columns "
        f"({', '.join(f'{n} {k}' for k, n in kinds.items())}); target {inferred.target.name!r}"
        + (f" with classes {list(inferred.target.classes)}" if inferred.target.classes else "")
    )
    for name, reason in inferred.excluded.items():
        print(f"schema: left out {name!r}: {reason}")
    print(f"schema: wrote {path.relative_to(settings.root)}: review it and commit it")
    return inferred.to_dict()
