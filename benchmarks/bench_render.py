"""Benchmark (a): full-option render time against `copier copy` of a 3-file template.

Measured in the same run, interleaved, from plain folders (as the wheel ships the
template), repeated; medians and ratios are printed.

* ``cli``: what a user waits for -- ``andamio new`` (every option on) and plain
  ``copier copy`` of the full template, each against ``copier copy`` of a 3-file
  template, as whole commands.  Target: ratio <= 1.5.
* ``in_process``: the rendering alone (``copier.run_copy`` in one process), to
  show where per-file costs go; no target.

    python benchmarks/bench_render.py [--repeat 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import copier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.matrix import choice_values, questions  # noqa: E402
from support.project import copy_template  # noqa: E402


def full_options() -> dict[str, object]:
    """Every switch on: all CI providers and every boolean question true."""
    data: dict[str, object] = {"ci_providers": choice_values("ci_providers")}
    for name, spec in questions().items():
        if spec.get("type") == "bool" and spec.get("when") is not False:
            data[name] = True
    return data


def tiny_template(dest: Path) -> Path:
    """Write the peer: a 3-file Copier template with one question."""
    (dest / "template").mkdir(parents=True)
    (dest / "copier.yml").write_text("_subdirectory: template\nname:\n  type: str\n  default: demo\n")
    (dest / "template" / "README.md.jinja").write_text("# {{ name }}\n")
    (dest / "template" / "main.py.jinja").write_text('print("{{ name }}")\n')
    (dest / "template" / "{{_copier_conf.answers_file}}.jinja").write_text(
        "{{ _copier_answers|to_nice_yaml }}"
    )
    return dest


def time_render(src: Path, data: dict[str, object], repeat: int, scratch: Path) -> list[float]:
    """Render ``src`` ``repeat`` times into fresh folders; return the durations."""
    times = []
    for i in range(repeat):
        dest = scratch / f"out-{src.name}-{i}"
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_copy(str(src), str(dest), data=data, defaults=True, unsafe=True, quiet=True)
        times.append(time.perf_counter() - start)
        shutil.rmtree(dest)
    return times


def time_command(cmd: list[str], dest: Path) -> float:
    """Run ``cmd`` (which renders into ``dest``) once; return its wall time."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest)
    return elapsed


def cli_figures(andamio: Path, tiny: Path, data: dict[str, object], repeat: int, scratch: Path) -> dict:
    """Whole-command wall times, interleaved."""
    bindir = Path(sys.executable).parent
    answers = [f"--data={k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in data.items()]
    commands = {
        "copier_copy_3_file": lambda d: [
            str(bindir / "copier"),
            "copy",
            "-q",
            "--defaults",
            str(tiny),
            str(d),
        ],
        "andamio_new_full": lambda d: [
            str(bindir / "andamio"),
            "new",
            str(d),
            "--defaults",
            "--no-git",
            "--template",
            str(andamio),
            "--trust",
            *answers,
        ],
        "copier_copy_full": lambda d: [
            str(bindir / "copier"),
            "copy",
            "-q",
            "--trust",
            "--defaults",
            *answers,
            str(andamio),
            str(d),
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(repeat + 1):
        for name, make in commands.items():
            dest = scratch / f"cli-{name}-{i}"
            elapsed = time_command(make(dest), dest)
            if i:  # the first round warms the file cache
                times[name].append(elapsed)
    medians = {name: statistics.median(values) for name, values in times.items()}
    peer = medians["copier_copy_3_file"]
    return {
        **{f"{name}_median_s": round(m, 4) for name, m in medians.items()},
        "ratio_andamio_new": round(medians["andamio_new_full"] / peer, 3),
        "ratio_copier_copy_full": round(medians["copier_copy_full"] / peer, 3),
    }


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        andamio = copy_template(scratch / "andamio")
        tiny = tiny_template(scratch / "tiny")
        data = full_options()
        # Warm-up: imports, Jinja environment and extension loading are paid once by both.
        time_render(tiny, {}, 2, scratch)
        time_render(andamio, data, 2, scratch)
        peer, ours = [], []
        for _ in range(args.repeat):  # interleaved, so drift in machine load hits both
            peer += time_render(tiny, {}, 1, scratch)
            ours += time_render(andamio, data, 1, scratch)
        probe = scratch / "count"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_copy(str(andamio), str(probe), data=data, defaults=True, unsafe=True, quiet=True)
        files = sum(1 for p in probe.rglob("*") if p.is_file())
        cli = cli_figures(andamio, tiny, data, args.repeat, scratch)
    result = {
        "files_rendered": files,
        "options": data,
        "repeat": args.repeat,
        "target_ratio": 1.5,
        "cli": cli,
        "in_process": {
            "andamio_full_median_s": round(statistics.median(ours), 4),
            "copier_3_file_median_s": round(statistics.median(peer), 4),
            "ratio": round(statistics.median(ours) / statistics.median(peer), 3),
        },
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
