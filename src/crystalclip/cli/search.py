"""`crystalclip search | index | classify | serve`: using a model on structures.

`search` always goes through an `Index`: a user's own (`--index`), the packaged corpus (~180k
structures with the default model's embeddings: nothing is built or embedded), or `--data DATASET`
(and the corpus under another `--model`) embedded once per model into the cache directory.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .app import app, console, fail, progress_bar

FILTER_KEYS = ("elements", "spacegroup", "crystal_system", "source")


def parse_filters(items: list[str]) -> dict[str, str]:
    """["elements=Cu,O", "crystal_system=cubic"] -> Index.search keyword arguments."""
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in FILTER_KEYS:
            fail(f"unknown filter {item!r}: use {', '.join(f'{k}=...' for k in FILTER_KEYS)}")
        if not value.strip():
            fail(f"filter {key} has no value")
        options[key] = f"{options[key]},{value}" if key in options and key != "crystal_system" else value
    return options


def print_results(results: list[dict], title: str) -> None:
    """One line per result (rank, score, id, formula, space group, source) and at most one line of
    text, cut to the terminal's width (80 columns when it is not a terminal)."""
    width = shutil.get_terminal_size((80, 24)).columns if console.is_terminal else 80
    out = Console(width=width, highlight=False, soft_wrap=False)
    out.print(_cut(title, width))
    for r in results:
        sg = "" if r["spacegroup_number"] is None else f"SG {r['spacegroup_number']}"
        head = f"{r['rank']:>3}  {r['score']:.3f}  {r['id']}  {r['formula']}  {sg}  {r['source'] or ''}".rstrip()
        out.print(_cut(head, width), markup=False)
        text = r["text"] or r["path"]
        if text:
            out.print(_cut("     " + " ".join(str(text).split()), width), markup=False)


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


@app.command()
def search(
    query: Annotated[Optional[str], typer.Argument(help="what you are looking for, in words")] = None,
    model: Annotated[Optional[str], typer.Option(
        help="'default' or a run directory (with --index: the model that built the index)")] = None,
    data: Annotated[Optional[Path], typer.Option(help="a dataset to search (default: the packaged corpus)")] = None,
    index: Annotated[Optional[list[Path]], typer.Option(
        help="an index directory (from `crystalclip index`) to search; repeat it to search shards together")] = None,
    like: Annotated[Optional[Path], typer.Option(help="a structure file: find structures like it")] = None,
    filter_: Annotated[Optional[list[str]], typer.Option(
        "--filter", help="elements=Cu,O | spacegroup=225 | crystal_system=cubic | source=mp,amcsd (repeatable)")] = None,
    k: Annotated[int, typer.Option("-k", help="how many results")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="results as JSON")] = False,
):
    """Rank structures by similarity to QUERY (or to --like FILE): the packaged corpus, an --index or --data."""
    from ..api import load, open_index
    from ..index import MAX_K
    from ..index_shards import search_together
    from ..structures import ReadFailure, iter_crystals

    if like is not None and query is not None:
        fail("give a query or --like FILE, not both")
    if like is None and (query is None or not query.strip()):
        fail("empty query")
    if not 1 <= k <= MAX_K:
        fail(f"-k must be between 1 and {MAX_K}")
    if index and data is not None:
        fail("give --index or --data, not both")
    filters = parse_filters(filter_ or [])
    target = query
    if like is not None:
        found = next(iter(iter_crystals(like)), None)
        if found is None or isinstance(found, ReadFailure):
            fail(f"cannot read {like}: {found.reason if found else 'no structure in it'}")
        target = found
    if index:
        shards = [open_index(index[0], model)]
        shards += [open_index(path, shards[0].model) for path in index[1:]]
        searched = shards[0]
        where = ",".join(map(str, index))
    else:
        from .. import embedded

        with progress_bar(as_json) as bar:
            task = bar.add_task("opening the structures (embedded once for a model other than the default)", total=None)
            searched = embedded.ensure_index(load(model or "default"), data,
                                             progress=lambda done, total: bar.update(task, completed=done, total=total))
        where = str(data) if data is not None else "corpus"
    if index and len(index) > 1:
        results = search_together(shards, target, k=k, **filters)
    else:
        results = searched.search(target, k=k, **filters)
    pool = sum(s.count for s in shards) if index else searched.count
    described = query if like is None else f"like {like}"
    if as_json:
        print(json.dumps({"query": query, "like": None if like is None else str(like), "index": where,
                          "model": searched.info["model"]["path"], "pool_size": pool, "filters": filters,
                          "results": results}))
        return
    matching = f" matching {', '.join(f'{k}={v}' for k, v in filters.items())}" if filters else ""
    if not results:
        console.print(f"no structure in {where}{matching}")
        return
    print_results(results, f"{described!r}: top {len(results)} of {pool:,} structures{matching}")


@app.command("index")
def index_command(
    paths: Annotated[list[Path], typer.Argument(help="CIF / POSCAR / extxyz files, folders (recursive), CSV/Parquet tables with a cif column")],
    out: Annotated[Path, typer.Option("--out", "-o", help="index directory (created, or continued if it exists)")],
    model: Annotated[str, typer.Option(help="'default' or a run directory")] = "default",
    ann: Annotated[bool, typer.Option(help="approximate HNSW index for large collections (recall@10 is measured)")] = False,
    kind: Annotated[str, typer.Option(
        help="flat (exact) | hnsw (= --ann) | sq8 (8 bits a dimension) | ivfpq (~72 bytes a vector, 10M+ structures); "
             "sq8 and ivfpq are compressed from the exact index at the end, their recall@10 measured")] = "flat",
    workers: Annotated[int, typer.Option(help="processes that build graphs while the model encodes (0: none)")] = 0,
    device: Annotated[str, typer.Option(help="where the model encodes: auto (a GPU when there is one) | cpu | cuda | cuda:N")] = "auto",
    devices: Annotated[str, typer.Option(help="processes per node, one per device (Lightning, as in `train`): a count or 'auto'")] = "1",
    num_nodes: Annotated[int, typer.Option(help="nodes (torchrun / SLURM srun start one process per device)")] = 1,
    strategy: Annotated[str, typer.Option(help="auto | ddp: with several devices or nodes each rank embeds a share of the inputs")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON object")] = False,
):
    """Embed PATHS into a searchable index; re-running continues where it stopped and adds only new files.

    With --devices N (and --num-nodes M) every rank embeds every (N·M)-th input into its own shard,
    resumable like any index, and rank 0 merges the shards into --out."""
    from ..api import load
    from ..index import INFO_FILE, Index
    from ..index_kinds import check_kind
    from ..structures.reader import structure_files

    kind = "hnsw" if ann else check_kind(kind)
    building = out.with_name(f".{out.name}.flat") if kind in ("sq8", "ivfpq") else out  # exact, then compressed
    for path in paths:
        if not path.exists():
            fail(f"no such file or folder: {path}")
        if path.is_dir() and not structure_files(path):
            fail(f"{path} holds no structure files (CIF, POSCAR, VASP, extxyz, or CSV/Parquet tables with a cif column)")
    if devices != "1" or num_nodes > 1:
        index, counts = _index_on_ranks(paths, out, model, kind, workers, devices, num_nodes, strategy)
        if index is None:
            return  # not rank 0: rank 0 merges and reports
        _report(out, index, counts, as_json)
        return
    clip = load(model, device=device)
    if (out / INFO_FILE).exists() and building != out:
        fail(f"{out} is a finished {kind} index: add to it from Python (Index.add) or write a new --out")
    if (building / INFO_FILE).exists():
        index = Index.load(building)
        index.check_model(clip)
        if index.kind != ("hnsw" if kind == "hnsw" else "flat"):
            fail(f"{building} is a {index.kind} index, not {kind}: write it to a new --out")
    else:
        index = Index.empty(clip, ann=kind == "hnsw")
    with progress_bar(as_json) as bar:
        task = bar.add_task("indexing", total=None)
        counts = index.add(paths, clip, checkpoint=building, workers=workers,
                           progress=lambda done, total: bar.update(task, completed=done, total=total))
    if building != out:
        index = index.compressed(kind)
        index.save(out)
        shutil.rmtree(building)
    _report(out, index, counts, as_json)


def _index_on_ranks(paths, out: Path, model: str, kind: str, workers: int, devices: str, num_nodes: int, strategy: str):
    """Each rank (Lightning Fabric: the processes `train` would start, one per device) embeds its
    share of the inputs into `out/../.out.rank-R-of-W`; after a barrier rank 0 merges the shards."""
    import torch
    from lightning.fabric import Fabric

    from ..api import load
    from ..index import INFO_FILE, Index
    from ..index_shards import merge
    from ..structures import expand_inputs

    fabric = Fabric(accelerator="auto", devices=int(devices) if devices.isdigit() else devices,
                    num_nodes=num_nodes, strategy="ddp" if strategy == "auto" else strategy)
    fabric.launch()
    rank, world = fabric.global_rank, fabric.world_size
    clip = load(model, device=str(fabric.device))
    shards = [out.with_name(f".{out.name}.rank-{r}-of-{world}") for r in range(world)]
    mine = shards[rank]
    index = Index.load(mine) if (mine / INFO_FILE).exists() else Index.empty(clip, ann=kind == "hnsw")
    index.check_model(clip)
    counts = index.add(expand_inputs(paths)[rank::world], clip, checkpoint=mine, workers=workers)
    index.save(mine)  # also a rank that had nothing to embed leaves its (empty) shard
    totals = fabric.all_reduce(torch.tensor(list(counts.values()), dtype=torch.float64), reduce_op="sum")
    counts = {key: int(value) for key, value in zip(counts, totals.tolist())}
    fabric.barrier()
    if rank != 0:
        return None, counts
    merged = merge([Index.load(shard) for shard in shards])
    if kind in ("sq8", "ivfpq"):
        merged = merged.compressed(kind)
    merged.save(out)
    for shard in shards:
        shutil.rmtree(shard)
    return merged, counts


def _report(out: Path, index, counts: dict, as_json: bool) -> None:
    from ..index import FAILED_FILE

    summary = {"index": str(out), **counts, "count": index.count, "kind": index.kind,
               "recall_at_10": index.recall_at_10, "model": index.info["model"]["path"],
               "failed_inputs": index.failed.to_dict("records")}
    if as_json:
        print(json.dumps(summary))
        return
    console.print(f"indexed {counts['indexed']:,} structures, {counts['failed']:,} failed, "
                  f"{counts['skipped']:,} already present; {index.count:,} in {out} ({index.kind})")
    if index.kind != "flat":
        console.print(f"{index.kind} recall@10 against exact search: {index.recall_at_10:.3f} "
                      f"({index.info['ann']['recall_queries']} indexed vectors as queries)")
    for row in summary["failed_inputs"][:20]:
        console.print(f"  [yellow]unreadable[/yellow] {row['path']}: {row['reason']}", highlight=False)
    if len(index.failed) > 20:
        console.print(f"  ... every unreadable input, with its reason: {out / FAILED_FILE}")


@app.command("index-merge")
def index_merge(
    shards: Annotated[list[Path], typer.Argument(help="index directories made by one model")],
    out: Annotated[Path, typer.Option("--out", "-o", help="the merged index directory (new)")],
):
    """Merge index shards into one (flat always; sq8/ivfpq shards trained together). To search shards
    without merging: `crystalclip search "..." --index A --index B`."""
    from ..index import INFO_FILE, Index
    from ..index_shards import merge

    if (out / INFO_FILE).exists():
        fail(f"{out} exists: merge into a new directory")
    merged = merge([Index.load(path) for path in shards])
    merged.save(out)
    console.print(f"merged {len(shards)} shards: {merged.count:,} structures in {out} ({merged.kind})")


@app.command()
def classify(
    paths: Annotated[list[Path], typer.Argument(help="structure files, folders or CSV/Parquet tables")],
    labels: Annotated[str, typer.Option(help="comma-separated labels: superconductor,ferromagnet,insulator")],
    template: Annotated[str, typer.Option(help="prompt around each label, e.g. 'a {} material'")] = "{}",
    model: Annotated[str, typer.Option(help="'default' or a run directory")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="results as JSON")] = False,
):
    """Zero-shot probabilities of LABELS for each structure (softmax over the labels)."""
    from ..api import check_prompts, load
    from ..structures import ReadFailure, expand_inputs, read_input

    names = check_prompts(labels.split(","), template)
    crystals, failed = [], []
    for item in expand_inputs(paths):
        for found, path in read_input(item):
            if isinstance(found, ReadFailure):
                failed.append({"path": found.where, "reason": found.reason})
            else:
                crystals.append((found, path))
    clip = load(model)
    with progress_bar(as_json) as bar:
        bar.add_task("classifying", total=None)
        classified = clip.classify([c for c, _ in crystals], names, template=template, errors="skip")
    failed += [{"path": crystals[i][1] or crystals[i][0].id, "reason": reason} for i, reason in classified.failures]
    for row in failed:
        console.print(f"[yellow]unreadable[/yellow] {row['path']}: {row['reason']}", highlight=False)
    if not classified.index:
        fail("no readable structure in the inputs")
    results = [{"id": crystals[i][0].id, "path": crystals[i][1],
                "probabilities": {n: round(float(p), 4) for n, p in zip(names, row)}}
               for i, row in zip(classified.index, classified.embeddings)]
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
    index: Annotated[Optional[Path], typer.Option(
        help="an index directory (from `crystalclip index`) to serve (default: the packaged corpus)")] = None,
    model: Annotated[Optional[str], typer.Option(
        help="the model that built the index (default: the one it records; 'default' for the corpus)")] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
):
    """The web page and the HTTP API (/api/search, /api/classify, /api/structures/ID, /health, /openapi.json)."""
    import uvicorn

    from ..server import create_app

    server_app = create_app(index, model)
    console.print(f"serving {server_app.state.index.count:,} structures on http://{host}:{port}")
    uvicorn.run(server_app, host=host, port=port, log_level="warning")
