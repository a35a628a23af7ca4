"""`crystalclip data ...`: build a pair dataset, and write the texts derived from it."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .app import console, data_app, fail, progress_bar


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
    from ..data.build import build_dataset
    from ..data.dataset import REJECTED_FILE
    from ..graphs import GraphConfig

    options = {k: v for k, v in dict(cif_column=cif_column, text_columns=text_column, id_column=id_column,
                                     limit=limit).items() if v}
    with progress_bar(as_json) as bar:
        task = bar.add_task("featurizing", total=None)
        summary = build_dataset(
            sources, out, source_options=options, seed=seed, workers=workers,
            graph_config=GraphConfig(cutoff=cutoff, max_neighbors=max_neighbors),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
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
    with progress_bar(as_json) as bar:
        task = bar.add_task(what, total=None)
        summary = run(lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        print(json.dumps(summary, default=str))
        return
    done = summary["written"]
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
    from ..derive import dataset_keywords

    if bool(llm_url) != bool(llm_model):
        fail("--llm-url and --llm-model go together")
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
    from ..derive import dataset_summaries

    _derive("summaries", as_json, lambda progress: dataset_summaries(
        dataset, summarizer=model, max_words=max_words, limit=limit, progress=progress))


@data_app.command("describe")
def data_describe(
    dataset: Annotated[Path, typer.Argument(help="dataset directory")],
    describer: Annotated[str, typer.Option(help="template (fast, default) | robocrys (pip install robocrys)")] = "template",
    limit: Annotated[Optional[int], typer.Option(help="only the first N structures (a trial run)")] = None,
    seed: Annotated[int, typer.Option(help="picks the phrasings and the sentence order")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """A description of each structure from the structure alone (CLaC), and its formula-free form.
    Writes DATASET/texts/descriptions.parquet and descriptions_formula_free.parquet."""
    from ..derive import dataset_descriptions

    _derive("descriptions", as_json, lambda progress: dataset_descriptions(
        dataset, describer=describer, limit=limit, progress=progress, seed=seed))


@data_app.command("facts")
def data_facts(
    dataset: Annotated[Path, typer.Argument(help="dataset directory")],
    seed: Annotated[int, typer.Option(help="picks the phrasings")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """A short text naming its structure type ("rock salt", "a cubic spinel-type crystal") for every
    structure the prototype matcher named. Writes DATASET/texts/facts.parquet."""
    from ..derive import dataset_facts

    _derive("facts", as_json, lambda progress: dataset_facts(dataset, seed, progress))


@data_app.command("titles")
def data_titles(
    dataset: Annotated[Path, typer.Argument(help="dataset directory")],
    titles: Annotated[Path, typer.Option(help="a Parquet/CSV table of paper titles, e.g. ../shared/data/arxiv/condmat_titles.parquet")],
    id_column: Annotated[str, typer.Option(help="the titles' id column")] = "arxiv_id",
    title_column: Annotated[str, typer.Option(help="the titles' text column")] = "title",
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """Paper titles that name a compound, as texts of every structure of that reduced formula (CLaSP's
    pairing); a title never spans two splits. Writes DATASET/texts/titles.parquet."""
    from ..derive import dataset_titles

    _derive("titles", as_json, lambda progress: dataset_titles(dataset, titles, id_column, title_column, progress))


@data_app.command("corpus")
def data_corpus(
    source: Annotated[Optional[Path], typer.Argument(help="a dataset directory (the shipped corpus: all MP + AMCSD + CoRE MOF + mp40), or a corpus directory whose structures are embedded again (default: the package's own)")] = None,
    model: Annotated[str, typer.Option(help="'default' or a run directory: the model whose embeddings are stored")] = "default",
    out: Annotated[Optional[Path], typer.Option(help="corpus directory (default: the package's own, src/crystalclip/embedded/corpus)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="processes that build graphs and symmetry inputs while this one encodes (default: all cores)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """Regenerate the ready corpus with MODEL's embeddings (float16): with no SOURCE, the packaged
    corpus's stored structures are embedded again (run it when the default model changes); with a
    dataset, its structures become the corpus. A killed run continues where it stopped."""
    from ..api import load
    from ..embedded.corpus import build_corpus, corpus_dir

    with progress_bar(as_json) as bar:
        task = bar.add_task("embedding the corpus", total=None)
        summary = build_corpus(source or corpus_dir(), out, load(model), workers=workers or os.cpu_count() or 1,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        print(json.dumps(summary))
        return
    console.print(f"{summary['structures']:,} structures ({summary['failed']:,} failed), "
                  f"{summary['bytes'] / 1e6:.1f} MB; float16 recall@10 against float32 "
                  f"{summary['recall_at_10']:.4f} (SQ8: {summary['sq8_recall_at_10']:.4f}) on {summary['query_kind']}")
