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


def _derive(what: str, as_json: bool, run) -> None:
    """Shared by the commands that write derived texts: a progress bar, clear errors, a summary."""
    with _progress(as_json) as bar:
        task = bar.add_task(what, total=None)
        try:
            summary = run(lambda done, total: bar.update(task, completed=done, total=total))
        except (ValueError, FileNotFoundError, ImportError, RuntimeError) as error:  # RuntimeError: LLMError
            _fail(str(error))
    if as_json:
        print(json.dumps(summary, default=str))
        return
    done = next(summary[k] for k in ("with_keywords", "summarized", "described") if k in summary)
    console.print(f"{what}: {done:,} of {summary['structures']:,} structures; written to {summary['path']}")
    for id_, reason in summary.get("failed", [])[:10]:
        console.print(f"  [yellow]failed[/yellow] {id_}: {reason}")


@data_app.command("keywords")
def data_keywords(
    dataset: Annotated[Path, typer.Argument(help="dataset directory")],
    llm_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM, llama.cpp, Ollama)")] = None,
    llm_model: Annotated[Optional[str], typer.Option(help="model name the endpoint serves")] = None,
    max_keywords: Annotated[int, typer.Option(help="keywords per structure")] = 10,
    limit: Annotated[Optional[int], typer.Option(help="only the first N structures (a trial run)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """Keywords on features, functions or applications per structure (CLaSP), generic terms removed:
    offline keyphrase extraction by default, or a local LLM endpoint. Writes DATASET/texts/keywords.parquet."""
    from .text.keywords import dataset_keywords

    if bool(llm_url) != bool(llm_model):
        _fail("--llm-url and --llm-model go together")
    _derive("keywords", as_json, lambda progress: dataset_keywords(
        dataset, backend="llm" if llm_url else "offline", llm_url=llm_url, llm_model=llm_model,
        max_keywords=max_keywords, limit=limit, progress=progress))


@data_app.command("summarize")
def data_summarize(
    dataset: Annotated[Path, typer.Argument(help="dataset directory")],
    model: Annotated[str, typer.Option(help="'extractive' (offline, default) or a local seq2seq model directory (Pegasus, BART, T5)")] = "extractive",
    max_words: Annotated[int, typer.Option(help="words per summary")] = 60,
    limit: Annotated[Optional[int], typer.Option(help="only the first N structures (a trial run)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """One summary per structure of all its texts (CLAMP). Writes DATASET/texts/summaries.parquet."""
    from .text.summarize import dataset_summaries

    _derive("summaries", as_json, lambda progress: dataset_summaries(
        dataset, summarizer=model, max_words=max_words, limit=limit, progress=progress))


@data_app.command("describe")
def data_describe(
    dataset: Annotated[Path, typer.Argument(help="dataset directory")],
    describer: Annotated[str, typer.Option(help="template (fast, default) | robocrys (pip install robocrys)")] = "template",
    limit: Annotated[Optional[int], typer.Option(help="only the first N structures (a trial run)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """A description of each structure from the structure alone (CLaC). Writes DATASET/texts/descriptions.parquet."""
    from .text.describe import dataset_descriptions

    _derive("descriptions", as_json, lambda progress: dataset_descriptions(
        dataset, describer=describer, limit=limit, progress=progress))


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
    from .evaluation.report import format_value, headline

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
    from .compare import compare as run_compare

    try:
        reports = run_compare([r.strip() for r in recipes.split(",") if r.strip()], data, out, minutes, results,
                              composition_baseline, retrain, progress_bar=not as_json and console.is_terminal,
                              log=console.print)
    except (ValueError, FileNotFoundError) as error:
        _fail(str(error))
    if as_json:
        print(json.dumps(reports))
    else:
        console.print(f"table written to {results}; runs in {out}")


@app.command()
def search(
    query: Annotated[Optional[str], typer.Argument(help="what you are looking for, in words")] = None,
    model: Annotated[Optional[str], typer.Option(
        help="'default' or a run directory (with --index: the model that built the index)")] = None,
    data: Annotated[Optional[Path], typer.Option(help="a dataset to search (default: the embedded structures)")] = None,
    index: Annotated[Optional[Path], typer.Option(help="an index directory (from `crystalclip index`) to search")] = None,
    like: Annotated[Optional[Path], typer.Option(help="a structure file: find structures like it (with --index)")] = None,
    filter_: Annotated[Optional[list[str]], typer.Option(
        "--filter", help="with --index: elements=Cu,O | spacegroup=225 | crystal_system=cubic (repeatable)")] = None,
    k: Annotated[int, typer.Option("-k", help="how many results")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="results as JSON")] = False,
):
    """Rank structures by similarity to QUERY (or to --like FILE): an --index, or the embedded set / --data."""
    if index is not None or like is not None or filter_:
        _search_index(query, model, index, like, filter_ or [], k, as_json)
        return
    from . import embedded
    from .api import load

    model = model or "default"
    if query is None or not query.strip():
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


FILTER_KEYS = ("elements", "spacegroup", "crystal_system")


def _search_index(query, model, index_dir, like, filters, k, as_json) -> None:
    """`search --index`: text -> structures or (--like) structure -> structures, with exact filters."""
    if index_dir is None:
        _fail("--like and --filter search an index: give --index INDEX (build one with `crystalclip index`)")
    if like is not None and query is not None:
        _fail("give a query or --like FILE, not both")
    if like is None and (query is None or not query.strip()):
        _fail("empty query")
    if not 1 <= k <= 100:
        _fail("-k must be between 1 and 100")
    options = {}
    for item in filters:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in FILTER_KEYS:
            _fail(f"unknown filter {item!r}: use {', '.join(f'{k}=...' for k in FILTER_KEYS)}")
        if not value.strip():
            _fail(f"filter {key} has no value")
        options[key] = f"{options[key]},{value}" if key in options and key != "crystal_system" else value
    from .index import Index
    from .models.clip import model_sha256
    from .structures import ReadFailure, iter_crystals

    try:
        index = Index.load(index_dir)
        if model is not None and Path(model).is_dir() and model_sha256(model) != index.info["model"]["sha256"]:
            _fail(f"this index was built with the model at {index.info['model']['path']}, not with {model}: "
                  "search it with that model, or build a new index with this one")
        from .api import load

        clip = load(model or index.info["model"]["path"])
        index.check_model(clip)
        target = query
        if like is not None:
            found = next(iter(iter_crystals(like)), None)
            if found is None or isinstance(found, ReadFailure):
                _fail(f"cannot read {like}: {found.reason if found else 'no structure in it'}")
            target = found
        results = index.search(target, k=k, model=clip, **options)
    except (ValueError, FileNotFoundError) as error:
        _fail(str(error))
    described = query if like is None else f"like {like}"
    if as_json:
        print(json.dumps({"query": query, "like": None if like is None else str(like), "index": str(index_dir),
                          "model": index.info["model"]["path"], "pool_size": index.count, "filters": options,
                          "results": results}))
        return
    where = f" matching {', '.join(f'{k}={v}' for k, v in options.items())}" if options else ""
    if not results:
        console.print(f"no structure in the index{where}")
        return
    table = Table(title=f"{described!r}: top {len(results)} of {index.count:,} structures{where}")
    for column in ("rank", "id", "formula", "space group", "score", "title / path"):
        table.add_column(column, overflow="fold", max_width=70 if column == "title / path" else None)
    for r in results:
        sg = "" if r["spacegroup_number"] is None else str(r["spacegroup_number"])
        table.add_row(str(r["rank"]), r["id"], r["formula"], sg, f"{r['score']:.3f}", r["title"] or r["path"] or "")
    Console().print(table)


@app.command("index")
def index_command(
    paths: Annotated[list[Path], typer.Argument(help="CIF / POSCAR / extxyz files, folders (recursive), CSVs with a cif column")],
    out: Annotated[Path, typer.Option("--out", "-o", help="index directory (created, or continued if it exists)")],
    model: Annotated[str, typer.Option(help="'default' or a run directory")] = "default",
    ann: Annotated[bool, typer.Option(help="approximate HNSW index for large collections (recall@10 is measured)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """Embed PATHS into a searchable index; re-running continues where it stopped and adds only new files."""
    from .api import load
    from .index import FAILED_FILE, INFO_FILE, Index

    for path in paths:
        if not path.exists():
            _fail(f"no such file or folder: {path}")
    try:
        clip = load(model)
        if (out / INFO_FILE).exists():
            index = Index.load(out)
            index.check_model(clip)
            if ann and index.kind != "hnsw":
                _fail(f"{out} is an exact index: write the --ann index to a new --out")
        else:
            index = Index.empty(clip, ann=ann)
        with _progress(as_json) as bar:
            task = bar.add_task("indexing", total=None)
            counts = index.add(paths, clip, checkpoint=out,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    except (ValueError, FileNotFoundError) as error:
        _fail(str(error))
    summary = {"index": str(out), **counts, "count": index.count, "kind": index.kind,
               "recall_at_10": index.recall_at_10, "model": index.info["model"]["path"],
               "failed_inputs": index.failed.to_dict("records")}
    if as_json:
        print(json.dumps(summary))
        return
    console.print(f"indexed {counts['indexed']:,} structures, {counts['failed']:,} failed, "
                  f"{counts['skipped']:,} already present; {index.count:,} in {out} ({index.kind})")
    if index.kind == "hnsw":
        console.print(f"HNSW recall@10 against exact search: {index.recall_at_10:.3f} "
                      f"({index.info['ann']['recall_queries']} indexed vectors as queries)")
    for row in summary["failed_inputs"][:20]:
        console.print(f"  [yellow]unreadable[/yellow] {row['path']}: {row['reason']}")
    if len(index.failed) > 20:
        console.print(f"  ... every unreadable input, with its reason: {out / FAILED_FILE}")


@app.command()
def classify(
    paths: Annotated[list[Path], typer.Argument(help="structure files, folders or CSVs")],
    labels: Annotated[str, typer.Option(help="comma-separated labels: superconductor,ferromagnet,insulator")],
    template: Annotated[str, typer.Option(help="prompt around each label, e.g. 'a {} material'")] = "{}",
    model: Annotated[str, typer.Option(help="'default' or a run directory")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="results as JSON")] = False,
):
    """Zero-shot probabilities of LABELS for each structure (softmax over the labels)."""
    names = [label.strip() for label in labels.split(",") if label.strip()]
    if not names:
        _fail("give at least one label: --labels 'superconductor,insulator'")
    if len(set(names)) != len(names):
        _fail("a label is given twice")
    try:
        template.format("label")
    except (IndexError, KeyError, ValueError):
        template = "?"
    if template.count("{}") != 1:
        _fail("the template must hold one '{}' where the label goes, like 'a {} material'")
    from .api import load
    from .index import expand_inputs, read_inputs
    from .structures import ReadFailure

    crystals, failed = [], []
    try:
        for item in expand_inputs(paths):
            for found, path in read_inputs(item):
                if isinstance(found, ReadFailure):
                    failed.append({"path": found.where, "reason": found.reason})
                else:
                    crystals.append((found, path))
        clip = load(model)
    except (ValueError, FileNotFoundError) as error:
        _fail(str(error))
    for row in failed:
        console.print(f"[yellow]unreadable[/yellow] {row['path']}: {row['reason']}")
    if not crystals:
        _fail("no readable structure in the inputs")
    with _progress(as_json) as bar:
        bar.add_task("classifying", total=None)
        probabilities = clip.classify([c for c, _ in crystals], names, template=template)
    results = [{"id": c.id, "path": path, "probabilities": {n: round(float(p), 4) for n, p in zip(names, row)}}
               for (c, path), row in zip(crystals, probabilities)]
    if as_json:
        print(json.dumps({"labels": names, "template": template, "model": model, "results": results,
                          "failed": failed}))
        return
    table = Table(title=f"zero-shot: {', '.join(template.format(n) for n in names)}")
    table.add_column("id", overflow="fold")
    for name in names:
        table.add_column(name, justify="right")
    for r in results:
        best = max(r["probabilities"], key=r["probabilities"].get)
        table.add_row(r["id"], *[f"[bold]{p:.3f}[/bold]" if n == best else f"{p:.3f}"
                                 for n, p in r["probabilities"].items()])
    Console().print(table)


@app.command()
def serve(
    index: Annotated[Path, typer.Option(help="an index directory (from `crystalclip index`) to serve")],
    model: Annotated[Optional[str], typer.Option(
        help="the model that built the index (default: the one it records)")] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
):
    """The web page and the HTTP API (/api/search, /api/classify, /api/structures/ID, /health, /openapi.json)."""
    try:
        import uvicorn

        from .server import create_app

        server_app = create_app(index, model)
    except ImportError as error:
        _fail(f"the server needs its dependencies ({error.name}): pip install -e .")
    except (ValueError, FileNotFoundError) as error:
        _fail(str(error))
    console.print(f"serving {server_app.state.index.count:,} structures on http://{host}:{port}")
    uvicorn.run(server_app, host=host, port=port, log_level="warning")


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
