"""The ``andamio`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from andamio import __version__
from andamio.errors import AndamioError

app = typer.Typer(
    name="andamio",
    help="Scaffold production ML repositories with Copier, keep them current, provision their hosts.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
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


@app.command()
def new(
    dest: Annotated[Path, typer.Argument(help="Directory to create the project in (must be empty).")],
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
    """Render a new ML project from the template."""
    from andamio import render

    try:
        answers = render.parse_data(data or [])
        with console.status(f"Rendering the template into [bold]{dest}[/]…", spinner="dots"):
            result = render.new(
                dest,
                data=answers,
                defaults=defaults,
                vcs_ref=vcs_ref,
                overwrite=overwrite,
                template=template,
                trust=trust,
                git=git,
            )
    except AndamioError as error:
        err.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(code=2) from None
    except KeyboardInterrupt:
        err.print("[yellow]aborted[/]")
        raise typer.Exit(code=130) from None

    table = Table(show_header=False, box=None, pad_edge=False)
    for key in ("project_name", "package_name", "ml_task", "dataset", "python_version", "tracking_uri"):
        if key in result.answers:
            table.add_row(f"[dim]{key}[/]", str(result.answers[key]))
    console.print(
        f"[bold green]✓[/] Rendered {result.files} files into [bold]{result.dest}[/] "
        f"in {result.seconds:.1f} s"
    )
    console.print(table)
    if result.commit:
        console.print(f"[bold green]✓[/] git repository initialised, first commit {result.commit[:10]}")
    console.print("\nNext steps:")
    console.print(f"  cd {result.dest}")
    if not result.commit:
        console.print('  git init && git add -A && git commit -m "Initial commit"')
    console.print("  make setup pipeline promote   # train, evaluate, register, promote")
    console.print("  make help                     # every task")
