"""Sources -> a pair dataset on disk: parse, featurize (all cores), split without leakage, write.

The directory's layout is `data.dataset.Dataset`'s (which every reader opens it through). It is written to a temporary directory beside OUT and swapped in, so OUT is never half-written.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from ..fileio import atomic_dir
from ..graphs import CrystalGraph, GraphConfig, build_graph, save_graphs
from .. import sources as _sources
from ..sources.base import Entry, Rejected
from ..structures import StructureError, parse_cif
from ..structures.crystal import Crystal
from ..structures.symmetry import spacegroup_number
from ..text.titles import clean_title
from .dataset import GRAPHS_DIR, PAIRS_FILE, REJECTED_FILE, SUMMARY_FILE
from .splits import SPLITS, assign_splits, connected_groups
from .text_cache import SUBDIR as TEXT_CACHE

_METADATA_COLUMNS = ("title", "journal", "year", "doi", "mineral", "chemical_name")


def build_dataset(
    specs: Iterable[str],
    out: str | os.PathLike,
    *,
    source_options: dict | None = None,
    graph_config: GraphConfig = GraphConfig(),
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    workers: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict:
    """Build the dataset at `out` from every source in `specs`; returns the summary.

    progress(done, total) is called as entries finish (total may be None when unknown).
    """
    specs = [specs] if isinstance(specs, (str, os.PathLike)) else list(specs)
    sources = _sources.open_sources(specs, **(source_options or {}))
    counts = [source.count() for source in sources]
    total = None if None in counts else sum(counts)
    tasks = ((entry, graph_config) for source in sources for entry in source.iter_entries())
    rows, graphs, rejected = [], [], []
    with contextlib.ExitStack() as stack:
        if (workers or os.cpu_count() or 1) > 1:
            pool = stack.enter_context(multiprocessing.get_context("fork").Pool(workers))
            results = pool.imap(_featurize_star, tasks, chunksize=8)
        else:
            results = map(_featurize_star, tasks)
        for done, (made, lost) in enumerate(results, 1):
            for row, graph in made:
                rows.append(row)
                graphs.append(graph)
            rejected.extend(lost)
            if progress:
                progress(done, total)
    rows, graphs, rejected = _drop_duplicate_ids(rows, graphs, rejected)
    table = pd.DataFrame(rows)
    if len(table):
        components = connected_groups(
            table["group"].tolist(), (table["formula"] + "|" + table["spacegroup_number"].astype(str)).tolist()
        )
        table["split"] = assign_splits(components, fractions, seed)
    else:
        table = pd.DataFrame(columns=["id", "source", "cif", "texts", "split"])
    rejected_table = pd.DataFrame(rejected, columns=["id", "source", "path", "reason"])
    summary = {
        "pairs": len(table),
        "texts": int(table["texts"].map(len).sum()) if len(table) else 0,
        "by_source": {k: int(v) for k, v in table["source"].value_counts().items()},
        "splits": {s: int((table["split"] == s).sum()) for s in SPLITS},
        "rejected": len(rejected_table),
        "rejected_by_reason": dict(Counter(_reason_kind(r) for r in rejected_table["reason"]).most_common()),
        "graph_config": graph_config.__dict__,
        "seed": seed,
        "fractions": list(fractions),
        "sources": [str(s) for s in specs],
    }
    _write(Path(out), table, graphs, rejected_table, summary, graph_config)
    return summary


def featurize_entry(entry: Entry | Rejected, config: GraphConfig) -> tuple[list[tuple[dict, CrystalGraph]], list[tuple]]:
    """One source entry -> (rows with their graphs, rejections). Runs in worker processes."""
    if isinstance(entry, Rejected):
        return [], [(entry.id, entry.source, entry.path, entry.reason)]
    try:
        crystals = parse_cif(entry.cif, entry.id)
    except StructureError as error:
        return [], [(entry.id, entry.source, entry.path, str(error))]
    made, lost = [], []
    for crystal in crystals:
        texts = entry.texts or _texts_from_cif(crystal)
        if not texts:
            lost.append((crystal.id, entry.source, entry.path, "no text to pair with (no publication title in the CIF)"))
            continue
        try:
            graph = build_graph(crystal, config)
        except StructureError as error:
            lost.append((crystal.id, entry.source, entry.path, str(error)))
            continue
        graph.id = crystal.id
        made.append((_row(entry, crystal, texts), graph))
    return made, lost


def _featurize_star(args):
    return featurize_entry(*args)


def _texts_from_cif(crystal: Crystal) -> list[str]:
    title = clean_title(crystal.metadata.get("title", ""))
    return [title] if title else []


def _row(entry: Entry, crystal: Crystal, texts: list[str]) -> dict:
    row = {
        "id": crystal.id,
        "source": entry.source,
        "cif": entry.cif,
        "texts": list(texts),
        "texts_generated": entry.texts_generated,
        "group": entry.group,
        "path": entry.path,
        "formula": crystal.reduced_formula(),
        "elements": sorted(crystal.composition()),
        "num_sites": len(crystal),
        "ordered": crystal.is_ordered,
        "spacegroup_number": spacegroup_number(crystal, entry.columns.get("space_group_number")),
    }
    for key in _METADATA_COLUMNS:
        if key in crystal.metadata:
            row[key] = crystal.metadata[key]
    # the source's own columns win over the CIF's metadata (AMCSD's cleaned title, or none, over the raw one)
    row.update({k: v for k, v in entry.columns.items() if k not in row or k in _METADATA_COLUMNS})
    return row


def _drop_duplicate_ids(rows, graphs, rejected):
    seen: set[str] = set()
    kept_rows, kept_graphs = [], []
    for row, graph in zip(rows, graphs):
        if row["id"] in seen:
            rejected.append((row["id"], row["source"], row["path"], "duplicate id (an earlier entry has it)"))
            continue
        seen.add(row["id"])
        kept_rows.append(row)
        kept_graphs.append(graph)
    return kept_rows, kept_graphs, rejected


def _reason_kind(reason: str) -> str:
    """Reasons grouped for the summary by their words, numbers and details dropped:
    'site 3 (O) and site 9 (O) overlap (0.1 Å apart)' -> 'site and site overlap'."""
    head = re.sub(r"\s*\([^)]*\)", "", reason).split(":")[0]
    words = (w.strip(",.;") for w in head.split())
    return " ".join(w for w in words if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", w))[:80]


def _write(out: Path, table, graphs, rejected_table, summary, config) -> None:
    with atomic_dir(out) as tmp:
        table.to_parquet(tmp / PAIRS_FILE, index=False)
        rejected_table.to_csv(tmp / REJECTED_FILE, index=False)
        save_graphs(graphs, tmp / GRAPHS_DIR, config)
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        if (out / TEXT_CACHE).is_dir():  # keyed by text, so still valid: keep the tower's work
            os.replace(out / TEXT_CACHE, tmp / TEXT_CACHE)