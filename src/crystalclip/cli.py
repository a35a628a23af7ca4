"""The `crystalclip` command line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="Contrastive language-crystal pretraining: search and classify structures with text.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Build and inspect crystal-text pair datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(stderr=True)


@data_app.command("build")
def data_build(
    sources: Annotated[list[str], typer.Argument(help="amcsd | core-mof | a CIF folder | a CSV (mp40-style or generic); several are merged")],
    out: Annotated[Path, typer.Option("--out", "-o", help="dataset directory to write")],
    cif_column: Annotated[Optional[str], typer.Option(help="generic CSV: column holding CIF text")] = None,
    text_column: Annotated[Optional[list[str]], typer.Option(help="generic CSV: text column (repeatable)")] = None,
    id_column: Annotated[Optional[str], typer.Option(help="generic CSV: id column")] = None,
    limit: Annotated[Optional[int], typer.Option(help="at most this many entries per source")] = None,
    seed: Annotated[int, typer.Option(help="split seed")] = 0,
    workers: Annotated[Optional[int], typer.Option(help="processes (default: all cores)")] = None,
    cutoff: Annotated[float, typer.Option(help="neighbour cutoff, Å")] = 8.0,
    max_neighbors: Annotated[int, typer.Option(help="nearest neighbours kept per atom")] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """Read SOURCES, pair structures with text, featurize, split without leakage, write OUT."""
    from .data.build import REJECTED_FILE, build_dataset
    from .graphs import GraphConfig

    options = {k: v for k, v in dict(cif_column=cif_column, text_columns=text_column, id_column=id_column,
                                     limit=limit).items() if v}
    with _progress(as_json) as bar:
        task = bar.add_task("featurizing", total=None)
        try:
            summary = build_dataset(
                sources, out, source_options=options, seed=seed, workers=workers,
                graph_config=GraphConfig(cutoff=cutoff, max_neighbors=max_neighbors),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except (ValueError, FileNotFoundError) as error:
            _fail(str(error))
    if as_json:
        print(json.dumps(summary))
        return
    table = Table(title=f"dataset {out}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("pairs (structures)", f"{summary['pairs']:,}")
    table.add_row("texts", f"{summary['texts']:,}")
    for source, n in summary["by_source"].items():
        table.add_row(f"  from {source}", f"{n:,}")
    for split, n in summary["splits"].items():
        table.add_row(f"  {split}", f"{n:,}")
    table.add_row("rejected", f"{summary['rejected']:,}")
    for reason, n in summary["rejected_by_reason"].items():
        table.add_row(f"  {reason}", f"{n:,}")
    Console().print(table)
    if summary["rejected"]:
        console.print(f"every rejected entry, with its reason: {out / REJECTED_FILE}")


def _progress(quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=quiet or not console.is_terminal, transient=True)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


if __name__ == "__main__":
    app()
