"""Sources -> a pair dataset on disk: parse, describe, featurize (all cores), split without leakage, write.

The directory's layout is `data.dataset.Dataset`'s (which every reader opens it through).

The build is resumable: entries are processed in chunks of CHUNK, each written (atomically) to a work
directory beside OUT (`.OUT.building/`) as soon as it is done. A build killed at any point and run
again with the same command skips the finished chunks, and every build, interrupted or not, assembles
the result from those chunk files, so a resumed build equals an uninterrupted one. The assembled
dataset is written to a temporary directory beside OUT and swapped in: OUT is never half-written.

Entries with no text of their own that a source marks `texts_generated` (tables of CIFs such as the
Materials Project's) are described from the structure alone (`text.describe`), with the CIF's bond
loop where it has one; every text gets a formula-free twin in `texts_formula_free`.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from .. import sources as _sources
from ..fileio import atomic_dir
from ..graphs import CrystalGraph, GraphConfig, GraphStore, build_graph, save_graphs
from ..sources.base import Entry, Rejected
from ..structures import StructureError, parse_cif
from ..structures.crystal import Crystal
from ..structures.symmetry import crystal_system, spacegroup_number
from ..text.masking import mask_formulas
from ..text.titles import clean_title
from .dataset import GRAPHS_DIR, PAIRS_FILE, REJECTED_FILE, SUMMARY_FILE
from .splits import SPLITS, assign_splits, connected_groups
from .text_cache import SUBDIR as TEXT_CACHE

_METADATA_COLUMNS = ("title", "journal", "year", "doi", "mineral", "chemical_name")
CHUNK = 4096  # entries per resumable chunk
BUILD_FORMAT = 2  # bump when a chunk's content changes: older work directories are started afresh
# pairs.parquet in row groups of this many rows: `Dataset.iter_column` (CIFs, texts) decodes one group
# at a time, so reading a column never holds the whole of it (one group held all 179k CIFs)
ROW_GROUP_ROWS = 8192


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
    """Build (or finish building) the dataset at `out` from every source in `specs`; returns the summary.

    progress(done, total) is called as entries finish (total may be None when unknown)."""
    specs = [specs] if isinstance(specs, (str, os.PathLike)) else list(specs)
    sources = _sources.open_sources(specs, **(source_options or {}))
    counts = [source.count() for source in sources]
    total = None if None in counts else sum(counts)
    out = Path(out)
    work = _work_dir(out, {"format": BUILD_FORMAT, "specs": [str(s) for s in specs], "seed": seed,
                           "options": {k: str(v) for k, v in sorted((source_options or {}).items())},
                           "graph_config": asdict(graph_config)})
    entries = (entry for source in sources for entry in source.iter_entries())
    done = 0
    with contextlib.ExitStack() as stack:
        pool = None
        if (workers or os.cpu_count() or 1) > 1:
            pool = stack.enter_context(multiprocessing.get_context("fork").Pool(workers))
        for number in itertools.count():
            chunk = list(itertools.islice(entries, CHUNK))
            if not chunk:
                break
            where = work / f"chunk-{number:05d}"
            if not (where / "rows.parquet").is_file():
                tasks = [(entry, graph_config, seed) for entry in chunk]
                results = pool.imap(_featurize_star, tasks, chunksize=8) if pool else map(_featurize_star, tasks)
                rows, graphs, rejected = [], [], []
                for made, lost in results:
                    for row, graph in made:
                        rows.append(row)
                        graphs.append(graph)
                    rejected.extend(lost)
                    done += 1
                    if progress and done % 64 == 0:
                        progress(done, total)
                _write_chunk(where, rows, graphs, rejected, graph_config)
            else:
                done += len(chunk)
            if progress:
                progress(done, total)
    table, graphs, rejected = _read_chunks(work)
    summary = _assemble(out, table, graphs, rejected, specs, graph_config, fractions, seed)
    shutil.rmtree(work, ignore_errors=True)
    return summary


def _work_dir(out: Path, fingerprint: dict) -> Path:
    """The resumable work directory of this build: kept if it was started by the same command."""
    work = out.with_name(f".{out.name}.building")
    key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
    marker = work / "build.json"
    if work.is_dir() and (not marker.is_file() or json.loads(marker.read_text()).get("key") != key):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"key": key, **fingerprint}, indent=1) + "\n")
    return work


def _write_chunk(where: Path, rows: list[dict], graphs: list[CrystalGraph], rejected: list[tuple],
                 config: GraphConfig) -> None:
    with atomic_dir(where) as tmp:
        save_graphs(graphs, tmp / GRAPHS_DIR, config)
        pd.DataFrame(rejected, columns=["id", "source", "path", "reason"]).to_csv(tmp / REJECTED_FILE, index=False)
        pd.DataFrame(rows).to_parquet(tmp / "rows.parquet", index=False)  # last: it marks the chunk done


def _read_chunks(work: Path):
    """The chunks as one Arrow table (no copy of the CIF text), their graphs and their rejections."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables, graphs, rejected = [], [], []
    for where in sorted(work.glob("chunk-*")):
        part = pq.read_table(where / "rows.parquet")
        if part.num_rows:
            tables.append(part)
        graphs.extend(GraphStore.open(where / GRAPHS_DIR))
        rejected.append(pd.read_csv(where / REJECTED_FILE, dtype=str, keep_default_na=False))
    table = pa.concat_tables(tables, promote_options="permissive") if tables else None
    rejected_table = pd.concat(rejected, ignore_index=True) if rejected else pd.DataFrame(
        columns=["id", "source", "path", "reason"])
    return table, graphs, rejected_table


def _assemble(out: Path, table, graphs: list, rejected: pd.DataFrame, specs, graph_config, fractions, seed) -> dict:
    """Drop duplicate ids, split without leakage, write OUT. The rows stay an Arrow table throughout:
    only the columns that decide splits are read into pandas (memory stays flat in the CIF text)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if table is None:
        table = pa.table({"id": pa.array([], pa.string()), "source": pa.array([], pa.string()),
                          "texts": pa.array([], pa.list_(pa.string())), "split": pa.array([], pa.string())})
        keys = pd.DataFrame(columns=["id", "source", "path", "group", "formula", "spacegroup_number"])
    else:
        keys = table.select(["id", "source", "path", "group", "formula", "spacegroup_number"]).to_pandas()
        duplicate = keys["id"].duplicated().to_numpy()
        lost = keys.loc[duplicate, ["id", "source", "path"]].assign(reason="duplicate id (an earlier entry has it)")
        rejected = pd.concat([rejected, lost.astype(str)], ignore_index=True)
        table = table.filter(pa.array(~duplicate))
        keys = keys[~duplicate].reset_index(drop=True)
        graphs = [g for g, d in zip(graphs, duplicate) if not d]
        components = connected_groups(
            keys["group"].tolist(), (keys["formula"] + "|" + keys["spacegroup_number"].astype(str)).tolist())
        table = table.append_column("split", pa.array(assign_splits(components, fractions, seed).tolist(), pa.string()))
    splits = table.column("split").to_pandas()
    summary = {
        "pairs": table.num_rows,
        "texts": int(pc.sum(pc.list_value_length(table.column("texts"))).as_py() or 0) if table.num_rows else 0,
        "by_source": {k: int(v) for k, v in keys["source"].value_counts().items()},
        "splits": {s: int((splits == s).sum()) for s in SPLITS},
        "rejected": len(rejected),
        "rejected_by_reason": dict(Counter(_reason_kind(r) for r in rejected["reason"]).most_common()),
        "graph_config": asdict(graph_config),
        "seed": seed,
        "fractions": list(fractions),
        "sources": [str(s) for s in specs],
    }
    if "structure_type" in table.column_names:
        summary["structure_types_matched"] = table.num_rows - table.column("structure_type").null_count
    with atomic_dir(out) as tmp:
        pq.write_table(table, tmp / PAIRS_FILE, row_group_size=ROW_GROUP_ROWS)
        rejected.to_csv(tmp / REJECTED_FILE, index=False)
        save_graphs(graphs, tmp / GRAPHS_DIR, graph_config)
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        if (out / TEXT_CACHE).is_dir():  # keyed by text, so still valid: keep the tower's work
            os.replace(out / TEXT_CACHE, tmp / TEXT_CACHE)
    return summary


def featurize_entry(entry: Entry | Rejected, config: GraphConfig, seed: int = 0
                    ) -> tuple[list[tuple[dict, CrystalGraph]], list[tuple]]:
    """One source entry -> (rows with their graphs, rejections). Runs in worker processes."""
    if isinstance(entry, Rejected):
        return [], [(entry.id, entry.source, entry.path, entry.reason)]
    try:
        crystals = parse_cif(entry.cif, entry.id)
    except StructureError as error:
        return [], [(entry.id, entry.source, entry.path, str(error))]
    made, lost = [], []
    for crystal in crystals:
        try:
            texts, masked, facts = _texts(entry, crystal, seed)
            if not texts:
                lost.append((crystal.id, entry.source, entry.path, "no text to pair with (no publication title in the CIF)"))
                continue
            graph = build_graph(crystal, config)
        except StructureError as error:
            lost.append((crystal.id, entry.source, entry.path, str(error)))
            continue
        graph.id = crystal.id
        made.append((_row(entry, crystal, texts, masked, facts), graph))
    return made, lost


def _featurize_star(args):
    return featurize_entry(*args)


def _texts(entry: Entry, crystal: Crystal, seed: int):
    """(texts, their formula-free forms, the describer's facts or None)."""
    if entry.texts:
        return list(entry.texts), [mask_formulas(t) for t in entry.texts], None
    if not entry.texts_generated:
        title = clean_title(crystal.metadata.get("title", ""))
        return ([title], [mask_formulas(title)], None) if title else ([], [], None)
    from ..structures.bonds import read_cif_bonds
    from ..text.describe import analyze, render

    try:
        facts = analyze(crystal, bonds=read_cif_bonds(entry.cif, crystal))
    except StructureError:
        raise
    except Exception as error:  # noqa: BLE001 - a structure the describer cannot take is rejected, not fatal
        raise StructureError(f"cannot be described: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    return [render(facts, seed=seed)], [render(facts, seed=seed, formula_free=True)], facts


def _row(entry: Entry, crystal: Crystal, texts: list[str], masked: list[str], facts) -> dict:
    number = facts.number if facts is not None and facts.number else spacegroup_number(
        crystal, entry.columns.get("space_group_number"))
    row = {
        "id": crystal.id,
        "source": entry.source,
        "cif": entry.cif,
        "texts": list(texts),
        "texts_formula_free": list(masked),
        "texts_generated": entry.texts_generated,
        "group": entry.group,
        "path": entry.path,
        "formula": crystal.reduced_formula(),
        "elements": sorted(crystal.composition()),
        "num_sites": len(crystal),
        "ordered": crystal.is_ordered,
        "spacegroup_number": number,
        "crystal_system": crystal_system(number),
    }
    if facts is not None:
        row["structure_type"] = facts.prototype[1] if facts.prototype else None
    for key in _METADATA_COLUMNS:
        if key in crystal.metadata:
            row[key] = crystal.metadata[key]
    # the source's own columns win over the CIF's metadata (AMCSD's cleaned title, or none, over the raw one)
    row.update({k: v for k, v in entry.columns.items() if k not in row or k in _METADATA_COLUMNS})
    return row


def _reason_kind(reason: str) -> str:
    """Reasons grouped for the summary by their words, numbers and details dropped:
    'site 3 (O) and site 9 (O) overlap (0.1 Å apart)' -> 'site and site overlap'."""
    head = re.sub(r"\s*\([^)]*\)", "", str(reason)).split(":")[0]
    words = (w.strip(",.;") for w in head.split())
    return " ".join(w for w in words if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", w))[:80]
