"""`crystalclip train | evaluate | compare`: models from datasets, and how good they are."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .app import app, console, fail, parse_value


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
    accelerator: Annotated[str, typer.Option(help="auto | cpu | gpu (Lightning)")] = "cpu",
    devices: Annotated[str, typer.Option(help="devices per node: a count, 'auto', or ids like '0,1'")] = "1",
    num_nodes: Annotated[int, typer.Option(help="nodes (torchrun / SLURM srun start one process per device)")] = 1,
    strategy: Annotated[str, typer.Option(help="auto | ddp (negatives are gathered from every rank)")] = "auto",
    precision: Annotated[str, typer.Option(help="32-true | bf16-mixed | 16-mixed")] = "32-true",
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """Train a two-tower model on DATA's train split; keeps the best epoch by validation Recall@10."""
    from ..recipe import load_recipe
    from ..training import Engine, train as run_training

    overrides = {k: v for k, v in {"train.epochs": epochs, "train.batch_size": batch_size, "train.seed": seed}.items()
                 if v is not None}
    for item in set_ or []:
        key, _, value = item.partition("=")
        if not key or not _:
            fail(f"--set takes key=value, not {item!r}")
        overrides[key] = parse_value(value)
    engine = Engine(accelerator, int(devices) if devices.isdigit() else devices, num_nodes, strategy,
                    "32-true" if precision == "32" else precision)
    summary = run_training(data, load_recipe(recipe, overrides), out, resume=resume,
                           progress_bar=not as_json and console.is_terminal, engine=engine)
    if summary is None:  # a rank other than 0 of a distributed run: rank 0 reports
        return
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
    from ..api import load
    from ..evaluation.report import evaluate as run_evaluation

    if composition_baseline is None and model == "default":
        composition_baseline = "composition"
    main = load(model)
    baseline = load(composition_baseline) if composition_baseline else None
    report = run_evaluation(main, data, split, composition_model=baseline, ci=ci, plots_dir=plots)
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
    from ..evaluation.report import format_value, headline

    rows = headline(report)
    more = Table(title="headline: multiple choice (formulas masked, chance 0.25), property queries "
                       "(Spearman, chance 0), linear probes on mp40, mean zero-shot ROC-AUC")
    more.add_column("metric")
    for name in rows:
        more.add_column(name, justify="right")
    for metric in dict.fromkeys(k for row in rows.values() for k in row):
        if metric.startswith(("t2c", "c2t")):
            continue  # in the retrieval table above
        more.add_row(metric, *(format_value(row.get(metric)) for row in rows.values()))
    Console().print(more)


def _cell(value, ci=None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


@app.command()
def compare(
    data: Annotated[Path, typer.Option(help="dataset directory (from `crystalclip data build`)")],
    recipes: Annotated[str, typer.Option(help="comma-separated recipe names or .yaml paths")] = "default,clamp,clasp,clac",
    minutes: Annotated[float, typer.Option(help="training wall-clock budget per recipe")] = 8.0,
    out: Annotated[Path, typer.Option(help="where the runs go")] = Path("runs/compare"),
    results: Annotated[Path, typer.Option(help="the Markdown table to write")] = Path("docs/results.md"),
    composition_baseline: Annotated[str, typer.Option(help="composition-only baseline model")] = "composition",
    retrain: Annotated[bool, typer.Option(help="train again even when a run with this budget exists")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the reports as one JSON object")] = False,
):
    """Train every recipe under the same budget on DATA's train split, evaluate all on its test split
    with the same protocol and baselines, and write one table (RESULTS) with what each choice buys."""
    from ..compare import compare as run_compare

    reports = run_compare([r.strip() for r in recipes.split(",") if r.strip()], data, out, minutes, results,
                          composition_baseline, retrain, progress_bar=not as_json and console.is_terminal,
                          log=console.print)
    if as_json:
        print(json.dumps(reports))
    else:
        console.print(f"table written to {results}; runs in {out}")
