"""Texts derived from a dataset, written beside it: keywords (CLaSP), summaries (CLAMP), descriptions
(CLaC), and paper titles joined by the compounds they name (CLaSP's structure-title pairing).

Each reads the dataset through `Dataset`, runs the pure functions of `crystalclip.text` over its rows
and writes `DATASET/texts/<kind>.parquet` atomically. One bad structure or document is reported and
the rest go on. Every function returns a summary with `structures`, `failed` (first 10 (id, reason)),
`failed_count`, `path` and `seconds`; `progress(done, total)` follows the work.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable

from .data.dataset import Dataset, row_crystal
from .errors import BadInput
from .structures.bonds import read_cif_bonds
from .text.describe import DESCRIBERS, describe_both, describe_robocrys
from .text.keywords import document_text, extract_keywords, llm_keywords
from .text.llm import ChatClient, LLMError
from .text.short_facts import short_fact
from .text.title_formulas import join_titles
from .text.summarize import EXTRACTIVE, Seq2SeqSummarizer, check_model_dir, document_parts, get_summarizer, n_words

Progress = Callable[[int, int], None]
_DOCS_PER_CHUNK = 256  # documents summarised together (one progress step)


def _summary(start: float, structures: int, failed: list, path, **counts) -> dict:
    return {"structures": structures, **counts, "failed": failed[:10], "failed_count": len(failed),
            "path": str(path), "seconds": round(time.perf_counter() - start, 2)}


# ---------------------------------------------------------------------- keywords


def dataset_keywords(dataset_dir, backend: str = "offline", llm_url: str | None = None, llm_model: str | None = None,
                     max_keywords: int = 10, limit: int | None = None, progress: Progress | None = None, *,
                     workers: int = 4) -> dict:
    """Write `texts/keywords.parquet` ({id: ["kw1, kw2, ..."]}). With `backend="llm"` a document the
    endpoint fails on is listed in `failed` and the others go on; `workers` requests run at once."""
    if backend not in ("offline", "llm"):
        raise BadInput(f"backend must be 'offline' or 'llm', not {backend!r}")
    if max_keywords < 1:
        raise BadInput(f"max_keywords must be >= 1, not {max_keywords}")
    if backend == "llm" and (not llm_url or not llm_model):
        raise BadInput("the llm back-end needs llm_url (e.g. http://localhost:8000/v1) and llm_model")
    start = time.perf_counter()
    data = Dataset(dataset_dir)
    records = data.records(["title", "abstract", "texts"], limit)
    ids_of: dict[str, list[str]] = {}  # document -> structures written about in it
    for row in records:
        doc = document_text(row)
        if doc:
            ids_of.setdefault(doc, []).append(str(row["id"]))
    documents = list(ids_of)
    failed: list[tuple[str, str]] = []
    extra: dict = {"backend": backend}
    if backend == "offline":
        from .models.text import get_text_tower

        keywords = extract_keywords(documents, get_text_tower("minilm"), max_keywords, progress=progress)
    else:
        keywords, failed = _llm_keywords(documents, ids_of, llm_url, llm_model, max_keywords, progress, workers)
        extra["model"] = llm_model
    texts = {i: [", ".join(k)] for doc, k in zip(documents, keywords) if k for i in ids_of[doc]}
    path = data.write_texts("keywords", texts)
    return _summary(start, len(records), failed, path, documents=len(documents), written=len(texts), **extra)


def _llm_keywords(documents, ids_of, llm_url, llm_model, max_keywords, progress, workers):
    """Keywords of each document from the endpoint; (keywords, [(first id, reason) of each failure])."""
    from concurrent.futures import ThreadPoolExecutor

    keywords: list[list[str]] = [[] for _ in documents]
    failed: list[tuple[str, str]] = []
    with ChatClient(llm_url, llm_model) as client, ThreadPoolExecutor(max(1, workers)) as pool:
        futures = [pool.submit(llm_keywords, doc, client, max_keywords) for doc in documents]
        for i, future in enumerate(futures):
            done = i + 1
            try:
                keywords[i] = future.result()
            except LLMError as error:
                failed.append((ids_of[documents[i]][0], str(error)))
                if len(failed) == done >= 5:  # nothing works: the endpoint or the model name is wrong
                    for f in futures:
                        f.cancel()
                    raise BadInput(f"the first {done} documents all failed; the last: {error}") from error
            if progress is not None:
                progress(done, len(documents))
    return keywords, failed


# ---------------------------------------------------------------------- summaries


def structure_documents(data: Dataset, limit: int | None = None) -> dict[str, str]:
    """{id: document} a summariser reads: all of a structure's texts, and its abstract if the dataset has one."""
    return {str(r["id"]): " ".join(document_parts(r.get("texts"), r.get("abstract")))
            for r in data.records(["texts", "abstract"], limit)}


def dataset_summaries(dataset_dir, summarizer: str | os.PathLike = EXTRACTIVE, max_words: int = 60,
                      limit: int | None = None, progress: Progress | None = None) -> dict:
    """Summarise each structure's document (all its texts + abstract) into `texts/summaries.parquet`.

    Identical documents are summarised once; documents of at most `max_words` words are kept as
    they are. `progress` counts the distinct longer documents (the only ones a summariser reads)."""
    if max_words < 1:
        raise BadInput(f"max_words must be >= 1, not {max_words}")
    if not (isinstance(summarizer, str) and summarizer == EXTRACTIVE):
        summarizer = str(check_model_dir(summarizer))  # fail early, even if nothing is long
    start = time.perf_counter()
    data = Dataset(dataset_dir)
    documents = structure_documents(data, limit)
    owners: dict[str, list[str]] = {}
    for sid, doc in documents.items():
        owners.setdefault(doc, []).append(sid)
    long_docs = [d for d in owners if d and n_words(d) > max_words]
    model = None
    if long_docs:
        from .models.text import get_text_tower

        model = get_summarizer(summarizer, tower=get_text_tower("minilm") if summarizer == EXTRACTIVE else None)
    summary_of = {d: d for d in owners if d and n_words(d) <= max_words}
    failed: list[tuple[str, str]] = [(sid, "no text") for sid in owners.get("", [])]
    chunk = model.batch_size if isinstance(model, Seq2SeqSummarizer) else _DOCS_PER_CHUNK
    for first in range(0, len(long_docs), chunk):
        batch = long_docs[first:first + chunk]
        try:
            texts = model(batch, max_words)
        except (RuntimeError, ValueError) as error:  # e.g. a seq2seq model that cannot generate: the rest go on
            reason = f"summariser failed: {str(error).splitlines()[0][:200]}"
            failed += [(sid, reason) for doc in batch for sid in owners[doc]]
            texts = []
        for doc, text in zip(batch, texts):
            if text.strip():
                summary_of[doc] = text.strip()
            else:
                failed += [(sid, "empty summary") for sid in owners[doc]]
        if progress is not None:
            progress(min(first + chunk, len(long_docs)), len(long_docs))
    out = {sid: [summary_of[doc]] for sid, doc in documents.items() if doc in summary_of}
    path = data.write_texts("summaries", out)
    return _summary(start, len(documents), failed, path, written=len(out),
                    shortened=sum(len(owners[d]) for d in long_docs if d in summary_of),
                    documents=len(owners), summarizer=str(summarizer))


# ---------------------------------------------------------------------- descriptions


def _describe_row(args: tuple[str, str, str, int | None]) -> tuple[str, tuple[str, str | None] | None, str | None]:
    """(id, (text, formula-free text or None), None) or (id, None, reason) for one row, in a worker."""
    id_, cif, describer, seed = args
    try:
        crystal = row_crystal(id_, cif)
        if describer == "robocrys":
            return id_, (describe_robocrys(crystal), None), None
        return id_, describe_both(crystal, seed=seed, bonds=read_cif_bonds(cif, crystal)), None
    except ImportError:
        raise
    except Exception as error:  # noqa: BLE001 - one bad structure must not stop the dataset
        reason = str(error).splitlines()[0] if str(error) else ""
        return id_, None, f"{type(error).__name__}: {reason}"[:300]


def describe_rows(rows, describer: str = "template", workers: int = 1, progress: Progress | None = None,
                  seed: int | None = 0):
    """Yield (id, (text, formula-free text) or None, failure reason or None) for (id, CIF) rows, in order."""
    tasks = [(str(id_), cif, describer, seed) for id_, cif in rows]
    if workers > 1 and len(tasks) > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for done, result in enumerate(pool.imap(_describe_row, tasks, chunksize=16), 1):
                yield result
                if progress:
                    progress(done, len(tasks))
        return
    for done, task in enumerate(tasks, 1):
        yield _describe_row(task)
        if progress:
            progress(done, len(tasks))


def dataset_descriptions(dataset_dir, describer: str = "template", limit: int | None = None,
                         progress: Progress | None = None, workers: int | None = None, seed: int | None = 0) -> dict:
    """Describe every structure from the structure alone into `texts/descriptions.parquet`, and the
    template's formula-free forms (no formula, no element) into `texts/descriptions_formula_free.parquet`.
    `seed` picks the phrasings and the sentence order (None: one fixed template)."""
    if describer not in DESCRIBERS:
        raise BadInput(f"unknown describer {describer!r}: one of {', '.join(DESCRIBERS)}")
    if describer == "robocrys":
        try:
            import robocrys  # noqa: F401
        except ImportError as error:
            raise BadInput("the robocrys describer needs robocrys: pip install robocrys") from error
    start = time.perf_counter()
    data = Dataset(dataset_dir)
    records = data.records(["cif"], limit)
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(records) >= 200 else 1
    texts, free, failed = {}, {}, []
    rows = ((r["id"], r["cif"]) for r in records)
    for id_, pair, reason in describe_rows(rows, describer, workers, progress, seed):
        if pair and pair[0]:
            texts[id_] = [pair[0]]
            if pair[1]:
                free[id_] = [pair[1]]
        else:
            failed.append((id_, reason or "empty description"))
    path = data.write_texts("descriptions", texts)
    if free:
        data.write_texts("descriptions_formula_free", free)
    return _summary(start, len(records), failed, path, written=len(texts), describer=describer)


# ---------------------------------------------------------------------- paper titles


def dataset_facts(dataset_dir, seed: int = 0, progress: Progress | None = None) -> dict:
    """A short text of its structure type for every row the prototype matcher named
    (`texts/facts.parquet`, `text.short_facts`), from the dataset's own columns: no structure is read."""
    from .structures.properties import spacegroup_symbols

    start = time.perf_counter()
    data = Dataset(dataset_dir)
    if "structure_type" not in data.table:
        raise BadInput(f"{data.directory} has no structure types (no rows described from the structure alone)")
    symbols = spacegroup_symbols()
    texts = {}
    for id_, kind, system, number in zip(data.table["id"], data.table["structure_type"],
                                         data.table["crystal_system"], data.table["spacegroup_number"]):
        text = short_fact(kind, system, symbols.get(int(number), ""), str(id_), seed) if isinstance(kind, str) else None
        if text:
            texts[str(id_)] = [text]
    path = data.write_texts("facts", texts)
    if progress:
        progress(len(data), len(data))
    return _summary(start, len(data), [], path, written=len(texts), distinct=len({t[0] for t in texts.values()}))


def dataset_titles(dataset_dir, titles_path, id_column: str = "arxiv_id", title_column: str = "title",
                   progress: Progress | None = None) -> dict:
    """Every title (a Parquet or CSV table, e.g. arXiv cond-mat titles) that names a compound becomes a
    text of each structure of that reduced formula (`texts/titles.parquet`).

    A title never spans two splits: it stays with the split holding most of its structures (train on
    a tie) and is dropped from its structures in the others, so no test structure shares a text with
    a training one. Returns the counts: titles read, titles matched, structures with a title, pairs,
    and pairs dropped to keep the splits apart."""
    import pandas as pd

    from .errors import NotFound

    start = time.perf_counter()
    data = Dataset(dataset_dir)
    path = os.fspath(titles_path)
    if not os.path.isfile(path):
        raise NotFound(f"no titles table at {path}")
    table = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    for column in (id_column, title_column):
        if column not in table.columns:
            raise BadInput(f"{path} has no column {column!r} (columns: {', '.join(map(str, table.columns))})")
    titles = dict(zip(table[id_column].astype(str), table[title_column].astype(str)))
    joined = join_titles(titles.items(), set(data.formulas))
    rows_of: dict[str, list[int]] = {}
    for row, formula in enumerate(data.formulas):
        rows_of.setdefault(formula, []).append(row)
    split = data.table["split"].to_numpy()
    owners: dict[str, list[int]] = {}  # title id -> rows it is joined to
    for formula, title_ids in joined.items():
        for title_id in title_ids:
            owners.setdefault(title_id, []).extend(rows_of[formula])
    texts: dict[str, list[str]] = {}
    dropped = 0
    for done, (title_id, rows) in enumerate(owners.items(), 1):
        sides = pd.Series(split[rows]).value_counts()
        keep = "train" if sides.get("train", 0) == sides.max() else sides.idxmax()
        for row in rows:
            if split[row] != keep:
                dropped += 1
                continue
            texts.setdefault(str(data.table["id"].iat[row]), []).append(titles[title_id])
        if progress and done % 500 == 0:
            progress(done, len(owners))
    path_out = data.write_texts("titles", texts)
    return _summary(start, len(data), [], path_out, written=len(texts), titles=len(titles),
                    titles_matched=len(owners), pairs=sum(len(v) for v in texts.values()), pairs_dropped_across_splits=dropped)
