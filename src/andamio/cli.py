"""The ``andamio`` command line."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.status import Status
from rich.table import Table

from andamio import __version__, outcome
from andamio.errors import AndamioError
from andamio.outcome import Exit

app = typer.Typer(
    name="andamio",
    help="Scaffold production ML repositories with Copier, keep them current, provision their hosts.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    epilog="Exit codes (every command): 0 done; 1 done, something left for you (behind, conflicts); "
    "2 error. README: Exit codes.",
)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _version(value: bool) -> None:
    if value:
        console.print(f"andamio {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Scaffold production ML repositories with Copier, keep them current, provision their hosts."""


class _Steps:
    """Print ``✓ step (seconds)`` as each step of ``andamio new --data-file`` ends; spin meanwhile."""

    def __init__(self, status: Status) -> None:
        self.status, self.label, self.started = status, "", 0.0

    def __call__(self, label: str) -> None:
        self.done()
        self.label, self.started = label, time.perf_counter()
        self.status.update(f"{label}…")

    def done(self) -> None:
        if self.label:
            console.print(
                f"[bold green]✓[/] {self.label} [dim]({time.perf_counter() - self.started:.1f} s)[/]"
            )
        self.label = ""


_DATA_PANEL = "Your data"


@app.command()
def new(
    dest: Annotated[Path, typer.Argument(help="Directory to create the project in (must be empty).")],
    data_file: Annotated[
        Path | None,
        typer.Option(
            "--data-file",
            metavar="PATH",
            help="CSV or Parquet table to train on instead of the demo dataset; "
            "ml_task is inferred from the target unless given with -d.",
            rich_help_panel=_DATA_PANEL,
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="COLUMN",
            help="Column of --data-file holding the label the model predicts.",
            rich_help_panel=_DATA_PANEL,
        ),
    ] = None,
    defaults: Annotated[bool, typer.Option("--defaults", help="Use default answers; do not prompt.")] = False,
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", metavar="KEY=VALUE", help="Answer a question (repeatable)."),
    ] = None,
    vcs_ref: Annotated[
        str | None, typer.Option("--vcs-ref", help="Template git ref (tag, branch, sha) to render.")
    ] = None,
    template: Annotated[
        str | None,
        typer.Option("--template", help="Template source (git URL or path); default: the bundled one."),
    ] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Allow a --template source to run its Jinja extensions.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Render into a non-empty directory, replacing files.")
    ] = False,
    git: Annotated[
        bool, typer.Option("--git/--no-git", help="Initialise git and make the first commit.")
    ] = True,
) -> None:
    """Render a new ML project from the template.

    To train on your own table, pass [bold]--data-file[/] and [bold]--target[/].
    andamio checks the file first and writes nothing when it is missing,
    unreadable, not CSV/Parquet, lacks the column or has too few rows; then
    it copies it to data/raw/ under DVC, infers its data contract, runs
    make setup and makes the first commit. Then train and serve:

    [bold]andamio new churn --data-file churn.csv --target churned --defaults[/]

    [bold]cd churn && make pipeline serve[/]
    """
    from andamio import datafile, gitrepo, render

    checked = None
    try:
        answers = render.parse_data(data or [])
        if (data_file is None) != (target is None):
            raise AndamioError("--data-file and --target go together: the file, and its label column")
        if data_file is not None and target is not None:
            with console.status(f"Checking [bold]{data_file}[/]…", spinner="dots"):
                checked = datafile.inspect(data_file, target, answers.get("ml_task"))
                answers, how = datafile.answers(checked, answers)
            if defaults and "project_name" not in answers:
                # The demo's default name (Breast Cancer Classifier) would name a team's package.
                answers["project_name"] = re.sub(r"[-_]+", " ", dest.resolve().name).strip().title()
            rows = f", {checked.target.rows} rows" if checked.target else ""
            columns = f", {len(checked.columns)} columns" if checked.columns else ", read after make setup"
            console.print(f"[bold green]✓[/] {data_file}: {checked.format.upper()}{rows}{columns}")
            console.print(f"  {how}")
        with console.status(f"Rendering the template into [bold]{dest}[/]…", spinner="dots") as status:
            steps = _Steps(status)
            common: dict[str, Any] = {
                "data": answers,
                "defaults": defaults,
                "vcs_ref": vcs_ref,
                "overwrite": overwrite,
                "template": template,
                "trust": trust,
                "git": git,
            }
            if checked:
                result = render.new_from_data_file(dest, checked, progress=steps, **common)
            else:
                result = render.new(dest, **common)
            steps.done()
    except AndamioError as error:
        err.print(f"[bold red]error:[/] {error}", soft_wrap=True)
        raise typer.Exit(code=Exit.ERROR) from None
    except KeyboardInterrupt:
        err.print("[yellow]aborted[/]")
        raise typer.Exit(code=Exit.INTERRUPTED) from None

    table = Table(show_header=False, box=None, pad_edge=False)
    keys = ("project_name", "package_name", "ml_task", "data_path", "target", "dataset", "python_version")
    for key in (*keys, "model_family", "tracking_uri"):
        if key in result.answers and not (key == "dataset" and result.data_path):
            table.add_row(f"[dim]{key}[/]", str(result.answers[key]))
    if result.data_path:
        console.print(
            f"[bold green]✓[/] [bold]{result.dest}[/] is ready in {result.seconds:.1f} s: "
            f"{result.files} files rendered, {result.data_path} tracked by DVC"
        )
    else:
        console.print(
            f"[bold green]✓[/] Rendered {result.files} files into [bold]{result.dest}[/] "
            f"in {result.seconds:.1f} s"
        )
    console.print(table)
    if result.commit:
        console.print(f"[bold green]✓[/] git repository initialised, first commit {result.commit[:10]}")
    console.print("\nNext steps:")
    console.print(f"  cd {result.dest}")
    if not result.commit and gitrepo.inside_work_tree(result.dest):
        console.print(f'  git add . && git commit -m "Add {result.dest.name}"   # the enclosing repository')
    elif not result.commit:
        console.print('  git init && git add -A && git commit -m "Initial commit"')
    if result.data_path:
        console.print("  cat data/contract.yaml        # review the inferred contract: it is yours")
        console.print("  make pipeline serve           # train, evaluate, register; serve the model")
    else:
        console.print("  make setup pipeline promote   # train, evaluate, register, promote")
    console.print("  make help                     # every task")


# Lifecycle commands print paths and versions whole (no wrapping: logs and CI parse them).
out = Console(highlight=False, soft_wrap=True)
errw = Console(stderr=True, highlight=False, soft_wrap=True)


def _print_json(payload: object) -> None:
    import json

    print(json.dumps(payload, indent=2, default=str))


@app.command()
def update(
    path: Annotated[Path, typer.Argument(help="Project, monorepo folder or answers file.")] = Path(),
    branch: Annotated[
        str | None, typer.Option("--branch", help="Branch to create (default: andamio/update-<version>).")
    ] = None,
    vcs_ref: Annotated[str | None, typer.Option("--vcs-ref", help="Template ref to update to.")] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Allow a template other than andamio's to run its extensions.")
    ] = False,
    commit: Annotated[
        bool, typer.Option("--commit/--no-commit", help="Commit the result on the new branch.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    summary: Annotated[
        Path | None, typer.Option("--summary", help="Write a Markdown summary (PR/MR body) to this file.")
    ] = None,
) -> None:
    """Update a project from its template on a new branch, keeping every line of the team's work."""
    from andamio import update as updating

    try:
        with err.status("Updating from the template…", spinner="dots"):
            results = updating.update(path, branch=branch, vcs_ref=vcs_ref, trust=trust, commit=commit)
    except AndamioError as error:
        if as_json:
            _print_json({"error": str(error), "results": []})
        errw.print(f"[bold red]error:[/] {error}", soft_wrap=True)
        raise typer.Exit(code=Exit.ERROR) from None
    if summary:
        summary.write_text(updating.summary_markdown(results), encoding="utf-8")
    if as_json:
        _print_json({"results": [r.to_dict() for r in results]})
    else:
        table = Table("project", "from → to", "result", "conflicts", box=None)
        for r in results:
            table.add_row(
                f"{r.project} [dim]{r.answers_file}[/]",
                f"{r.from_version} → {r.to_version}",
                r.result,
                "\n".join(r.conflicts),
            )
        out.print(table)
        for r in results:
            for kept in r.kept:
                out.print(f"[yellow]kept[/] {kept}: the template dropped it, you had changed it")
            if r.message and r.result == "error":
                errw.print(f"[bold red]error:[/] {r.message}")
        branches = sorted({r.branch for r in results if r.branch})
        if branches:
            out.print(f"Review on branch [bold]{branches[0]}[/]: git diff @{{-1}}...{branches[0]}")
        if any(r.conflicts for r in results):
            out.print("Resolve the conflict markers (<<<<<<<), then commit.")
    raise typer.Exit(code=outcome.exit_code(r.result for r in results))


@app.command()
def check(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Projects or folders to check (default: the current one).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    prereleases: Annotated[bool, typer.Option("--prereleases", help="Count pre-release tags.")] = False,
) -> None:
    """Tell whether projects are behind their template (exit 0 current, 1 behind, 2 cannot tell)."""
    from andamio import check as checking

    results = checking.check(paths or [Path()], prereleases=prereleases)
    if as_json:
        _print_json([r.to_dict() for r in results])
    else:
        for r in results:
            where = f"{r.project}/{r.answers_file}" if r.answers_file else r.project
            if r.error:
                errw.print(f"[bold red]?[/] {where}: {r.error}")
            elif r.update_available:
                out.print(f"[yellow]behind[/] {where}: {r.current_version} → {r.latest_version}")
            else:
                out.print(f"[green]current[/] {where}: {r.current_version}")
    raise typer.Exit(code=checking.exit_code(results))


fleet_app = typer.Typer(help="Check or update many repositories at once.", no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")


def _fleet_report(rows: list, as_json: bool, seconds: float) -> None:
    from collections import Counter

    if as_json:
        _print_json(
            {
                "rows": [r.to_dict() for r in rows],
                "counts": dict(Counter(r.result for r in rows)),
                "seconds": round(seconds, 3),
            }
        )
        return
    table = Table("repo", "project", "from → to", "result", "conflicts")
    for r in rows:
        result = f"{r.result} [dim](dirty)[/]" if r.dirty and r.result != outcome.Status.SKIPPED else r.result
        table.add_row(r.repo, r.project, f"{r.from_version} → {r.to_version}", result, "\n".join(r.conflicts))
    out.print(table)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(Counter(r.result for r in rows).items()))
    out.print(f"{len(rows)} projects in {seconds:.2f} s: {counts}")


def _progress(label: str):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=errw, transient=True)
    task = bar.add_task(label, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


def _run_fleet(label: str, as_json: bool, action: Callable[[Any], list[Any]]) -> None:
    """Run a fleet ``action`` under a progress bar, report its rows and exit with its code."""
    import time

    from andamio import fleet

    started = time.perf_counter()
    bar, tick = _progress(label)
    try:
        with bar:
            rows = action(tick)
    except AndamioError as error:
        errw.print(f"[bold red]error:[/] {error}", soft_wrap=True)
        raise typer.Exit(code=Exit.ERROR) from None
    _fleet_report(rows, as_json, time.perf_counter() - started)
    raise typer.Exit(code=fleet.exit_code(rows))


@fleet_app.command("status")
def fleet_status(
    root_or_list: Annotated[Path, typer.Argument(help="Folder to search, or a file listing repo paths.")],
    workers: Annotated[int | None, typer.Option("--workers", "-j", help="Parallel workers.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Report which repositories are current, behind, dirty or broken."""
    from andamio import fleet

    _run_fleet("checking", as_json, lambda tick: fleet.status(root_or_list, workers=workers, progress=tick))


@fleet_app.command("update")
def fleet_update(
    root_or_list: Annotated[Path, typer.Argument(help="Folder to search, or a file listing repo paths.")],
    workers: Annotated[int | None, typer.Option("--workers", "-j", help="Parallel workers.")] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="Branch name for every update.")] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Allow templates other than andamio's to run extensions.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Update every repository on a new branch, in parallel; skip dirty ones."""
    from andamio import fleet

    _run_fleet(
        "updating",
        as_json,
        lambda tick: fleet.update(root_or_list, workers=workers, trust=trust, branch=branch, progress=tick),
    )


@app.command()
def adopt(
    path: Annotated[Path, typer.Argument(help="Repository generated from cookiecutter.")] = Path(),
    replay: Annotated[
        Path | None, typer.Option("--replay", help="cookiecutter replay file holding the answers.")
    ] = None,
    template: Annotated[
        str | None, typer.Option("--template", help="Template source (git URL or path); default: andamio's.")
    ] = None,
    vcs_ref: Annotated[str | None, typer.Option("--vcs-ref", help="Template ref to adopt at.")] = None,
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", metavar="KEY=VALUE", help="Answer a question (repeatable)."),
    ] = None,
    defaults: Annotated[
        bool, typer.Option("--defaults/--ask", help="Default the answers cookiecutter did not give.")
    ] = True,
    trust: Annotated[
        bool, typer.Option("--trust", help="Allow a --template source to run its Jinja extensions.")
    ] = False,
    commit: Annotated[
        bool, typer.Option("--commit/--no-commit", help="Commit the result on a new branch.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Bring a cookiecutter or cruft project under andamio so that copier update works from now on."""
    from andamio import adopt as adopting
    from andamio.render import parse_data

    try:
        result = adopting.adopt(
            path,
            replay=replay,
            template=template,
            vcs_ref=vcs_ref,
            defaults=defaults,
            trust=trust,
            data=parse_data(data or []),
            commit=commit,
        )
    except AndamioError as error:
        errw.print(f"[bold red]error:[/] {error}", soft_wrap=True)
        raise typer.Exit(code=Exit.ERROR) from None
    if as_json:
        _print_json(result.to_dict())
    else:
        out.print(
            f"[bold green]✓[/] adopted {result.project} ({result.origin}) at template {result.version}: "
            f"{len(result.added)} files added, {len(result.unchanged)} identical, "
            f"{len(result.conflicts)} with conflict markers"
        )
        for name in result.conflicts:
            out.print(f"  [yellow]conflict[/] {name}")
        if result.branch:
            out.print(f"Review on branch [bold]{result.branch}[/]; resolve the markers, then commit.")
    if result.conflicts:
        raise typer.Exit(code=Exit.ATTENTION)
