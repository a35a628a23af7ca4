"""The app, its error handling and the helpers every command group shares."""
from __future__ import annotations

import functools

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

from ..errors import CrystalclipError

console = Console(stderr=True)


def fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(2)


class App(typer.Typer):
    """A Typer app whose commands turn a CrystalclipError into one line and exit status 2."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(function):
            @functools.wraps(function)
            def run(*a, **k):
                try:
                    return function(*a, **k)
                except CrystalclipError as error:
                    fail(str(error))

            return register(run)

        return decorator


class RateColumn(ProgressColumn):
    """Items per second."""

    def render(self, task) -> Text:
        return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")


def progress_bar(quiet: bool) -> Progress:
    """A Rich progress bar with a rate and an ETA, on stderr, off for --json or a non-terminal."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                    disable=quiet or not console.is_terminal, transient=True)


def parse_value(text: str):
    import yaml

    return yaml.safe_load(text)


app = App(help="Contrastive language-crystal pretraining: search and classify structures with text.",
          no_args_is_help=True, pretty_exceptions_enable=False)
data_app = App(help="Build and inspect crystal-text pair datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
