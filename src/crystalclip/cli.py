"""The `crystalclip` command line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
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


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="dataset directory (from `crystalclip data build`)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="run directory to write")],
    recipe: Annotated[str, typer.Option(help="recipe name (default, ...) or a .yaml path")] = "default",
    epochs: Annotated[Optional[int], typer.Option(help="override the recipe's epochs")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="override the recipe's batch size")] = None,
    seed: Annotated[Optional[int], typer.Option(help="override the recipe's seed")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override any recipe key: model.embed_dim=128")] = None,
    resume: Annotated[bool, typer.Option(help="continue from the run's last checkpoint")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """Train a two-tower model on DATA's train split; keeps the best epoch by validation Recall@10."""
    from .training import load_recipe, train as run_training

    overrides = {k: v for k, v in {"train.epochs": epochs, "train.batch_size": batch_size, "train.seed": seed}.items()
                 if v is not None}
    for item in set_ or []:
        key, _, value = item.partition("=")
        overrides[key] = _parse_value(value)
    try:
        summary = run_training(data, load_recipe(recipe, overrides), out, resume=resume,
                               progress_bar=not as_json and console.is_terminal)
    except (ValueError, FileNotFoundError) as error:
        _fail(str(error))
    if as_json:
        print(json.dumps(summary))
    else:
        console.print(f"best validation Recall@10 {summary['best_val_R@10']:.3f}; model written to {out}")


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="'default' or a run directory")],
    data: Annotated[Path, typer.Option(help="dataset directory")],
    split: Annotated[str, typer.Option(help="train | val | test")] = "test",
    composition_baseline: Annotated[Optional[str], typer.Option(
        help="run directory of the composition-only baseline ('default' for the one shipped with the default model)")] = None,
    plots: Annotated[Optional[Path], typer.Option(help="write ROC, Recall@k and embedding-map PNGs here")] = None,
    ci: Annotated[bool, typer.Option(help="bootstrap 95% CIs (1,000 resamples)")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as one JSON object")] = False,
):
    """Retrieval (both directions, whole split) and zero-shot metrics, beside random and two baselines."""
    from .api import load
    from .evaluation.report import evaluate as run_evaluation

    if composition_baseline is None and model == "default":
        composition_baseline = "composition"
    try:
        main = load(model)
        baseline = load(composition_baseline) if composition_baseline else None
        report = run_evaluation(main, data, split, composition_model=baseline, ci=ci, plots_dir=plots)
    except (ValueError, FileNotFoundError) as error:
        _fail(str(error))
    if as_json:
        print(json.dumps(report))
        return
    _print_report(report)


def _print_report(report: dict) -> None:
    systems = {"model": report, **{k: report[k] for k in ("composition_baseline", "formula_baseline") if k in report}}
    table = Table(title=f"{report['split']} split: pool of {report['pool_size']:,} structures, "
                        f"{report['num_text_queries']:,} distinct texts")
    table.add_column("scope")
    table.add_column("metric")
    for name in [*systems, "random"]:
        table.add_column(name, justify="right")
    scopes = [("all", lambda r: r)] + [(s, lambda r, s=s: r["by_source"][s]) for s in report["by_source"]]
    for scope, pick in scopes:
        for direction in ("text_to_crystal", "crystal_to_text"):
            for metric in ("R@1", "R@10", "MRR"):
                cells = [_cell(pick(r)[direction][metric], pick(r).get("ci", {}).get(direction, {}).get(metric))
                         for r in systems.values()]
                random_key = "random" if direction == "text_to_crystal" else "random_crystal_to_text"
                cells.append(_cell(pick(report)[random_key][metric]))
                table.add_row(scope, f"{'t→c' if direction == 'text_to_crystal' else 'c→t'} {metric}", *cells)
    Console().print(table)
    shots = Table(title="zero-shot (prompt = the label): ROC-AUC / AP")
    shots.add_column("label")
    shots.add_column("pos/neg", justify="right")
    for name in systems:
        shots.add_column(name, justify="right")
    for label, m in report["zero_shot"].items():
        cells = [f"{_cell(r['zero_shot'][label]['roc_auc'])} / {_cell(r['zero_shot'][label]['ap'])}" for r in systems.values()]
        shots.add_row(label, f"{m['n_pos']}/{m['n_neg']}", *cells)
    Console().print(shots)


def _cell(value, ci=None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what you are looking for, in words")],
    model: Annotated[str, typer.Option(help="'default' or a run directory")] = "default",
    data: Annotated[Optional[Path], typer.Option(help="a dataset to search (default: the embedded structures)")] = None,
    k: Annotated[int, typer.Option("-k", help="how many results")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="results as JSON")] = False,
):
    """Rank structures by similarity to QUERY: the embedded AMCSD + mp40 + CoRE MOF set, or --data."""
    from . import embedded
    from .api import load

    if not query.strip():
        _fail("empty query")
    if not 1 <= k <= 1000:
        _fail("-k must be between 1 and 1000")
    try:
        clip = load(model)
    except (ValueError, FileNotFoundError) as error:
        _fail(str(error))
    with _progress(as_json) as bar:
        task = bar.add_task("embedding the structures (once per model)", total=None)
        try:
            pairs, embeddings = embedded.ensure_embeddings(
                clip, data, progress=lambda done, total: bar.update(task, completed=done, total=total))
        except (ValueError, FileNotFoundError) as error:
            _fail(str(error))
    table = pairs.table
    scores = embeddings @ clip.encode_texts([query])[0]
    top = np.argsort(-scores)[:k]
    results = [
        {"rank": rank + 1, "id": table["id"].iloc[i], "formula": table["formula"].iloc[i],
         "spacegroup_number": int(table["spacegroup_number"].iloc[i]), "score": round(float(scores[i]), 4),
         "source": table["source"].iloc[i], "text": table["texts"].iloc[i][0]}
        for rank, i in enumerate(top)
    ]
    if as_json:
        print(json.dumps({"query": query, "model": model, "pool_size": len(scores), "results": results}))
        return
    table = Table(title=f"{query!r}: top {k} of {len(scores):,} structures")
    for column in ("rank", "id", "formula", "space group", "score", "text"):
        table.add_column(column, overflow="fold", max_width=70 if column == "text" else None)
    for r in results:
        table.add_row(str(r["rank"]), r["id"], r["formula"], str(r["spacegroup_number"]), f"{r['score']:.3f}", r["text"])
    Console().print(table)


def _parse_value(text: str):
    import yaml

    return yaml.safe_load(text)


def _progress(quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=quiet or not console.is_terminal, transient=True)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


if __name__ == "__main__":
    app()
