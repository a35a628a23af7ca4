"""Texts derived from a dataset, written beside it: keywords (CLaSP), summaries (CLAMP), descriptions (CLaC).

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
from .text.describe import DESCRIBERS, describe, describe_robocrys
from .text.keywords import document_text, extract_keywords, llm_keywords
from .text.llm import ChatClient, LLMError
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


def _describe_row(args: tuple[str, str, str]) -> tuple[str, str | None, str | None]:
    """(id, text, None) or (id, None, reason) for one row, in a worker process."""
    id_, cif, describer = args
    try:
        crystal = row_crystal(id_, cif)
        return id_, describe(crystal) if describer == "template" else describe_robocrys(crystal), None
    except ImportError:
        raise
    except Exception as error:  # noqa: BLE001 - one bad structure must not stop the dataset
        reason = str(error).splitlines()[0] if str(error) else ""
        return id_, None, f"{type(error).__name__}: {reason}"[:300]


def describe_rows(rows, describer: str = "template", workers: int = 1, progress: Progress | None = None):
    """Yield (id, text or None, failure reason or None) for (id, CIF text) rows, in order."""
    tasks = [(str(id_), cif, describer) for id_, cif in rows]
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
                         progress: Progress | None = None, workers: int | None = None) -> dict:
    """Describe every structure from the structure alone into `texts/descriptions.parquet`."""
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
    texts, failed = {}, []
    rows = ((r["id"], r["cif"]) for r in records)
    for id_, text, reason in describe_rows(rows, describer, workers, progress):
        if text:
            texts[id_] = [text]
        else:
            failed.append((id_, reason or "empty description"))
    path = data.write_texts("descriptions", texts)
    return _summary(start, len(records), failed, path, written=len(texts), describer=describer)
